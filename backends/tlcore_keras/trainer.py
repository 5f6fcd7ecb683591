"""The Keras trainer: Keras's own optimizers, schedules and compiled steps under the shared loop.

Each phase compiles the model (or, with cached features, the head alone) and
trains with Keras's compiled step: ``jit`` on JAX, ``tf.function`` on
TensorFlow. On JAX the training state stays in JAX arrays for a whole epoch,
as in ``keras.Model.fit`` (:mod:`tlcore_keras.jax_steps`); elsewhere each
step is a ``train_on_batch``. Every default that frameworks disagree
on comes from the phase: Adam epsilon and betas, SGD momentum, the loss on
logits, and the optimizers' update rules, which are torch's
(:mod:`tlcore_keras.optimizers`), with per-group learning rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, SupportsFloat

import keras
import numpy as np

from tlcore import TLCoreError
from tlcore.training import LearningRateScales, Phase, Trainer, TrainerOptions
from tlcore_keras.jax_steps import JaxSteps, supports_kept_state
from tlcore_keras.model import KerasModel, sync_state, to_numpy
from tlcore_keras.optimizers import TorchAdam, TorchOptimizer, TorchSGD, carry_state


@keras.saving.register_keras_serializable(package="tlcore")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate, with torch's ``OneCycleLR`` defaults (cosine, div 25, final div 1e4)."""

    def __init__(self, max_lr: float, total_steps: int, warmup_fraction: float) -> None:
        self.max_lr = max_lr
        self.total_steps = max(2, total_steps)
        self.warmup_fraction = warmup_fraction
        self.initial = max_lr / 25.0
        self.final = self.initial / 1e4
        self.warm_end = float(warmup_fraction * self.total_steps) - 1.0
        self.end = float(self.total_steps - 1)

    @staticmethod
    def _cosine(start: float, end: float, fraction: Any) -> Any:
        return end + (start - end) / 2.0 * (keras.ops.cos(math.pi * fraction) + 1.0)

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        rising = self._cosine(self.initial, self.max_lr, keras.ops.minimum(step / max(self.warm_end, 1e-8), 1.0))
        falling_fraction = keras.ops.clip((step - self.warm_end) / max(self.end - self.warm_end, 1e-8), 0.0, 1.0)
        falling = self._cosine(self.max_lr, self.final, falling_fraction)
        return keras.ops.where(step <= self.warm_end, rising, falling)

    def get_config(self) -> dict[str, Any]:
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction}


def make_schedule(phase: Phase, total_steps: int) -> Any:
    """The phase's schedule as a Keras ``LearningRateSchedule`` (or a constant)."""
    steps_per_epoch = max(1, total_steps // phase.epochs)
    if phase.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(phase.learning_rate, decay_steps=max(1, total_steps), alpha=0.0)
    if phase.schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            phase.learning_rate, decay_steps=phase.step_size * steps_per_epoch, decay_rate=phase.gamma, staircase=True
        )
    if phase.schedule == "onecycle":
        return OneCycle(phase.learning_rate, total_steps, phase.warmup_fraction)
    return phase.learning_rate


def make_optimizer(phase: Phase, total_steps: int, scales: Mapping[str, float] | None = None) -> TorchOptimizer:
    """The phase's optimizer with torch's update rule and every default passed explicitly.

    ``scales`` maps variable paths to learning-rate factors (per-group rates).
    """
    rate = make_schedule(phase, total_steps)
    if phase.optimizer in ("adam", "adamw"):
        beta_1, beta_2 = phase.adam_betas
        return TorchAdam(
            learning_rate=rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=phase.adam_epsilon,
            weight_decay=phase.weight_decay,
            decoupled=phase.optimizer == "adamw",
            scales=scales,
        )
    return TorchSGD(
        learning_rate=rate,
        momentum=phase.momentum,
        nesterov=phase.nesterov,
        weight_decay=phase.weight_decay,
        scales=scales,
    )


def variable_scales(model: KerasModel, scales: LearningRateScales) -> dict[str, float]:
    """``{variable path: learning-rate factor}`` for the backbone's layers and the head."""
    paths = {variable.path: scales.head for variable in model.native.head.weights}
    for info, layer in model.named_layers():
        factor = scales.of(info.name)
        paths.update({variable.path: factor for variable in layer.weights})
    return paths


def gpu_available() -> bool:
    """Whether Keras's framework in this process sees a GPU."""
    framework = keras.backend.backend()
    if framework == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    if framework == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    import torch

    return bool(torch.cuda.is_available())


