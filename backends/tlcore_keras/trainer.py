"""The Keras trainer: Keras's own optimizers, schedules and compiled steps under the shared loop.

Each phase compiles the model (or, with cached features, the head alone) and
trains with Keras's compiled step: ``jit`` on JAX, ``tf.function`` on
TensorFlow. On JAX the training state stays in JAX arrays for a whole epoch,
as in ``keras.Model.fit`` (:mod:`tlcore_keras.jax_steps`); elsewhere each
step is a ``train_on_batch``. Every default that frameworks disagree
on comes from the phase: Adam epsilon and betas, SGD momentum, the loss on
logits, and the optimizers' update rules, which are torch's
(:mod:`tlcore_keras.optimizers`), with per-group learning rates. The
learning-rate schedule is the core's table (:class:`PhaseSchedule`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, SupportsFloat

import keras
import numpy as np

from tlcore import CheckpointError, TLCoreError
from tlcore.io import atomic_path
from tlcore.training import LearningRateScales, Phase, Trainer, TrainerOptions, learning_rate_table
from tlcore_keras import frameworks
from tlcore_keras.frameworks import sync_state
from tlcore_keras.jax_steps import JaxSteps, supports_kept_state
from tlcore_keras.model import KerasModel, to_numpy
from tlcore_keras.optimizers import TorchAdam, TorchOptimizer, TorchSGD, carry_state


@keras.saving.register_keras_serializable(package="tlcore")
class PhaseSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A phase's learning rate at each optimizer step, looked up in the core's table.

    The table (:func:`tlcore.training.learning_rate_table`, torch's
    schedulers' rates) is computed once and held in float32, Keras's
    learning-rate type. A call takes entry ``min(step, total_steps)`` with
    ``keras.ops``, with no Python branch on the step, so the schedule runs
    inside compiled steps on JAX, TensorFlow and torch. Being a function of
    the optimizer's ``iterations``, it keeps its position when gradual
    unfreezing compiles again with an optimizer that carries the old one's
    state. Its config is the schedule's definition, not the table.
    """

    def __init__(
        self,
        schedule: str,
        learning_rate: float,
        total_steps: int,
        *,
        epochs: int = 1,
        step_size: int = 1,
        gamma: float = 0.1,
        warmup_fraction: float = 0.3,
    ) -> None:
        self.definition: dict[str, Any] = {
            "schedule": schedule,
            "learning_rate": float(learning_rate),
            "total_steps": int(total_steps),
            "epochs": int(epochs),
            "step_size": int(step_size),
            "gamma": float(gamma),
            "warmup_fraction": float(warmup_fraction),
        }
        phase = Phase(
            name="schedule",
            schedule=schedule,
            learning_rate=float(learning_rate),
            epochs=int(epochs),
            step_size=int(step_size),
            gamma=float(gamma),
            warmup_fraction=float(warmup_fraction),
        )
        self.rates = learning_rate_table(phase, int(total_steps)).astype("float32")

    @classmethod
    def for_phase(cls, phase: Phase, total_steps: int) -> PhaseSchedule:
        """The schedule of ``phase`` over ``total_steps`` optimizer steps."""
        return cls(
            phase.schedule,
            phase.learning_rate,
            total_steps,
            epochs=phase.epochs,
            step_size=phase.step_size,
            gamma=phase.gamma,
            warmup_fraction=phase.warmup_fraction,
        )

    def __call__(self, step: Any) -> Any:
        index = keras.ops.clip(keras.ops.cast(step, "int32"), 0, len(self.rates) - 1)
        return keras.ops.take(keras.ops.convert_to_tensor(self.rates), index)

    def get_config(self) -> dict[str, Any]:
        return dict(self.definition)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PhaseSchedule:
        config = dict(config)
        return cls(config.pop("schedule"), config.pop("learning_rate"), config.pop("total_steps"), **config)


def make_optimizer(phase: Phase, total_steps: int, scales: Mapping[str, float] | None = None) -> TorchOptimizer:
    """The phase's optimizer with torch's update rule and every default passed explicitly.

    ``scales`` maps variable paths to learning-rate factors (per-group rates).
    """
    rate = PhaseSchedule.for_phase(phase, total_steps)
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
        self.mixed_precision = options.mixed_precision and frameworks.gpu_available()
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

    state_suffix = ".npz"

    def _save_training_state(self, path: Path, snapshot: Any) -> None:
        # Every variable of the model (weights, BatchNorm statistics, the dropout layers' seed generator states)
        # and of the optimizer (iterations, which position the schedule too; moments; step counts).
        self._sync()
        sync_state(self.net)
        arrays = {f"model/{i}": to_numpy(v) for i, v in enumerate(self.net.variables)}
        if self.optimizer is not None and self.optimizer.built:
            arrays.update({f"optimizer/{i}": to_numpy(v) for i, v in enumerate(self.optimizer.variables)})
        generator = frameworks.generator_state()
        if generator is not None:
            arrays["generator"] = generator
        if snapshot is not None:
            variables, values = snapshot
            arrays["snapshot_head_only"] = np.array(len(variables) != len(self.net.variables))
            arrays.update({f"snapshot/{i}": value for i, value in enumerate(values)})
        with atomic_path(path) as temporary, open(temporary, "wb") as stream:
            np.savez(stream, **arrays)  # type: ignore[arg-type]

    @staticmethod
    def _assign(variables: list[Any], arrays: Mapping[str, np.ndarray], prefix: str, path: Path) -> None:
        values = [arrays[f"{prefix}/{i}"] for i in range(sum(key.startswith(f"{prefix}/") for key in arrays))]
        if len(values) != len(variables):
            raise CheckpointError(
                f"cannot resume from {path}: it holds {len(values)} {prefix} variables, this run has "
                f"{len(variables)}. Start over with --restart."
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)

    def _load_training_state(self, path: Path, has_snapshot: bool) -> Any:
        try:
            with np.load(path) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, ValueError) as error:
            raise CheckpointError(f"cannot resume from {path}: {error}. Start over with --restart.") from None
        self._sync()
        self._assign(list(self.net.variables), arrays, "model", path)
        if self.optimizer is not None and self.target is not None:
            if not self.optimizer.built:
                self.optimizer.build(self.target.trainable_variables)
            self._assign(list(self.optimizer.variables), arrays, "optimizer", path)
        frameworks.set_generator_state(arrays.get("generator"))
        if not has_snapshot:
            return None
        head_only = bool(arrays["snapshot_head_only"])
        variables = list(self.net.head.variables if head_only else self.net.variables)
        values = [arrays[f"snapshot/{i}"] for i in range(len(variables))]
        return variables, values
