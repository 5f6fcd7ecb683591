"""torchvision's ImageNet backbones described once, for every backend: stage tables, names, groups, specs.

The portable ones (ResNet-18, ResNet-50, MobileNetV2) are built natively by
the torch backend (torchvision's own modules) and by the Keras backends
(module for module); both read their facts here: blocks per stage, widths,
MobileNetV2's inverted-residual table, the freeze groups of torchvision's
module paths (``layer4.1.conv2`` is in ``layer4``; ``features.3.conv.1.0`` in
``stage2``), the classifier keys a backbone leaves out, the ImageNet
preprocessing and BatchNorm values, and where the weights come from.
VGG-16, EfficientNet-B0 and Inception v3 are torchvision-only: the torch
backend builds them, with the groups defined here.

    >>> from tlcore.architectures.torchvision import mobilenet_v2_group, resnet_group
    >>> resnet_group("layer4.1.conv2"), resnet_group("bn1"), mobilenet_v2_group("features.3.conv.1.0")
    ('layer4', 'stem', 'stage2')

BatchNorm values are the ones each architecture was trained with, checked
against the torchvision 0.29 source: PyTorch's default ``BatchNorm2d`` (eps
1e-5, momentum 0.1), and eps 1e-3 for ``inception_v3``. ``bn_momentum``
follows PyTorch's convention (the weight of the new batch statistic).
No framework is imported.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from tlcore._specs import BackboneSpec, ImageInputSpec, StateDictLayout, WeightsSource

__all__ = [
    "BACKBONES",
    "BOTTLENECK_EXPANSION",
    "EFFICIENTNET_B0_STAGE_STARTS",
    "HEAD_PREFIXES",
    "IMAGENET_INPUT",
    "INCEPTION_V3_PARTS",
    "MOBILENET_V2",
    "MOBILENET_V2_LAST_CHANNELS",
    "MOBILENET_V2_SETTING",
    "MOBILENET_V2_STAGE_STARTS",
    "MOBILENET_V2_STEM_CHANNELS",
    "PORTABLE",
    "RESNET18",
    "RESNET50",
    "RESNET_BLOCKS",
    "RESNET_GROUPS",
    "RESNET_PARTS",
    "RESNET_WIDTHS",
    "STAGE_GROUPS",
    "VGG16_BLOCK_STARTS",
    "efficientnet_b0_group",
    "features_group",
    "imagenet_weights",
    "inception_v3_group",
    "mobilenet_v2_group",
    "resnet_group",
    "resnet_spec",
    "vgg16_group",
]

# torchvision's ImageNet evaluation for these weights: resize the shorter side to 256, centre-crop 224.
IMAGENET_INPUT = ImageInputSpec(
    size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop_pct=224 / 256
)
"""torchvision's ImageNet preprocessing: RGB in [0, 1], normalised by the ImageNet mean and std."""

# torchvision's Inception3 with ``transform_input=True`` maps ImageNet-normalized pixels to (x - 0.5) / 0.5, the
# range the ported Google weights were trained on. The backbone is built with ``transform_input=False`` and says
# so here instead.
_INCEPTION_INPUT = ImageInputSpec(
    size=(299, 299), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), min_size=75, crop_pct=299 / 342
)

HEAD_PREFIXES: tuple[str, ...] = ("fc.", "classifier.", "AuxLogits.")
"""Keys of torchvision's classifiers (and Inception's auxiliary one), which a backbone leaves out."""

_LAYOUT = StateDictLayout(drop_prefixes=HEAD_PREFIXES)
_LICENSE = "BSD-3-Clause (torchvision code); weights trained on ImageNet-1k, subject to its terms"
_NOTE = (
    " torchvision notes that pretrained weights may carry the terms of their training data; ImageNet's allow "
    "non-commercial research and education use."
)

STAGE_GROUPS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "top")
"""The groups of the ``features``-indexed networks (MobileNetV2, EfficientNet): stem, seven stages, top."""


