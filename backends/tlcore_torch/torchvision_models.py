"""torchvision's backbones as torch builders: torchvision's own modules, everything before global pooling.

The layers keep torchvision's module paths as their names (``layer4.1.conv2``,
``features.3.conv.1.0``), so torchvision's checkpoints load as they are; the
stage tables and groups come from :mod:`tlcore.architectures.torchvision`,
shared with the Keras backend's :mod:`tlcore_keras.torchvision_models`.
"""

from __future__ import annotations

import torch
from torch import nn

from tlcore.architectures import torchvision as tv
from tlcore.extend import BuildRequest, BuiltBackbone
from tlcore_torch.backbones import canonical_built

__all__ = [
    "ChainFeatures",
    "SequentialFeatures",
    "build_efficientnet_b0",
    "build_inception_v3",
    "build_mobilenet_v2",
    "build_resnet18",
    "build_resnet50",
    "build_vgg16",
]


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


def build_resnet18(request: BuildRequest) -> BuiltBackbone:
    """ResNet-18 features (512 channels, stride 32); groups stem, layer1..layer4."""
    import torchvision.models as tvm

    return canonical_built(ChainFeatures(tvm.resnet18(weights=None), tv.RESNET_PARTS), tv.resnet_group)


def build_resnet50(request: BuildRequest) -> BuiltBackbone:
    """ResNet-50 features (2048 channels, stride 32); groups stem, layer1..layer4."""
    import torchvision.models as tvm

    return canonical_built(ChainFeatures(tvm.resnet50(weights=None), tv.RESNET_PARTS), tv.resnet_group)


def build_mobilenet_v2(request: BuildRequest) -> BuiltBackbone:
    """MobileNetV2 features (1280 channels); groups stem, stage1..stage7, top."""
    import torchvision.models as tvm

    return canonical_built(SequentialFeatures(tvm.mobilenet_v2(weights=None).features), tv.mobilenet_v2_group)


def build_vgg16(request: BuildRequest) -> BuiltBackbone:
    """VGG-16 convolutional features (512 channels); groups block1..block5, split after each max-pool.

    Only ``features`` is built (torchvision's ``make_layers``), with VGG's own
    initialisation, so the 120M-parameter classifier is never allocated.
    """
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)
    for layer in features.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.constant_(layer.bias, 0)
    return canonical_built(SequentialFeatures(features), tv.vgg16_group)


def build_efficientnet_b0(request: BuildRequest) -> BuiltBackbone:
    """torchvision EfficientNet-B0 features (1280 channels); groups stem, stage1..stage7, top."""
    import torchvision.models as tvm

    return canonical_built(SequentialFeatures(tvm.efficientnet_b0(weights=None).features), tv.efficientnet_b0_group)


def build_inception_v3(request: BuildRequest) -> BuiltBackbone:
    """Inception v3 up to Mixed_7c (2048 channels); groups stem, mixed5, mixed6, mixed7.

    Built with ``transform_input=False``: the spec's (x - 0.5) / 0.5
    preprocessing is what torchvision's ``transform_input`` produces.
    """
    import torchvision.models as tvm

    net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    return canonical_built(ChainFeatures(net, tv.INCEPTION_V3_PARTS), tv.inception_v3_group)
