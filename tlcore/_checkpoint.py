"""The saved-model file: a safetensors file of tensors plus tlcore metadata.

Tensors use canonical names and PyTorch layout (``backbone.<layer>.weight``,
``head.out.weight``), so a model saved by one backend can be read by another
that builds the same architecture. Writing is atomic; reading never unpickles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tlcore._backend import Model
from tlcore._errors import CheckpointError
from tlcore._io import write_with
from tlcore._specs import HeadSpec

__all__ = ["FORMAT", "head_from_metadata", "model_metadata", "read_checkpoint", "write_checkpoint"]

FORMAT = "tlcore-model/1"
_HINT = "pip install safetensors"


def model_metadata(model: Model, image_size: tuple[int, int]) -> dict[str, Any]:
    """What a backend needs to rebuild ``model``."""
    head = model.head
    return {
        "format": FORMAT,
        "backend": model.backend_name,
        "backbone": model.backbone.name,
        "head": {
            "num_outputs": head.num_outputs,
            "pooling": head.pooling,
            "hidden": list(head.hidden),
            "activation": head.activation,
            "dropout": head.dropout,
            "output_activation": head.output_activation,
            "initializer": head.initializer,
        },
        "image_size": list(image_size),
        "weights": model.weights,
        "weights_sha256": model.weights_sha256,
    }


def head_from_metadata(metadata: Mapping[str, Any]) -> HeadSpec:
    """The :class:`HeadSpec` recorded in a checkpoint's metadata."""
    head = dict(metadata["head"])
    head["hidden"] = tuple(head["hidden"])
    return HeadSpec(**head)


def write_checkpoint(path: str | Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> Path:
    """Write tensors and metadata to ``path`` atomically."""
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise CheckpointError(f"saving a model needs safetensors: {_HINT}") from None
    arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    header = {"tlcore": json.dumps(dict(metadata))}
    try:
        return write_with(path, lambda temporary: save_file(arrays, str(temporary), metadata=header))
    except OSError as exc:
        raise CheckpointError(f"cannot write model to {str(path)!r}: {exc}") from None


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and tensors of a saved model; CheckpointError if it is missing or unreadable."""
    try:
        from safetensors import SafetensorError, safe_open
        from safetensors.numpy import load_file
    except ImportError:
        raise CheckpointError(f"loading a model needs safetensors: {_HINT}") from None
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"no saved model at {str(file)!r}.")
    try:
        with safe_open(str(file), framework="numpy") as handle:
            raw = (handle.metadata() or {}).get("tlcore")
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{str(file)!r} is not a readable tlcore model (safetensors): {exc}") from None
    if raw is None:
        raise CheckpointError(f"{str(file)!r} has no tlcore metadata: it was not written by Model.save().")
    metadata = json.loads(raw)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{str(file)!r} has format {metadata.get('format')!r}; expected {FORMAT!r}.")
    return metadata, tensors
