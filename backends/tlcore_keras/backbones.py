"""Keras backbones: what every builder shares, from the registered builder to the listed, grouped layers.

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

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tlcore import BackboneSpec, LayerInfo, PluginError
from tlcore.extend import build_native, check_layer_groups
from tlcore_keras import frameworks
from tlcore_keras.weights import KERAS_WEIGHT_SUFFIXES, finalize_layers, load_weights

__all__ = [
    "KerasBackbone",
    "assemble_backbone",
    "build_backbone",
    "layer_kind",
    "weighted_layers",
]

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
    """Build ``spec`` for ``image_size`` with ``weights``: None (random), a registered name, or a file path.

    The builder registered for ``spec`` on this process's Keras backend makes
    the model (:mod:`tlcore.extend` says what it receives and returns); the
    weights are loaded here unless the builder loaded them. Random
    initialisation draws from Keras's global seed generator: seed it first
    for a reproducible backbone (``keras.utils.set_random_seed`` does, but
    also imports TensorFlow whenever it is installed).
    """
    backend = f"keras-{frameworks.framework()}"
    request, built = build_native(
        spec,
        backend,
        weights,
        image_size,
        suffixes=KERAS_WEIGHT_SUFFIXES,
        require_suffix=True,
        native_type=keras.Model,
    )
    backbone = assemble_backbone(
        spec,
        built.model,
        built.group_of,
        weights=weights,
        weights_file=built.weights_file,
        named_layers=built.layers,
        native_indexing=built.native_indexing,
    )
    if not built.weights_loaded and not request.weights.random_init:
        load_weights(request, backbone)
    finalize_layers(built.model)
    return backbone


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
    native_indexing: bool = False,
) -> KerasBackbone:
    """Set BatchNorm epsilon/momentum from ``spec``; list the layers with their groups.

    ``named_layers`` gives the layers' names and order, ``(name, layer)`` in
    forward order, where they are not the Keras layer names in the order of
    ``model.layers`` (names with dots, which Keras on torch refuses). It must
    hold every layer of ``model`` that owns weights. The list keeps the
    layers that own weights, or with ``native_indexing`` every layer, as
    ``model.layers`` lists them: a weightless layer takes its group from
    ``group_of`` when that names one of the spec's groups, else from the
    layer before it (the first ones from the first layer with weights).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.epsilon = spec.bn_epsilon
            layer.momentum = 1.0 - spec.bn_momentum  # Keras keeps this much of the old statistic
    pairs = [(layer.name, layer) for layer in model.layers] if named_layers is None else list(named_layers)
    unnamed = {id(layer) for layer in model.layers if layer.weights} - {id(layer) for _, layer in pairs}
    if unnamed:
        raise PluginError(f"{spec.name}: {len(unnamed)} layers with weights are missing from the builder's layers.")
    if not native_indexing:
        pairs = [(name, layer) for name, layer in pairs if layer.weights]
    weighted = [name for name, layer in pairs if layer.weights]
    group_by_name = dict(zip(weighted, check_layer_groups(spec, weighted, group_of), strict=True))
    layers: list[tuple[LayerInfo, keras.layers.Layer]] = []
    group = next(iter(group_by_name.values()), "")
    for name, layer in pairs:
        own = group_by_name.get(name) or group_of(name)
        group = own if own in spec.groups else group
        params = sum(int(np.prod(v.shape)) for v in layer.trainable_weights)
        info = LayerInfo(
            name=name,
            group=group,
            kind=layer_kind(layer),
            num_params=params,
            has_weights=bool(layer.weights),
            layer_type=type(layer).__name__,
        )
        layers.append((info, layer))
    return KerasBackbone(
        spec=spec,
        model=model,
        layers=layers,
        weights=None if weights is None else os.fspath(weights),
        weights_file=weights_file,
    )


def weighted_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """``(Keras layer name, layer)`` for each layer of ``model`` that owns weights, in ``model.layers`` order.

    For models whose Keras layer names are the canonical names, this is a builder's ``layers``.
    """
    return [(layer.name, layer) for layer in model.layers if layer.weights]
