"""torchvision's ResNet-18, ResNet-50 and MobileNetV2 in Keras 3, module for module.

Each model is the feature extractor of torchvision's (everything before global
pooling) and computes exactly what it computes: the same blocks (BasicBlock;
Bottleneck with the stride on its 3x3 convolution, torchvision's "v1.5";
MobileNetV2's inverted residuals with ReLU6), bias-free convolutions,
BatchNorm epsilon and momentum from the spec. torchvision pads symmetrically
(7x7 stride 2 by 3, 3x3 by 1, whatever the image size); here every padded
convolution is an explicit ``ZeroPadding2D`` followed by a "valid" one, which
every Keras backend computes alike.

The layers' :class:`~tlcore.LayerInfo` names are torchvision's module paths
(``conv1``, ``layer4.1.conv2``, ``features.3.conv.1.0``), in torchvision's
order and groups, exactly as the torch backend lists them: ``backbone_state()``
has the same keys on every backend, and a torchvision state dict (its
classifier dropped) loads as it is. Keras layer names are those paths with the
dots replaced by underscores (``layer4_1_conv2``): Keras on torch keeps
variables in a ``ParameterDict``, whose keys cannot contain dots.

The stage tables and groups come from :mod:`tlcore.architectures.torchvision`.
Random initialisation is torchvision's, drawn from numpy's global generator
(which Keras's seeding seeds); with any other weights the kernels start at
zero, and the backend loads: ``"imagenet"`` (the file torchvision downloads,
read without torch: torch hub's copy if it has one, else a download into
tlcore's cache, both checked against the sha256 prefix in its name), a
torchvision state dict (``.pth``, ``.pt``, ``.bin``, ``.safetensors``; the
classifier's keys are dropped), a neutral checkpoint of the same
architecture (``NAME.json``, hash-checked), or a Keras ``.weights.h5`` saved
from this model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tlcore import BackboneSpec
from tlcore.architectures import torchvision as tv
from tlcore.extend import BuildRequest, BuiltBackbone
from tlcore_keras.backbones import GroupOf
from tlcore_keras.layers import DepthwiseConv2D

__all__ = [
    "NamedLayers",
    "build_mobilenet_v2",
    "build_resnet18",
    "build_resnet50",
    "keras_name",
    "mobilenet_v2",
    "resnet",
]

NamedLayers = list[tuple[str, keras.layers.Layer]]
"""``(torchvision module path, Keras layer)`` for each layer that owns weights, in torchvision's order."""


def keras_name(path: str) -> str:
    """The Keras layer name of a torchvision module path: ``layer4.1.conv2`` -> ``layer4_1_conv2``."""
    return path.replace(".", "_")


