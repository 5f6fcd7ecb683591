"""The PyTorch backend's plugin module: registers names only, imports no torch."""

from __future__ import annotations

from collections.abc import Callable

from tlcore.plugins import BackendInfo, BuilderInfo, ImportConflict, hookimpl

BACKEND = "torch"

AFTER_TENSORFLOW = ImportConflict(
    "tensorflow",
    reason="torch's compiler stack (torch._dynamo and triton's native library, which importing torchvision or "
    "using torch.optim loads) crashes the process with a segmentation fault when it is loaded after TensorFlow "
    "(measured with tensorflow 2.21.0, torch 2.14.1, torchvision 0.29.1; importing torch alone first is not enough)",
    unless_loaded=("torch._dynamo", "triton"),
)
"""Importing tensorflow, then torchvision or a torch optimizer, is a segmentation fault; torch._dynamo first is safe."""

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
            conflicts=(AFTER_TENSORFLOW,),
        )
    )


@hookimpl
def tlcore_register_builders(register: Callable[[BuilderInfo], None]) -> None:
    """torchvision's backbones (torchvision's own modules) and the portable EfficientNet-Lite0."""
    for backbone, builder in BUILDERS.items():
        register(BuilderInfo(backbone, BACKEND, builder))