def imagenet_weights(enum_member: str, file_name: str, note: str = "") -> tuple[WeightsSource, ...]:
    """The ``"imagenet"`` source of torchvision's ``enum_member`` (``ResNet18_Weights.IMAGENET1K_V1``).

    ``file_name`` is the one torchvision downloads; its sha256 prefix is
    checked by every backend that downloads it from the URL.
    """
    return (
        WeightsSource(
            name="imagenet",
            source=f"torchvision {enum_member}",
            license=_LICENSE,
            description=f"ImageNet-1k classifier weights from torchvision's {enum_member}.{note}{_NOTE}",
            url=f"https://download.pytorch.org/models/{file_name}",
            provider="torchvision",
            reference=enum_member,
        ),
    )


# ---------------------------------------------------------------- ResNet

RESNET_BLOCKS: dict[str, tuple[int, ...]] = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3)}
"""Blocks per stage (``layer1`` .. ``layer4``) of torchvision's ResNets."""
RESNET_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
"""Each stage's width (a Bottleneck's output is ``BOTTLENECK_EXPANSION`` times it)."""
BOTTLENECK_EXPANSION = 4
RESNET_GROUPS = ("stem", "layer1", "layer2", "layer3", "layer4")
RESNET_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
"""torchvision's ResNet children before global pooling, in forward order."""


def resnet_group(name: str) -> str:
    """``stem`` for ``conv1`` and ``bn1``, else the stage: ``layer3.1.bn2`` -> ``layer3``."""
    top = name.split(".")[0]
    return "stem" if top in ("conv1", "bn1") else top


def resnet_spec(
    name: str, *, feature_channels: int, weights: tuple[WeightsSource, ...] = (), description: str = ""
) -> BackboneSpec:
    """A portable torchvision-structured ResNet: ImageNet input, groups stem and layer1..layer4, torch's BatchNorm.

    Plugins that add another depth (ResNet-34, ResNet-101) describe it with this.
    """
    return BackboneSpec(
        name=name,
        family="resnet",
        feature_channels=feature_channels,
        input=IMAGENET_INPUT,
        groups=RESNET_GROUPS,
        weights=weights,
        bn_epsilon=1e-5,
        bn_momentum=0.1,
        description=description,
        state_dict=_LAYOUT,
        portable=True,
    )


RESNET18 = resnet_spec(
    "resnet18",
    feature_channels=512,
    weights=imagenet_weights("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth"),
    description="ResNet-18 (torchvision's structure), 11.2M parameters without the classifier.",
)
RESNET50 = resnet_spec(
    "resnet50",
    feature_channels=2048,
    weights=imagenet_weights("ResNet50_Weights.IMAGENET1K_V1", "resnet50-0676ba61.pth"),
    description="ResNet-50 (torchvision's structure, stride on the 3x3 convolution), 23.5M parameters without the "
    "classifier.",
)


# ---------------------------------------------------------------- features-indexed networks


def features_group(groups: Sequence[str], starts: Sequence[int]) -> Callable[[str], str]:
    """The group of ``features.<i>...``: ``groups[k]`` for ``starts[k] <= i < starts[k + 1]``."""
    if len(groups) != len(starts):
        raise ValueError(f"features_group: {len(groups)} groups but {len(starts)} starts")

    def group_of(name: str) -> str:
        index = int(name.split(".")[1])
        return groups[bisect.bisect_right(starts, index) - 1]

    return group_of


MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip
"""torchvision's ``inverted_residual_setting`` at width 1.0: (expand ratio, channels, repeats, first stride)."""
MOBILENET_V2_STEM_CHANNELS = 32
MOBILENET_V2_LAST_CHANNELS = 1280
MOBILENET_V2_STAGE_STARTS = (0, 1, 2, 4, 7, 11, 14, 17, 18)
"""The first ``features`` index of each of :data:`STAGE_GROUPS` (19 features in all)."""
mobilenet_v2_group = features_group(STAGE_GROUPS, MOBILENET_V2_STAGE_STARTS)
mobilenet_v2_group.__doc__ = "The group of ``features.<i>...``: stem (0), stage1 (1), stage2 (2-3) ... top (18)."

