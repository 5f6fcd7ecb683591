"""On every Keras backend, the learning-rate schedule is the core's table, inside compiled steps too.

Runs once per Keras backend, each in a process of its own (``python
test_schedules.py FILE`` with ``KERAS_BACKEND`` set). For every schedule
kind, :class:`tlcore_keras.trainer.PhaseSchedule` must give the core's
``learning_rate_table`` rounded to float32 (Keras's learning-rate type),
exactly:

- called eagerly, and compiled (``jax.jit`` on JAX, ``tf.function`` with XLA
  on TensorFlow; keras-torch runs eagerly);
- after a round trip through its Keras config, alone and in an optimizer's;
- as the rate the optimizer applies in ``train_on_batch`` (compiled on JAX and
  TensorFlow), with per-variable factors (``scales``): plain SGD on a loss whose
  gradient is 1 moves each weight by minus the sum of the rates it took times
  its factor; halfway through, the optimizer is replaced by a new one that
  carries its state (what gradual unfreezing does), and the schedule goes on
  from where it was.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import run_keras_script

CASES: dict[str, dict[str, Any]] = {
    "constant": {"schedule": "constant"},
    "cosine": {"schedule": "cosine"},
    "step": {"schedule": "step", "step_size": 2, "gamma": 0.5},
    "onecycle": {"schedule": "onecycle", "warmup_fraction": 0.3},
}
TOTAL_STEPS = 12
EPOCHS = 4
FACTORS = (0.5, 2.0)  # the kernel's and the bias's learning-rate factors


@pytest.mark.parametrize("framework", ["jax", "tensorflow", "torch"])
def test_keras_schedule_is_the_cores_table(framework: str, tmp_path: Path) -> None:
    if any(importlib.util.find_spec(m) is None for m in ("keras", framework)):
        pytest.skip(f"needs keras and {framework}")
    report = run_keras_script(__file__, framework, tmp_path, timeout=600)
    assert sorted(report) == sorted(CASES)
    for case, checks in report.items():
        assert checks["eager"] == checks["compiled"] == checks["from_config"] == checks["table"], case
        assert checks["optimizer_rate"] == checks["table"][-1], case
        assert checks["optimizer_from_config"] == checks["table"][:1], case
        for factor, moved in zip(FACTORS, checks["moved"], strict=True):
            assert moved == pytest.approx(factor * sum(checks["table"][:-1]), rel=1e-5), (case, factor)


def compiled(schedule: Any) -> Any:
    """``schedule`` as the framework compiles it inside a training step."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(schedule)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(schedule, jit_compile=True)
    return schedule


def moved_by_training(phase: Any) -> tuple[list[float], float]:
    """How far SGD moves a kernel and a bias of gradient 1 over the phase; the optimizer's rate at the end."""
    import keras
    import numpy as np
    from tlcore_keras.optimizers import carry_state
    from tlcore_keras.trainer import make_optimizer

    dense = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
    model = keras.Sequential([keras.Input((1,)), dense])
    scales = {dense.kernel.path: FACTORS[0], dense.bias.path: FACTORS[1]}

    def compile_with(optimizer: Any) -> None:
        model.compile(optimizer=optimizer, loss=lambda y, p: keras.ops.sum(p), jit_compile="auto")

    optimizer = make_optimizer(phase, TOTAL_STEPS, scales)
    compile_with(optimizer)
    ones = np.ones((1, 1), dtype="float32")
    for step in range(TOTAL_STEPS):
        if step == TOTAL_STEPS // 2:  # a new optimizer mid-phase, carrying the old one's state
            fresh = make_optimizer(phase, TOTAL_STEPS, scales)
            carry_state(optimizer, fresh, model.trainable_variables)
            optimizer = fresh
            compile_with(optimizer)
        model.train_on_batch(ones, ones)
    kernel, bias = (float(-np.asarray(keras.ops.convert_to_numpy(v)).sum()) for v in (dense.kernel, dense.bias))
    return [kernel, bias], float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def check_case(options: dict[str, Any]) -> dict[str, Any]:
    import keras
    import numpy as np
    from tlcore_keras.trainer import PhaseSchedule, make_optimizer

    import tlcore
    from tlcore.training import learning_rate_table

    phase = tlcore.Phase(optimizer="sgd", momentum=0.0, learning_rate=0.01, epochs=EPOCHS, **options)
    schedule = PhaseSchedule.for_phase(phase, TOTAL_STEPS)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    optimizer = make_optimizer(phase, TOTAL_STEPS)
    optimizer = type(optimizer).from_config(optimizer.get_config())
    function = compiled(schedule)
    steps = range(TOTAL_STEPS + 1)

    def values(rates: Any) -> list[float]:
        return [float(np.asarray(keras.ops.convert_to_numpy(rate))) for rate in rates]

    moved, rate = moved_by_training(phase)
    return {
        "table": learning_rate_table(phase, TOTAL_STEPS).astype("float32").astype(float).tolist(),
        "eager": values(schedule(step) for step in steps),
        "compiled": values(function(keras.ops.convert_to_tensor(step, dtype="int64")) for step in steps),
        "from_config": values(restored(step) for step in steps),
        "optimizer_from_config": values([optimizer.learning_rate]),
        "moved": moved,
        "optimizer_rate": rate,
    }


def main(out: str) -> None:
    Path(out).write_text(json.dumps({name: check_case(options) for name, options in CASES.items()}))


if __name__ == "__main__":
    main(sys.argv[1])
