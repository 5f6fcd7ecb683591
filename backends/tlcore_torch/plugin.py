"""The PyTorch backend's plugin module: registers names only, imports no torch."""

from __future__ import annotations

from collections.abc import Callable

from tlcore.plugins import BackendInfo, BuilderInfo, hookimpl

BACKEND = "torch"

BUILDERS: dict[str, str] = {
    "efficientnet_lite0": "tlcore_torch.efficientnet_lite:build_efficientnet_lite0",
    "resnet18": "tlcore_torch.torchvision_models:build_resnet18",
    "resnet50": "tlcore_torch.torchvision_models:build_resnet50",
    "mobilenet_v2": "tlcore_torch.torchvision_models:build_mobilenet_v2",
    "vgg16": "tlcore_torch.torchvision_models:build_vgg16",
    "efficientnet_b0": "tlcore_torch.torchvision_models:build_efficientnet_b0",
    "inception_v3": "tlcore_torch.torchvision_models:build_inception_v3",
}
"""The core's architectures (:mod:`tlcore.architectures`) this backend builds, and the builder of each."""


@hookimpl
def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
    """The ``torch`` backend, loaded from :mod:`tlcore_torch.backend` on first use."""
    register(
        BackendInfo(
            name=BACKEND,
            loader="tlcore_torch.backend:TorchBackend",
            requires=("torch", "torchvision"),
            description="PyTorch + torchvision, CUDA when available",
            install_hint="pip install 'tlcore[torch]'",
        )
    )


@hookimpl
def tlcore_register_builders(register: Callable[[BuilderInfo], None]) -> None:
    """torchvision's backbones (torchvision's own modules) and the portable EfficientNet-Lite0."""
    for backbone, builder in BUILDERS.items():
        register(BuilderInfo(backbone, BACKEND, builder))