@keras.saving.register_keras_serializable(package="tlcore")
class _KaimingNormal(keras.initializers.Initializer):
    """torch's ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``, torchvision's initialisation of these models.

    Normal with std ``sqrt(2 / fan_out)``, fan_out as torch counts it for its
    weight layout: output channels x kh x kw (for a depthwise convolution,
    channels x multiplier x kh x kw). Drawn on the host from numpy's global
    generator, which Keras's seeding seeds too (``keras.utils.set_random_seed``,
    the tlcore backend's ``seed``): on JAX, drawing on the device compiles a
    program per kernel shape, seconds per backbone.
    """

    def __init__(self, depthwise: bool = False) -> None:
        self.depthwise = depthwise

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        kh, kw, channels, out = (int(d) for d in shape)  # depthwise: (kh, kw, channels, multiplier)
        fan_out = kh * kw * (channels * out if self.depthwise else out)
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        values = rng.standard_normal((kh, kw, channels, out), dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_out))
        return keras.ops.convert_to_tensor(values, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """What :meth:`__init__` takes, for Keras serialization."""
        return {"depthwise": self.depthwise}


class _Graph:
    """Adds torchvision-named layers to a functional graph and remembers those with weights, in order."""

    def __init__(self, spec: BackboneSpec, random_init: bool) -> None:
        self.spec = spec
        self.named: NamedLayers = []
        # Weights that are loaded anyway start at zero, which costs nothing.
        zeros = keras.initializers.Zeros()
        self.conv_init: keras.initializers.Initializer = _KaimingNormal() if random_init else zeros
        self.depthwise_init: keras.initializers.Initializer = _KaimingNormal(depthwise=True) if random_init else zeros

    def _keep(self, path: str, layer: keras.layers.Layer) -> keras.layers.Layer:
        self.named.append((path, layer))
        return layer

    @staticmethod
    def _pad(x: Any, path: str, kernel: int) -> Any:
        amount = (kernel - 1) // 2  # torchvision's padding for odd kernels, on every side
        return keras.layers.ZeroPadding2D(amount, name=f"{keras_name(path)}_pad")(x) if amount else x

    def conv(self, x: Any, path: str, filters: int, kernel: int, stride: int = 1) -> Any:
        layer = keras.layers.Conv2D(
            filters, kernel, stride, padding="valid", use_bias=False, kernel_initializer=self.conv_init,
            name=keras_name(path),
        )  # fmt: skip
        return self._keep(path, layer)(self._pad(x, path, kernel))

    def depthwise(self, x: Any, path: str, kernel: int, stride: int) -> Any:
        layer = DepthwiseConv2D(
            kernel, stride, padding="valid", use_bias=False, depthwise_initializer=self.depthwise_init,
            name=keras_name(path),
        )  # fmt: skip
        return self._keep(path, layer)(self._pad(x, path, kernel))

    def bn(self, x: Any, path: str) -> Any:
        """BatchNorm with gamma 1, beta 0 (torchvision's init); ``spec.bn_momentum`` is in torch's convention."""
        layer = keras.layers.BatchNormalization(
            epsilon=self.spec.bn_epsilon, momentum=1.0 - self.spec.bn_momentum, name=keras_name(path)
        )
        return self._keep(path, layer)(x)

    @staticmethod
    def relu(x: Any, path: str, max_value: float | None = None) -> Any:
        return keras.layers.ReLU(max_value=max_value, name=keras_name(path))(x)

    @staticmethod
    def add(x: Any, y: Any, path: str) -> Any:
        return keras.layers.Add(name=keras_name(path))([x, y])


# ---------------------------------------------------------------- ResNet


def _basic_block(g: _Graph, x: Any, prefix: str, width: int, stride: int, downsample: bool) -> Any:
    y = g.relu(g.bn(g.conv(x, f"{prefix}.conv1", width, 3, stride), f"{prefix}.bn1"), f"{prefix}.relu1")
    y = g.bn(g.conv(y, f"{prefix}.conv2", width, 3), f"{prefix}.bn2")
    return _residual(g, x, y, prefix, width, stride, downsample)


def _bottleneck(g: _Graph, x: Any, prefix: str, width: int, stride: int, downsample: bool) -> Any:
    y = g.relu(g.bn(g.conv(x, f"{prefix}.conv1", width, 1), f"{prefix}.bn1"), f"{prefix}.relu1")
    y = g.relu(g.bn(g.conv(y, f"{prefix}.conv2", width, 3, stride), f"{prefix}.bn2"), f"{prefix}.relu2")
    y = g.bn(g.conv(y, f"{prefix}.conv3", width * tv.BOTTLENECK_EXPANSION, 1), f"{prefix}.bn3")
    return _residual(g, x, y, prefix, width * tv.BOTTLENECK_EXPANSION, stride, downsample)


def _residual(g: _Graph, x: Any, y: Any, prefix: str, channels: int, stride: int, downsample: bool) -> Any:
    """``relu(y + identity)``; the identity is ``downsample`` (1x1 convolution, BatchNorm) where shapes change."""
    if downsample:  # after the main branch, as torchvision registers it
        x = g.bn(g.conv(x, f"{prefix}.downsample.0", channels, 1, stride), f"{prefix}.downsample.1")
    return g.relu(g.add(y, x, f"{prefix}.add"), f"{prefix}.relu")


def resnet(
    spec: BackboneSpec,
    image_size: tuple[int, int],
    *,
    blocks: tuple[int, ...],
    bottleneck: bool,
    random_init: bool = True,
) -> tuple[keras.Model, NamedLayers]:
    """torchvision's ResNet features (``conv1`` .. ``layer4``) for NHWC images of ``image_size``.

    ``blocks`` per stage (:data:`tlcore.architectures.torchvision.RESNET_BLOCKS`); BasicBlocks, or Bottlenecks
    with ``bottleneck``. With ``random_init=False`` convolution kernels start
    at zero, for weights that are loaded next.
    """
    g = _Graph(spec, random_init)
    inputs = keras.Input((*image_size, spec.input.channels), name="input_layer")
    x = g.relu(g.bn(g.conv(inputs, "conv1", 64, 7, 2), "bn1"), "relu")
    # torchvision's max-pool pads with -inf. After the ReLU every value is >= 0 and each 3x3 window holds at least
    # one real pixel, so zero padding gives the same maxima.
    x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="valid", name="maxpool")(x)
    block = _bottleneck if bottleneck else _basic_block
    expansion = tv.BOTTLENECK_EXPANSION if bottleneck else 1
    channels = 64
    for stage, (repeats, width) in enumerate(zip(blocks, tv.RESNET_WIDTHS, strict=True), start=1):
        for index in range(repeats):
            stride = 2 if stage > 1 and index == 0 else 1
            downsample = index == 0 and (stride != 1 or channels != width * expansion)
            x = block(g, x, f"layer{stage}.{index}", width, stride, downsample)
            channels = width * expansion
    return keras.Model(inputs, x, name=spec.name), g.named