MOBILENET_V2 = BackboneSpec(
    name="mobilenet_v2",
    family="mobilenet",
    feature_channels=MOBILENET_V2_LAST_CHANNELS,
    input=IMAGENET_INPUT,
    groups=STAGE_GROUPS,
    weights=imagenet_weights("MobileNet_V2_Weights.IMAGENET1K_V1", "mobilenet_v2-b0353104.pth"),
    bn_epsilon=1e-5,
    bn_momentum=0.1,
    description="MobileNetV2 1.0 (torchvision's structure), 2.2M parameters without the classifier.",
    state_dict=_LAYOUT,
    portable=True,
)

EFFICIENTNET_B0_STAGE_STARTS = tuple(range(9))
efficientnet_b0_group = features_group(STAGE_GROUPS, EFFICIENTNET_B0_STAGE_STARTS)
VGG16_BLOCK_STARTS = (0, 5, 10, 17, 24)
"""torchvision's ``make_layers``: conv + ReLU per width, one MaxPool2d per "M"; each block ends with its pool."""
vgg16_group = features_group(("block1", "block2", "block3", "block4", "block5"), VGG16_BLOCK_STARTS)

INCEPTION_V3_PARTS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip
"""torchvision's Inception v3 children up to ``Mixed_7c``, without AuxLogits."""


def inception_v3_group(name: str) -> str:
    """``stem`` for the ``Conv2d_*`` layers, else ``mixed5``, ``mixed6`` or ``mixed7``."""
    return "stem" if name.startswith("Conv2d_") else "mixed" + name[len("Mixed_")]


_TORCHVISION_ONLY = (
    BackboneSpec(
        name="vgg16",
        family="vgg",
        feature_channels=512,
        input=IMAGENET_INPUT,
        groups=("block1", "block2", "block3", "block4", "block5"),
        weights=imagenet_weights("VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth"),
        description="VGG-16 convolutional part (torchvision, no BatchNorm), 14.7M parameters.",
        state_dict=_LAYOUT,
    ),
    BackboneSpec(
        name="efficientnet_b0",
        family="efficientnet",
        feature_channels=1280,
        input=IMAGENET_INPUT,
        groups=STAGE_GROUPS,
        weights=imagenet_weights(
            "EfficientNet_B0_Weights.IMAGENET1K_V1",
            "efficientnet_b0_rwightman-7f5810bc.pth",
            " Trained in PyTorch by Ross Wightman (timm), not the TF original.",
        ),
        description="EfficientNet-B0 (torchvision: SiLU, squeeze-excite, symmetric padding), 4.0M parameters.",
        state_dict=_LAYOUT,
    ),
    BackboneSpec(
        name="inception_v3",
        family="inception",
        feature_channels=2048,
        input=_INCEPTION_INPUT,
        groups=("stem", "mixed5", "mixed6", "mixed7"),
        weights=imagenet_weights(
            "Inception_V3_Weights.IMAGENET1K_V1",
            "inception_v3_google-0cc3c7bd.pth",
            " Ported by torchvision from the original TensorFlow release.",
        ),
        bn_epsilon=1e-3,
        description="Inception v3 (torchvision) up to Mixed_7c, without AuxLogits; 21.8M parameters.",
        state_dict=_LAYOUT,
    ),
)

PORTABLE: tuple[BackboneSpec, ...] = (RESNET18, RESNET50, MOBILENET_V2)
"""The torchvision-structured backbones every backend builds with the same names and weights."""
BACKBONES: tuple[BackboneSpec, ...] = (*PORTABLE, *_TORCHVISION_ONLY)
"""Every torchvision backbone described here (the portable ones first)."""
