"""Framework-free weight files: torch checkpoints and safetensors read as numpy arrays.

Backends that are not torch (Keras on JAX or TensorFlow) load PyTorch-layout
weights through these readers, so no framework is imported to read a file and
no pickled code is ever run. :func:`download_weights` fetches a file (a
torchvision checkpoint, say) into tlcore's cache with urllib, checked against
its sha256.

    >>> from tlcore.weights import read_weights_file
    >>> state = read_weights_file("efficientnet-lite0.pth")  # {"_conv_stem.weight": ndarray, ...}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from tlcore._errors import WeightsError, did_you_mean
from tlcore._specs import BackboneSpec
from tlcore.weights._download import (
    DOWNLOAD_TIMEOUT_S,
    cache_dir,
    download_weights,
    file_sha256,
    sha256_in_name,
    torch_hub_dir,
    weights_cache_dir,
)
from tlcore.weights._torch_pickle import ALLOWED_GLOBALS, read_torch_checkpoint

__all__ = [
    "ALLOWED_GLOBALS",
    "DOWNLOAD_TIMEOUT_S",
    "TORCH_SUFFIXES",
    "WEIGHT_FILE_SUFFIXES",
    "cache_dir",
    "download_weights",
    "file_sha256",
    "mismatch_problems",
    "read_safetensors",
    "read_torch_checkpoint",
    "read_weights_file",
    "resolve_weights",
    "sha256_in_name",
    "shape_problems",
    "torch_hub_dir",
    "wants_random_init",
    "weights_cache_dir",
]

TORCH_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin")
WEIGHT_FILE_SUFFIXES: tuple[str, ...] = (*TORCH_SUFFIXES, ".safetensors")


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


def shape_problems(
    expected: Mapping[str, tuple[int, ...]],
    given: Mapping[str, tuple[int, ...]],
    *,
    given_as: str = "in the weights",
    ignore: tuple[str, ...] = ("num_batches_tracked",),
) -> list[str]:
    """:func:`mismatch_problems` of a state's shapes against the model's (both in torch's layout).

    Keys ending in one of ``ignore`` (BatchNorm's step counters, which only
    torch keeps) may be absent, extra or of another shape.
    """
    missing = [key for key in expected if key not in given and not key.endswith(ignore)]
    unexpected = [key for key in given if key not in expected and not key.endswith(ignore)]
    mismatched = [
        f"{key!r} is {tuple(expected[key])} in the model but {tuple(shape)} {given_as}"
        for key, shape in given.items()
        if key in expected and tuple(shape) != tuple(expected[key]) and not key.endswith(ignore)
    ]
    return mismatch_problems(missing, unexpected, mismatched)


WeightsKind = Literal["none", "named", "file"]


def wants_random_init(weights: str | os.PathLike[str] | None) -> bool:
    """Whether ``weights`` asks for random initialisation: ``None`` or the string ``"none"`` in any case.

    Recipes and ``tlcore run --weights`` write ``"none"``; Python callers may
    pass either, and every backend's ``build_model`` treats them alike.
    """
    return weights is None or (isinstance(weights, str) and weights.strip().lower() == "none")


def _looks_like_path(text: str, suffixes: tuple[str, ...]) -> bool:
    known = (*suffixes, ".bin", ".ckpt", ".h5", ".json")
    return "/" in text or os.sep in text or text.startswith(("~", ".")) or Path(text).suffix.lower() in known


def resolve_weights(
    spec: BackboneSpec,
    weights: str | os.PathLike[str] | None,
    *,
    suffixes: tuple[str, ...],
    require_suffix: bool = False,
) -> tuple[WeightsKind, str | Path | None]:
    """Say what ``weights`` means for ``spec``: ``("none", None)``, ``("named", name)`` or ``("file", path)``.

    ``suffixes`` are the weight files the backend reads; with ``require_suffix`` an existing
    file of another kind (and not a neutral checkpoint) is refused. Every other value raises
    a :class:`WeightsError` that lists what is accepted.
    """
    if weights is None or wants_random_init(weights):
        return "none", None
    text = os.fspath(weights)
    if text in spec.weight_names:
        return "named", text
    path = Path(text).expanduser()
    names = ", ".join(repr(n) for n in spec.weight_names)
    usage = (
        f'Pass weights=None or "none" (random initialisation), '
        f"{f'a registered name ({names}), ' if names else ''}"
        f"or the path of an existing {'/'.join(suffixes)} file or neutral checkpoint (.json)"
        f"{'' if names else f'; {spec.name} has no registered weights'}."
    )
    if path.is_file():
        if require_suffix and not path.name.lower().endswith(suffixes):
            from tlcore.checkpoints import is_neutral_checkpoint

            if not is_neutral_checkpoint(path):
                raise WeightsError(f"weights file {text!r} for {spec.name!r} has an unknown suffix. {usage}")
        return "file", path
    if path.is_dir():
        raise WeightsError(f"weights path {text!r} for {spec.name!r} is a directory, not a file. {usage}")
    if _looks_like_path(text, suffixes):
        raise WeightsError(f"weights file {text!r} for {spec.name!r} does not exist. {usage}")
    raise WeightsError(f"unknown weights {text!r} for {spec.name!r}.{did_you_mean(text, spec.weight_names)} {usage}")
