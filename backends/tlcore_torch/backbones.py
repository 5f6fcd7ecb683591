"""Torch backbones: build a spec's feature extractor, with random, named or file weights.

Every backbone is an ``nn.Module`` that maps NCHW float32 images to an NCHW
feature map (no pooling, no classifier), plus its layers under stable names:
the module paths of torchvision's own models (``layer4.1.conv2``,
``features.3.conv.1.0``), so torchvision checkpoints load as they are.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tlcore import BackboneSpec, ConfigError, LayerInfo

__all__ = [
    "NativeBackbone",
    "assemble_backbone",
    "build_backbone",
    "build_efficientnet_b0",
    "build_inception_v3",
    "build_mobilenet_v2",
    "build_resnet18",
    "build_resnet50",
    "build_vgg16",
    "layer_kind",
    "load_backbone_state",
    "read_state_dict",
    "resolve_weights",
    "weights_sha256",
]

from tlcore_torch.weights import (
    load_backbone_state,
    read_state_dict,
    resolve_weights,
    torchvision_state_dict,
    weights_sha256,
)

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


def build_backbone(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """Build ``spec`` with ``weights``: None (random), a name in ``spec.weight_names``, or a file path.

    Random initialisation draws from torch's global generator, so seed it with
    ``torch.manual_seed`` first for a reproducible backbone.
    """
    if spec.backend != "torch":
        raise ConfigError(f"backbone {spec.name!r} is registered for backend {spec.backend!r}, not 'torch'.")
    module_name, _, function_name = spec.builder.partition(":")
    try:
        builder = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"backbone {spec.name!r}: cannot import its builder {spec.builder!r}: {exc}") from exc
    backbone = builder(spec, weights)
    if not isinstance(backbone, NativeBackbone):
        raise ConfigError(
            f"backbone {spec.name!r}: {spec.builder} returned {type(backbone).__name__}, not NativeBackbone."
        )
    return backbone


def _build_torchvision(
    spec: BackboneSpec,
    weights: str | os.PathLike[str] | None,
    make: Callable[[], nn.Module],
    group_of: GroupOf,
    drop_prefixes: tuple[str, ...],
) -> NativeBackbone:
    kind, value = resolve_weights(spec, weights)
    module = make()
    weights_file: Path | None = None
    if kind == "named":
        state, weights_file = torchvision_state_dict(spec, str(value))
        load_backbone_state(module, state, drop_prefixes=drop_prefixes, what=f"torchvision ({value!r})")
    elif kind == "file":
        weights_file = Path(str(value))
        state = read_state_dict(weights_file)
        load_backbone_state(module, state, drop_prefixes=drop_prefixes, what=f"file {str(weights_file)!r}")
    return assemble_backbone(
        spec, module, group_of, weights=None if weights is None else os.fspath(weights), weights_file=weights_file
    )


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


def assemble_backbone(
    spec: BackboneSpec,
    module: nn.Module,
    group_of: GroupOf,
    *,
    weights: str | None,
    weights_file: Path | None,
) -> NativeBackbone:
    """Fix BatchNorm eps/momentum from ``spec``, list the layers with their groups, put ``module`` in eval mode."""
    layers: list[tuple[LayerInfo, nn.Module]] = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.eps = spec.bn_epsilon
            sub.momentum = spec.bn_momentum
        params = list(sub.parameters(recurse=False))
        if not params:
            continue
        group = group_of(name)
        if group not in spec.groups:
            raise RuntimeError(f"{spec.name}: layer {name!r} was put in group {group!r}, not one of {spec.groups}.")
        info = LayerInfo(name=name, group=group, kind=layer_kind(sub), num_params=sum(p.numel() for p in params))
        layers.append((info, sub))
    module.eval()
    return NativeBackbone(spec=spec, module=module, layers=layers, weights=weights, weights_file=weights_file)


# ---------------------------------------------------------------- torchvision feature extractors


class ChainFeatures(nn.Module):
    """Named children of a torchvision model, run one after the other under their torchvision names.

    Used for ResNet (``conv1`` ... ``layer4``) and Inception v3 (``Conv2d_1a_3x3``
    ... ``Mixed_7c``): everything before global pooling, nothing after.
    """

    def __init__(self, net: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        for name in names:
            self.add_module(name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images to the last child's feature map."""
        for child in self.children():
            x = child(x)
        return x


