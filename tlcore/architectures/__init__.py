"""Framework-neutral descriptions of the architectures that several backends build natively.

A module here holds what every backend must agree on for one architecture
(block table, canonical layer names and groups, padding rule, BatchNorm
values, preprocessing, reference weights and their key names) in plain
Python, so that each backend only writes the layers in its own framework:
:mod:`~tlcore.architectures.efficientnet_lite` (EfficientNet-Lite0) and
:mod:`~tlcore.architectures.torchvision` (ResNet-18/50, MobileNetV2 and the
torchvision-only VGG-16, EfficientNet-B0, Inception v3). :data:`BACKBONES`
holds their specs, which the core's built-in plugin registers.

    >>> from tlcore.architectures import efficientnet_lite
    >>> efficientnet_lite.group_of("block2a_dwconv")
    'stage2'
"""

from __future__ import annotations

from tlcore._specs import BackboneSpec
from tlcore.architectures import efficientnet_lite, torchvision

__all__ = ["BACKBONES", "efficientnet_lite", "torchvision"]

BACKBONES: tuple[BackboneSpec, ...] = (efficientnet_lite.SPEC, *torchvision.BACKBONES)
"""Every backbone described in the core: the portable ones and torchvision's torch-only ones."""
