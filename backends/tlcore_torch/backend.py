"""The PyTorch backend: builds models and trainers from the neutral specs."""

from __future__ import annotations

import os

import torch

from tlcore import BackboneSpec, Backend, ConfigError, HeadSpec, TLCoreError
from tlcore.training import TrainerOptions, default_threads
from tlcore.weights import wants_random_init
from tlcore_torch.backbones import build_backbone
from tlcore_torch.model import TorchModel
from tlcore_torch.trainer import TorchTrainer
from tlcore_torch.weights import weights_sha256


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device {device!r} is not a torch device ({exc}); use auto, cpu or cuda:N.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available; use auto or cpu.")
    return resolved


class TorchBackend(Backend):
    """PyTorch + torchvision; CUDA when available, CPU otherwise."""

    name = "torch"

    def __init__(self) -> None:
        if "TLCORE_TORCH_THREADS" in os.environ:
            torch.set_num_threads(int(os.environ["TLCORE_TORCH_THREADS"]))
        else:
            torch.set_num_threads(default_threads())
        self._device = "auto"

    def build_model(
        self,
        backbone: BackboneSpec,
        head: HeadSpec,
        *,
        weights: str | None,
        seed: int,
        image_size: tuple[int, int] | None = None,
    ) -> TorchModel:
        self.seed(seed)
        size = image_size or backbone.input.size
        weights = None if wants_random_init(weights) else weights  # "none" is recorded as None
        native = build_backbone(backbone, weights, size)
        return TorchModel(
            backbone,
            head,
            native,
            device=resolve_device(self._device),
            seed=seed,
            image_size=size,
            weights=weights,
            weights_sha256=weights_sha256(native.weights_file) if native.weights_file else None,
        )

    def make_trainer(self, model: object, options: TrainerOptions) -> TorchTrainer:
        if not isinstance(model, TorchModel):
            raise TLCoreError(
                f"the torch backend cannot train {type(model).__name__}; build it with the torch backend."
            )
        device = resolve_device(options.device)
        if device != model.device:
            model.device = device
            model.native.to(device)
        return TorchTrainer(model, options)

    def versions(self) -> dict[str, str]:
        import torchvision

        versions = {"torch": torch.__version__, "torchvision": torchvision.__version__}
        if torch.cuda.is_available():
            versions["cuda"] = str(torch.version.cuda)
            versions["gpu"] = torch.cuda.get_device_name(0)
        return versions

    def device(self) -> str:
        return str(resolve_device(self._device))

    def peak_memory_bytes(self) -> int | None:
        return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)