# ---------------------------------------------------------------- MobileNetV2


def _inverted_residual(g: _Graph, x: Any, prefix: str, channels: int, out: int, stride: int, expand: int) -> Any:
    """torchvision's ``InvertedResidual``: ``prefix`` is ``features.<i>.conv``, its ``nn.Sequential``."""
    y, part = x, 0
    if expand != 1:
        hidden = round(channels * expand)
        y = g.relu(g.bn(g.conv(y, f"{prefix}.0.0", hidden, 1), f"{prefix}.0.1"), f"{prefix}.0.2", 6.0)
        part = 1
    y = g.depthwise(y, f"{prefix}.{part}.0", 3, stride)
    y = g.relu(g.bn(y, f"{prefix}.{part}.1"), f"{prefix}.{part}.2", 6.0)
    y = g.bn(g.conv(y, f"{prefix}.{part + 1}", out, 1), f"{prefix}.{part + 2}")
    return g.add(x, y, f"{prefix}.add") if stride == 1 and channels == out else y


def mobilenet_v2(
    spec: BackboneSpec, image_size: tuple[int, int], *, random_init: bool = True
) -> tuple[keras.Model, NamedLayers]:
    """torchvision's MobileNetV2 1.0 ``features`` (1280 channels) for NHWC images of ``image_size``.

    With ``random_init=False`` convolution kernels start at zero, for weights that are loaded next.
    """
    g = _Graph(spec, random_init)
    inputs = keras.Input((*image_size, spec.input.channels), name="input_layer")
    x = g.relu(
        g.bn(g.conv(inputs, "features.0.0", tv.MOBILENET_V2_STEM_CHANNELS, 3, 2), "features.0.1"), "features.0.2", 6.0
    )
    channels, index = tv.MOBILENET_V2_STEM_CHANNELS, 1
    for expand, out, repeats, stride in tv.MOBILENET_V2_SETTING:
        for i in range(repeats):
            x = _inverted_residual(g, x, f"features.{index}.conv", channels, out, stride if i == 0 else 1, expand)
            channels, index = out, index + 1
    x = g.bn(g.conv(x, f"features.{index}.0", tv.MOBILENET_V2_LAST_CHANNELS, 1), f"features.{index}.1")
    x = g.relu(x, f"features.{index}.2", 6.0)
    return keras.Model(inputs, x, name=spec.name), g.named


# ---------------------------------------------------------------- builders


def _built(
    request: BuildRequest, make: Callable[..., tuple[keras.Model, NamedLayers]], group_of: GroupOf
) -> BuiltBackbone:
    model, named = make(request.spec, request.image_size, random_init=request.weights.random_init)
    return BuiltBackbone(model=model, layers=named, group_of=group_of)


def build_resnet18(request: BuildRequest) -> BuiltBackbone:
    """ResNet-18 features (512 channels, stride 32); groups stem, layer1..layer4. Weights: see the module doc."""
    make = functools.partial(resnet, blocks=tv.RESNET_BLOCKS["resnet18"], bottleneck=False)
    return _built(request, make, tv.resnet_group)


def build_resnet50(request: BuildRequest) -> BuiltBackbone:
    """ResNet-50 features (2048 channels, stride 32); groups stem, layer1..layer4. Weights: see the module doc."""
    make = functools.partial(resnet, blocks=tv.RESNET_BLOCKS["resnet50"], bottleneck=True)
    return _built(request, make, tv.resnet_group)


def build_mobilenet_v2(request: BuildRequest) -> BuiltBackbone:
    """MobileNetV2 1.0 features (1280 channels, stride 32); groups stem, stage1..stage7, top.

    Weights: see the module doc.
    """
    return _built(request, mobilenet_v2, tv.mobilenet_v2_group)
