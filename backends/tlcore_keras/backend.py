"""The Keras 3 backend: one class for keras-jax, keras-tensorflow and keras-torch.

Import this module only through :mod:`tlcore_keras.loader`, which selects
Keras's backend first.
"""

from __future__ import annotations

from tlcore import BackboneSpec, Backend, ConfigError, HeadSpec, TLCoreError
from tlcore.training import TrainerOptions
from tlcore.weights import file_sha256, wants_random_init
from tlcore_keras import frameworks
from tlcore_keras.backbones import build_backbone
from tlcore_keras.model import KerasModel
from tlcore_keras.trainer import KerasTrainer


class KerasBackend(Backend):
    """Keras 3 on the framework this process selected."""

    def __init__(self, name: str) -> None:
        framework = frameworks.framework()
        if name != f"keras-{framework}":
            raise TLCoreError(f"backend {name!r} asked for, but Keras runs on {framework!r} in this process.")
        self.name = name
        self.framework = framework

    def build_model(
        self,
        backbone: BackboneSpec,
        head: HeadSpec,
        *,
        weights: str | None,
        seed: int,
        image_size: tuple[int, int] | None = None,
    ) -> KerasModel:
        size = image_size or backbone.input.size
        self.seed(seed)
        weights = None if wants_random_init(weights) else weights  # "none" is recorded as None
        native = build_backbone(backbone, weights, size)
        return KerasModel(
            self.name,
            backbone,
            head,
            native,
            seed=seed,
            image_size=size,
            weights=weights,
            weights_sha256=file_sha256(native.weights_file) if native.weights_file else None,
        )

    def make_trainer(self, model: object, options: TrainerOptions) -> KerasTrainer:
        if not isinstance(model, KerasModel):
            raise TLCoreError(
                f"the {self.name} backend cannot train {type(model).__name__}; build it with {self.name}."
            )
        if options.device not in ("auto", "cpu", "gpu") and not options.device.startswith(("cuda", "gpu")):
            raise ConfigError(f"device {options.device!r} is not known; use auto, cpu or gpu.")
        return KerasTrainer(model, options)

    def versions(self) -> dict[str, str]:
        return frameworks.versions()

    def device(self) -> str:
        return frameworks.device()

    def peak_memory_bytes(self) -> int | None:
        return frameworks.peak_memory_bytes()

    def seed(self, seed: int) -> None:
        frameworks.seed(seed)
