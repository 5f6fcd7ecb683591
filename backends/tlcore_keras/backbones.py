"""Keras backbones: what every builder shares, from a spec's ``builder`` to loading a weights file.

Every backbone is a functional ``keras.Model`` from NHWC float32 images of a
size fixed at build time to an NHWC feature map (no pooling, no classifier),
plus its layers that own weights, in forward order, under stable names (the
:class:`~tlcore.LayerInfo` names that freeze policies and weight files use).
The builders live beside this module: :mod:`tlcore_keras.torchvision_models`
and :mod:`tlcore_keras.efficientnet_lite` (portable: the torch backend's
structure and names) and :mod:`tlcore_keras.applications` (``keras.applications``).

This module imports Keras: it is imported only after the Keras backend has
been selected.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np

from tlcore import BackboneSpec, ConfigError, LayerInfo, WeightsError
from tlcore.checkpoints import is_neutral_checkpoint, read_neutral
from tlcore.weights import TORCH_SUFFIXES, read_weights_file
from tlcore.weights import resolve_weights as resolve_any_weights
from tlcore_keras.layout import load_torch_layout_state

__all__ = [
    "KERAS_WEIGHT_SUFFIXES",
    "KerasBackbone",
    "assemble_backbone",
    "build_backbone",
    "check_image_size",
    "finalize_layers",
    "layer_kind",
    "load_weights_file",
    "resolve_weights",
]

KERAS_WEIGHT_SUFFIXES: tuple[str, ...] = (".weights.h5", ".h5", ".safetensors", *TORCH_SUFFIXES)
WeightsArg = str | os.PathLike[str] | None
GroupOf = Callable[[str], str]


@dataclass
class KerasBackbone:
    """A built backbone: the Keras model and its layers that own weights, in forward order.

    ``model`` maps NHWC float32 images of the build size to an NHWC feature
    map with ``spec.feature_channels`` channels. ``weights_file`` is the file
    the weights were read from (Keras's download cache for ``"imagenet"``,
    when it can be found), ``None`` for random initialisation.
    """

    spec: BackboneSpec
    model: keras.Model
    layers: list[tuple[LayerInfo, keras.layers.Layer]]
    weights: str | None = None
    weights_file: Path | None = None

    def layer_infos(self) -> list[LayerInfo]:
        """The layers' neutral descriptions, in forward order."""
        return [info for info, _ in self.layers]


def build_backbone(spec: BackboneSpec, weights: WeightsArg, image_size: tuple[int, int]) -> KerasBackbone:
    """Build ``spec`` for ``image_size`` with ``weights``: None (random), ``"imagenet"``, or a file path.

    Random initialisation draws from Keras's global seed generator: seed it
    first for a reproducible backbone (``keras.utils.set_random_seed`` does,
    but also imports TensorFlow whenever it is installed).
    """
    if not spec.backend.startswith("keras-"):
        raise ConfigError(f"backbone {spec.name!r} is registered for backend {spec.backend!r}, not a Keras backend.")
    module_name, _, function_name = spec.builder.partition(":")
    try:
        builder = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"backbone {spec.name!r}: cannot import its builder {spec.builder!r}: {exc}") from exc
    backbone = builder(spec, weights, image_size)
    if not isinstance(backbone, KerasBackbone):
        raise ConfigError(
            f"backbone {spec.name!r}: {spec.builder} returned {type(backbone).__name__}, not KerasBackbone."
        )
    return backbone


def check_image_size(spec: BackboneSpec, image_size: tuple[int, int]) -> tuple[int, int]:
    """``image_size`` as ``(height, width)`` if ``spec`` accepts it; ConfigError otherwise."""
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ConfigError(f"image_size must be (height, width), got {image_size!r}.") from None
    if min(height, width) < spec.input.min_size:
        raise ConfigError(
            f"{spec.name} needs images of at least {spec.input.min_size}x{spec.input.min_size} pixels, "
            f"got {height}x{width}. Resize the images or choose a larger image_size."
        )
    return height, width


def resolve_weights(spec: BackboneSpec, weights: WeightsArg) -> tuple[Literal["none", "named", "file"], Any]:
    """Say what ``weights`` means for ``spec`` (see :func:`tlcore.weights.resolve_weights`)."""
    return resolve_any_weights(spec, weights, suffixes=KERAS_WEIGHT_SUFFIXES, require_suffix=True)


# ---------------------------------------------------------------- layers


def layer_kind(layer: keras.layers.Layer) -> str:
    """``conv``, ``depthwise_conv``, ``batchnorm``, ``dense`` or ``other`` (separable convolutions are ``conv``)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise_conv"
    if isinstance(layer, keras.layers.Conv2D | keras.layers.SeparableConv2D):
        return "conv"
    if isinstance(layer, keras.layers.BatchNormalization):
        return "batchnorm"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return "other"


def assemble_backbone(
    spec: BackboneSpec,
    model: keras.Model,
    group_of: GroupOf,
    *,
    weights: WeightsArg,
    weights_file: Path | None,
    named_layers: Sequence[tuple[str, keras.layers.Layer]] | None = None,
) -> KerasBackbone:
    """Set BatchNorm epsilon/momentum from ``spec``; list the layers that own weights with their groups.

    ``named_layers`` gives the layers' names and order, ``(name, layer)`` in
    forward order, where they are not the Keras layer names in the order of
    ``model.layers`` (names with dots, which Keras on torch refuses). It must
    hold every layer of ``model`` that owns weights.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = spec.bn_epsilon
            layer.momentum = 1.0 - spec.bn_momentum  # Keras keeps this much of the old statistic
    pairs = [(layer.name, layer) for layer in model.layers] if named_layers is None else list(named_layers)
    unnamed = {id(layer) for layer in model.layers if layer.weights} - {id(layer) for _, layer in pairs}
    if unnamed:
        raise RuntimeError(f"{spec.name}: {len(unnamed)} layers with weights are missing from named_layers.")
    layers: list[tuple[LayerInfo, keras.layers.Layer]] = []
    for name, layer in pairs:
        if not layer.weights:
            continue
        group = group_of(name)
        if group not in spec.groups:
            raise RuntimeError(f"{spec.name}: layer {name!r} was put in group {group!r}, not one of {spec.groups}.")
        params = sum(int(np.prod(v.shape)) for v in layer.trainable_weights)
        layers.append((LayerInfo(name=name, group=group, kind=layer_kind(layer), num_params=params), layer))
    return KerasBackbone(
        spec=spec,
        model=model,
        layers=layers,
        weights=None if weights is None else os.fspath(weights),
        weights_file=weights_file,
    )


def finalize_layers(model: keras.Model) -> None:
    """Let layers that cache values computed from their variables (Normalization) refresh them."""
    for layer in model.layers:
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize) and layer.weights:
            finalize()


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
        try:
            backbone.model.load_weights(str(path))
        except Exception as exc:  # h5py, ValueError on a structure mismatch
            raise WeightsError(
                f"cannot load Keras weights from {where} into {backbone.spec.name}: {type(exc).__name__}: {exc}. "
                "Expected weights saved from the same architecture (model.save_weights or keras.applications' file)."
            ) from exc
    else:
        state = read_weights_file(path)
        load_torch_layout_state(backbone.layers, convert(state) if convert else state, what=where)
    finalize_layers(backbone.model)