def use_mixed_precision(net: keras.Model) -> None:
    """Compute in bfloat16 with float32 variables; the output layer stays float32 for a stable loss."""
    for layer in net._flatten_layers(include_self=False, recursive=True):
        layer.dtype_policy = "mixed_bfloat16"
    net.head.out.dtype_policy = "float32"


class KerasTrainer(Trainer):
    """Runs phases on a :class:`KerasModel` with compiled Keras steps."""

    def __init__(self, model: KerasModel, options: TrainerOptions) -> None:
        super().__init__(model, options)
        self.keras_model = model
        self.net = model.native
        self.phase: Phase | None = None
        self.total_steps = 0
        self.cached = False
        self.target: keras.Model | None = None
        self.optimizer: TorchOptimizer | None = None
        self.jax_steps: JaxSteps | None = None
        self._batch = 0
        self.mixed_precision = options.mixed_precision and gpu_available()
        if self.mixed_precision:
            use_mixed_precision(self.net)

    def _compile(self) -> None:
        if self.phase is None:
            raise TLCoreError("internal: compile before a phase began")
        self._sync()
        self.target = self.net.head if self.cached else self.net
        previous = self.optimizer
        self.optimizer = make_optimizer(self.phase, self.total_steps, variable_scales(self.keras_model, self.lr_scales))
        if previous is not None:  # the plan changed mid-phase: keep the moments of what already trained
            sync_state(self.net)
            carry_state(previous, self.optimizer, self.target.trainable_variables)
        self.target.compile(
            optimizer=self.optimizer,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=self.phase.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile="auto",
        )
        self.jax_steps = JaxSteps(self.target) if supports_kept_state(self.target) else None

    def _sync(self) -> None:
        """Write the training state held between steps back into the variables (JAX only)."""
        if self.jax_steps is not None:
            self.jax_steps.sync()

    def _begin_phase(self, phase: Phase, total_steps: int, cached: bool) -> None:
        self.phase, self.total_steps, self.cached = phase, total_steps, cached
        self.optimizer = None
        self._compile()

    def _plan_changed(self) -> None:
        # Keras collects trainable variables when it compiles: compile again with a new optimizer that carries
        # the old one's state (moments, step counts, the schedule's position), as torch's optimizer would.
        if self.phase is not None and self.optimizer is not None:
            self._compile()

    def _train_step(self, inputs: np.ndarray, labels: np.ndarray, cached: bool) -> tuple[SupportsFloat, SupportsFloat]:
        if self.target is None:
            raise TLCoreError("internal: train step before a phase began")
        targets = np.eye(self.keras_model.head.num_outputs, dtype=np.float32)[labels]
        if self.jax_steps is not None:
            logs = self.jax_steps.step(inputs, targets)
        else:
            logs = self.target.train_on_batch(inputs, targets, return_dict=True)
        count = len(labels)
        return logs["loss"] * count, logs["accuracy"] * count

    def _padded(self, function: Any, inputs: np.ndarray) -> np.ndarray:
        """``function`` on ``inputs`` padded to the largest batch seen, so the compiled step keeps one shape.

        A last, smaller batch would otherwise be compiled again (XLA compiles
        per shape: about a second for a backbone, each time).
        """
        count = len(inputs)
        self._batch = max(self._batch, count)
        if count < self._batch:
            padding = np.zeros((self._batch - count, *inputs.shape[1:]), dtype=inputs.dtype)
            inputs = np.concatenate([inputs, padding])
        return np.asarray(function(inputs), dtype=np.float32)[:count]

    def _end_epoch(self) -> None:
        self._sync()

    def _predict_step(self, inputs: np.ndarray, cached: bool) -> np.ndarray:
        self._sync()
        target = self.net.head if cached else self.net
        return self._padded(target.predict_on_batch, inputs)

    def _features_step(self, images: np.ndarray) -> np.ndarray:
        self._sync()
        return self._padded(self.net.backbone.predict_on_batch, images)

    def _learning_rate(self) -> float:
        if self.optimizer is None:
            return 0.0
        self._sync()
        return float(to_numpy(self.optimizer.learning_rate))

    def _snapshot(self, head_only: bool = False) -> tuple[list[Any], list[np.ndarray]]:
        self._sync()
        sync_state(self.net)
        variables = list(self.net.head.variables if head_only else self.net.variables)
        return variables, [to_numpy(variable).copy() for variable in variables]

    def _restore(self, snapshot: Any) -> None:
        self._sync()
        variables, values = snapshot
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)

    def _end_phase(self) -> None:
        self._sync()
        sync_state(self.net)
        self.jax_steps = None
        self.target = None
        self.optimizer = None
