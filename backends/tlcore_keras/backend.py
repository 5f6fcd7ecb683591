"""The Keras 3 backend: one class for keras-jax, keras-tensorflow and keras-torch.

Import this module only through :mod:`tlcore_keras.loader`, which selects
Keras's backend first.
"""

from __future__ import annotations

import random

import keras
import numpy as np

from tlcore import BackboneSpec, Backend, ConfigError, HeadSpec, TLCoreError
from tlcore.training import TrainerOptions
from tlcore.weights import file_sha256
from tlcore_keras.backbones import build_backbone
from tlcore_keras.model import KerasModel
from tlcore_keras.trainer import KerasTrainer


class KerasBackend(Backend):
    """Keras 3 on the framework this process selected."""

    def __init__(self, name: str) -> None:
        framework = keras.backend.backend()
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
        if backbone.backend != self.name:
            raise ConfigError(f"backbone {backbone.name!r} is registered for {backbone.backend!r}, not {self.name!r}.")
        size = image_size or backbone.input.size
        self.seed(seed)
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
        versions = {"keras": keras.__version__}
        if self.framework == "jax":
            import jax

            versions["jax"] = jax.__version__
        elif self.framework == "tensorflow":
            import tensorflow as tf

            versions["tensorflow"] = tf.__version__
        else:
            import torch

            versions["torch"] = torch.__version__
        return versions

    def device(self) -> str:
        if self.framework == "jax":
            import jax

            return str(jax.devices()[0]).lower()
        if self.framework == "tensorflow":
            import tensorflow as tf

            return "gpu:0" if tf.config.list_physical_devices("GPU") else "cpu"
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"

    def peak_memory_bytes(self) -> int | None:
        if self.framework == "torch":
            import torch

            return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
        if self.framework == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
            return int(peak) if peak is not None else None
        return None

    def seed(self, seed: int) -> None:
        if self.framework == "tensorflow":
            keras.utils.set_random_seed(seed)
            return
        # keras.utils.set_random_seed imports TensorFlow whenever it is installed (slow, and a crash risk
        # beside torchvision): seed what it seeds, without TensorFlow.
        try:
            from keras.src.backend.common import global_state
            from keras.src.random import seed_generator
            from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
        except ImportError:  # a Keras whose internals moved: accept the import
            keras.utils.set_random_seed(seed)
            return
        global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
        random.seed(seed)
        np.random.seed(seed)
        if self.framework == "torch":
            import torch

            torch.manual_seed(seed)
