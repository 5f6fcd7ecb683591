"""A tlcore plugin, written only against tlcore's public API.

It registers the freeze policy ``norm_only``: every backbone layer is frozen
except the normalisation layers, whose scale and shift train (the head always
trains). Training only BatchNorm's affine parameters is a cheap way to adapt a
pretrained network (Frankle, Schwab and Morcos, "Training BatchNorm and Only
BatchNorm", ICLR 2021). ``train_bn`` says whether their running statistics
update too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tlcore import FreezePolicy, LayerInfo
from tlcore.plugins import FreezePolicyInfo, hookimpl

__all__ = ["NormOnly", "tlcore_register_freeze_policies"]


class NormOnly(FreezePolicy):
    """Train only the BatchNorm layers of the backbone, optionally from a group on."""

    def __init__(self, *, groups: Sequence[str] | None = None, train_bn: bool = False) -> None:
        super().__init__(train_bn=train_bn)
        self.groups = tuple(groups) if groups is not None else None

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        return {
            layer.name for layer in layers if layer.is_batchnorm and (self.groups is None or layer.group in self.groups)
        }

    def describe(self) -> str:
        return "norm_only" + (f" groups={list(self.groups)}" if self.groups else "")


@hookimpl
def tlcore_register_freeze_policies(register: Callable[[FreezePolicyInfo], None]) -> None:
    """Register ``norm_only``."""
    register(FreezePolicyInfo("norm_only", NormOnly, "train only BatchNorm scale/shift (plus the head)"))
