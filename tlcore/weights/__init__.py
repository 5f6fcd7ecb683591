"""Framework-free weight files: torch checkpoints and safetensors read as numpy arrays.

Backends that are not torch (Keras on JAX or TensorFlow) load PyTorch-layout
weights through these readers, so no framework is imported to read a file and
no pickled code is ever run.

    >>> from tlcore.weights import read_weights_file
    >>> state = read_weights_file("efficientnet-lite0.pth")  # {"_conv_stem.weight": ndarray, ...}
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tlcore._errors import WeightsError
from tlcore.weights._torch_pickle import ALLOWED_GLOBALS, read_torch_checkpoint

__all__ = [
    "ALLOWED_GLOBALS",
    "TORCH_SUFFIXES",
    "WEIGHT_FILE_SUFFIXES",
    "file_sha256",
    "mismatch_problems",
    "read_safetensors",
    "read_torch_checkpoint",
    "read_weights_file",
]

TORCH_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin")
WEIGHT_FILE_SUFFIXES: tuple[str, ...] = (*TORCH_SUFFIXES, ".safetensors")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, for the record of which weights were used."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file as numpy arrays (needs the ``safetensors`` package)."""
    path = Path(path)
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise WeightsError(
            f"reading {str(path)!r} needs the safetensors package: pip install safetensors ({exc})"
        ) from exc
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist.")
    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # safetensors raises its own SafetensorError, and TypeError for unknown dtypes
        raise WeightsError(
            f"cannot read weights file {str(path)!r} as safetensors: {type(exc).__name__}: {exc}. "
            "Expected a file written by safetensors' save_file."
        ) from exc


def read_weights_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a state dict from ``.safetensors`` or a torch checkpoint (``.pth``, ``.pt``, ``.bin``) as numpy arrays.

    Tensor names and layouts are the file's own (torch layout for torch
    checkpoints); converting them is the backend's job.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix in TORCH_SUFFIXES:
        return read_torch_checkpoint(path)
    raise WeightsError(
        f"weights file {str(path)!r} has suffix {suffix or '(none)'!r}; expected one of "
        f"{', '.join(WEIGHT_FILE_SUFFIXES)} (a torch state dict or a safetensors file)."
    )


def _examples(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def mismatch_problems(missing: list[str], unexpected: list[str], mismatched: list[str]) -> list[str]:
    """Sentences describing how a state dict fails to fit a model (empty when it fits)."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors ({_examples(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors ({_examples(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({'; '.join(sorted(mismatched)[:5])})")
    return problems