class SequentialFeatures(nn.Module):
    """A torchvision model's ``features`` part (MobileNetV2, VGG, EfficientNet), under the name ``features``."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images to the last feature map."""
        out: torch.Tensor = self.features(x)
        return out


_RESNET_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
_INCEPTION_PARTS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip


def _resnet_group(name: str) -> str:
    top = name.split(".")[0]
    return "stem" if top in ("conv1", "bn1") else top


def _inception_group(name: str) -> str:
    return "stem" if name.startswith("Conv2d_") else "mixed" + name[len("Mixed_")]


def _indexed_group(bounds: Mapping[str, range]) -> GroupOf:
    """Group of ``features.<i>...`` by the range of ``i`` each group covers."""
    table = {i: group for group, indices in bounds.items() for i in indices}

    def group_of(name: str) -> str:
        return table[int(name.split(".")[1])]

    return group_of


def _split(groups: tuple[str, ...], starts: Iterable[int], stop: int) -> dict[str, range]:
    """``{group: range of feature indices}`` from each group's first index."""
    bounds = (*starts, stop)
    return {group: range(a, b) for group, a, b in zip(groups, bounds[:-1], bounds[1:], strict=True)}


_STAGES = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "top")
_MOBILENET_V2_GROUPS = _split(_STAGES, (0, 1, 2, 4, 7, 11, 14, 17, 18), 19)
_EFFICIENTNET_GROUPS = _split(_STAGES, range(9), 9)
# torchvision's make_layers: conv + ReLU per width, one MaxPool2d per "M"; each block ends with its pool.
_VGG16_GROUPS = _split(("block1", "block2", "block3", "block4", "block5"), (0, 5, 10, 17, 24), 31)


def build_resnet18(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """ResNet-18 features (512 channels, stride 32); groups stem, layer1..layer4."""
    import torchvision.models as tvm

    net = lambda: ChainFeatures(tvm.resnet18(weights=None), _RESNET_PARTS)  # noqa: E731
    return _build_torchvision(spec, weights, net, _resnet_group, ("fc.",))


def build_resnet50(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """ResNet-50 features (2048 channels, stride 32); groups stem, layer1..layer4."""
    import torchvision.models as tvm

    net = lambda: ChainFeatures(tvm.resnet50(weights=None), _RESNET_PARTS)  # noqa: E731
    return _build_torchvision(spec, weights, net, _resnet_group, ("fc.",))


def build_mobilenet_v2(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """MobileNetV2 features (1280 channels); groups stem, stage1..stage7, top."""
    import torchvision.models as tvm

    return _build_torchvision(
        spec,
        weights,
        lambda: SequentialFeatures(tvm.mobilenet_v2(weights=None).features),
        _indexed_group(_MOBILENET_V2_GROUPS),
        ("classifier.",),
    )


def build_vgg16(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """VGG-16 convolutional features (512 channels); groups block1..block5, split after each max-pool.

    Only ``features`` is built (torchvision's ``make_layers``), with VGG's own
    initialisation, so the 120M-parameter classifier is never allocated.
    """
    from torchvision.models.vgg import cfgs, make_layers

    def make() -> nn.Module:
        features = make_layers(cfgs["D"], batch_norm=False)
        for layer in features.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0)
        return SequentialFeatures(features)

    return _build_torchvision(spec, weights, make, _indexed_group(_VGG16_GROUPS), ("classifier.",))


def build_efficientnet_b0(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """torchvision EfficientNet-B0 features (1280 channels); groups stem, stage1..stage7, top."""
    import torchvision.models as tvm

    return _build_torchvision(
        spec,
        weights,
        lambda: SequentialFeatures(tvm.efficientnet_b0(weights=None).features),
        _indexed_group(_EFFICIENTNET_GROUPS),
        ("classifier.",),
    )


def build_inception_v3(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """Inception v3 up to Mixed_7c (2048 channels); groups stem, mixed5, mixed6, mixed7.

    Built with ``transform_input=False``: the spec's (x - 0.5) / 0.5
    preprocessing is what torchvision's ``transform_input`` produces.
    """
    import torchvision.models as tvm

    def make() -> nn.Module:
        net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
        return ChainFeatures(net, _INCEPTION_PARTS)

    return _build_torchvision(spec, weights, make, _inception_group, ("fc.", "AuxLogits."))
