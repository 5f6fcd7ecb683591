"""The PyTorch backend's plugin module: registers names only, imports no torch."""

from __future__ import annotations

from collections.abc import Callable

from tlcore import BackboneSpec
from tlcore.plugins import BackendInfo, hookimpl


@hookimpl
def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
    """The ``torch`` backend, loaded from :mod:`tlcore_torch.backend` on first use."""
    register(
        BackendInfo(
            name="torch",
            loader="tlcore_torch.backend:TorchBackend",
            requires=("torch", "torchvision"),
            description="PyTorch + torchvision, CUDA when available",
            install_hint="pip install 'tlcore[torch]'",
        )
    )


@hookimpl
def tlcore_register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """torchvision's ImageNet backbones and the portable EfficientNet-Lite0."""
    from tlcore_torch.specs import BACKBONES

    for spec in BACKBONES:
        register(spec)
