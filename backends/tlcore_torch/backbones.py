"""Torch backbones: build a spec's feature extractor through its registered builder, then load its weights.

Every backbone is an ``nn.Module`` that maps NCHW float32 images to an NCHW
feature map (no pooling, no classifier), plus its layers under stable names:
for torchvision's models, their own module paths (``layer4.1.conv2``,
``features.3.conv.1.0``), so torchvision checkpoints load as they are. The
builders (:mod:`tlcore_torch.torchvision_models`,
:mod:`tlcore_torch.efficientnet_lite`, and plugins') follow the public
contract of :mod:`tlcore.extend`; this module does what is the same for
every builder (BatchNorm values from the spec, layer kinds and groups,
weights loading and its checks).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from tlcore import BackboneSpec, LayerInfo, PluginError
from tlcore.extend import BuiltBackbone, build_native, check_layer_groups

__all__ = [
    "NativeBackbone",
    "assemble_backbone",
    "build_backbone",
    "canonical_built",
    "layer_kind",
    "leaf_layers",
    "weights_sha256",
]

from tlcore_torch.weights import WEIGHT_FILE_SUFFIXES, load_weights, weights_sha256

GroupOf = Callable[[str], str]


@dataclass
class NativeBackbone:
    """A built backbone: the torch module and its parameterised layers in forward order.

    ``module`` maps NCHW float32 images to an NCHW feature map with
    ``spec.feature_channels`` channels; it is returned in eval mode. ``layers``
    pairs each leaf module that holds parameters with its :class:`LayerInfo`.
    ``weights_file`` is the file the weights were read from (the torch hub
    cache file for torchvision weights), ``None`` for random initialisation.
    """

    spec: BackboneSpec
    module: nn.Module
    layers: list[tuple[LayerInfo, nn.Module]]
    weights: str | None = None
    weights_file: Path | None = None

    def layer_infos(self) -> list[LayerInfo]:
        """The layers' neutral descriptions, in forward order."""
        return [info for info, _ in self.layers]


def build_backbone(
    spec: BackboneSpec, weights: str | os.PathLike[str] | None, image_size: tuple[int, int] | None = None
) -> NativeBackbone:
    """Build ``spec`` with ``weights``: None (random), a name in ``spec.weight_names``, or a file path.

    The builder registered for ``(spec.name, "torch")`` makes the module
    (:mod:`tlcore.extend` says what it receives and returns); the weights
    are loaded here, strictly. Random initialisation draws from torch's
    global generator, so seed it with ``torch.manual_seed`` first for a
    reproducible backbone.
    """
    request, built = build_native(
        spec, "torch", weights, image_size or spec.input.size, suffixes=WEIGHT_FILE_SUFFIXES, native_type=nn.Module
    )
    backbone = assemble_backbone(
        spec,
        built.model,
        built.group_of,
        weights=None if weights is None else os.fspath(weights),
        weights_file=built.weights_file,
        named_layers=built.layers,
    )
    if not built.weights_loaded and not request.weights.random_init:
        backbone.weights_file = load_weights(request, backbone.layers)
    return backbone


# ---------------------------------------------------------------- layers


def layer_kind(module: nn.Module) -> str:
    """``conv``, ``depthwise_conv``, ``batchnorm``, ``dense`` or ``other`` for a leaf module."""
    if isinstance(module, nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise_conv" if depthwise else "conv"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batchnorm"
    if isinstance(module, nn.Linear):
        return "dense"
    return "other"


def leaf_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(module path, module)`` for every submodule that holds parameters itself, in registration order.

    For networks whose module paths are the canonical names (torchvision's,
    this backend's EfficientNet-Lite), this is a builder's ``layers``.
    """
    return [
        (name, sub) for name, sub in module.named_modules() if next(sub.parameters(recurse=False), None) is not None
    ]


def assemble_backbone(
    spec: BackboneSpec,
    module: nn.Module,
    group_of: GroupOf,
    *,
    weights: str | None,
    weights_file: Path | None,
    named_layers: Sequence[tuple[str, nn.Module]] | None = None,
) -> NativeBackbone:
    """Fix BatchNorm eps/momentum from ``spec``, list the layers with their groups, put ``module`` in eval mode.

    ``named_layers`` (default: :func:`leaf_layers`) must hold every submodule
    that holds parameters.
    """
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.eps = spec.bn_epsilon
            sub.momentum = spec.bn_momentum
    pairs = leaf_layers(module) if named_layers is None else list(named_layers)
    unnamed = {id(sub) for _, sub in leaf_layers(module)} - {id(sub) for _, sub in pairs}
    if unnamed:
        raise PluginError(f"{spec.name}: {len(unnamed)} modules with parameters are missing from the builder's layers.")
    groups = check_layer_groups(spec, [name for name, _ in pairs], group_of)
    layers = [
        (
            LayerInfo(
                name=name,
                group=group,
                kind=layer_kind(sub),
                num_params=sum(p.numel() for p in sub.parameters(recurse=False)),
                layer_type=type(sub).__name__,
            ),
            sub,
        )
        for (name, sub), group in zip(pairs, groups, strict=True)
    ]
    module.eval()
    return NativeBackbone(spec=spec, module=module, layers=layers, weights=weights, weights_file=weights_file)


def canonical_built(module: nn.Module, group_of: GroupOf) -> BuiltBackbone:
    """A module whose module paths are the canonical names, as a builder returns it (weights loaded after)."""
    return BuiltBackbone(model=module, layers=leaf_layers(module), group_of=group_of)
