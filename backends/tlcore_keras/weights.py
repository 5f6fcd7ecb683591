"""Loading weights into Keras backbones: named sources, torch-layout state dicts, neutral checkpoints, Keras files.

Every backbone's weights come in torch's layout under canonical names
(:mod:`tlcore_keras.layout` converts them), except Keras's own ``.h5`` files,
which ``model.load_weights`` reads. This module imports Keras: it is
imported only after the Keras backend has been selected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from tlcore import WeightsError
from tlcore.checkpoints import is_neutral_checkpoint, read_neutral
from tlcore.extend import BuildRequest, canonical_state, named_weights_file
from tlcore.weights import TORCH_SUFFIXES, read_weights_file, torch_hub_dir
from tlcore_keras.layout import load_torch_layout_state

if TYPE_CHECKING:
    from tlcore_keras.backbones import KerasBackbone

__all__ = ["KERAS_WEIGHT_SUFFIXES", "finalize_layers", "load_keras_h5", "load_weights", "load_weights_file"]

KERAS_WEIGHT_SUFFIXES: tuple[str, ...] = (".weights.h5", ".h5", ".safetensors", *TORCH_SUFFIXES)


def load_weights(request: BuildRequest, backbone: KerasBackbone) -> None:
    """Load ``request.weights`` (named or a file) into ``backbone``; record the file they were read from.

    Named weights are the spec's file (a package's, or torchvision's download,
    read without torch: torch hub's copy if it has one), renamed to canonical
    names; a file goes through :func:`load_weights_file`.
    """
    spec, choice = request.spec, request.weights
    if choice.kind == "named":
        path = named_weights_file(spec, str(choice.name), search=(torch_hub_dir(),))
        state = canonical_state(spec, read_weights_file(path))
        load_torch_layout_state(backbone.layers, state, what=f"{choice.name!r} ({path})")
    elif choice.path is not None:
        path = choice.path
        load_weights_file(backbone, path, convert=lambda state: canonical_state(spec, state))
    else:
        raise WeightsError(f"internal: no weights to load for {spec.name!r}")
    backbone.weights_file = path


def finalize_layers(model: keras.Model) -> None:
    """Let layers that cache values computed from their variables (Normalization) refresh them."""
    for layer in model.layers:
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize) and layer.weights:
            finalize()


def load_keras_h5(model: keras.Model, path: Path, name: str) -> None:
    """Load a Keras ``.h5`` / ``.weights.h5`` file with ``model.load_weights``; WeightsError if it does not fit."""
    try:
        model.load_weights(str(path))
    except Exception as exc:  # h5py, ValueError on a structure mismatch
        raise WeightsError(
            f"cannot load Keras weights from file {str(path)!r} into {name}: {type(exc).__name__}: {exc}. "
            "Expected weights saved from the same architecture (model.save_weights or keras.applications' file)."
        ) from exc


def load_weights_file(
    backbone: KerasBackbone,
    path: Path,
    *,
    convert: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
) -> None:
    """Load a local file into ``backbone``: Keras ``.h5`` / ``.weights.h5`` through ``model.load_weights``;
    ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` as a torch-layout state with canonical names.

    ``convert`` may rename a torch-layout state first (a reference checkpoint's names). A neutral
    checkpoint (``NAME.json``, or ``NAME.safetensors`` beside it) is read with its tensors' sha256
    checked, refused if its architecture is not the backbone's, and loaded as it is.
    """
    where = f"file {str(path)!r}"
    if is_neutral_checkpoint(path):
        _, state = read_neutral(path, architecture=backbone.spec.name)
        load_torch_layout_state(backbone.layers, state, what=where)
    elif path.name.lower().endswith(".h5"):
        load_keras_h5(backbone.model, path, backbone.spec.name)
    else:
        state = read_weights_file(path)
        load_torch_layout_state(backbone.layers, convert(state) if convert else state, what=where)
    finalize_layers(backbone.model)
