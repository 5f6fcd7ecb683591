"""On keras-jax, the trainer keeps the training state between steps and still trains exactly as ``train_on_batch``.

Runs in a keras-jax process of its own (``python test_jax_steps.py FILE``).
The same model is trained twice from the same seed on the tiny task: once
as the trainer does on JAX (:class:`tlcore_keras.jax_steps.JaxSteps`, the
state written back once an epoch) and once with ``train_on_batch`` at every
step. The run covers what reads the model between steps: gradual unfreezing
(a compile mid-phase that carries the optimizer's state), validation after
every epoch, best-weight snapshots and their restore, and a second phase.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import run_keras_script

TOLERANCE = 1e-6  # largest absolute difference in any weight; the same compiled step runs in both


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("keras", "jax")), reason="needs keras, jax")
def test_kept_state_trains_exactly_as_train_on_batch(tmp_path: Path) -> None:
    report = run_keras_script(__file__, "jax", tmp_path, timeout=600)
    kept, every_step = report["kept"], report["train_on_batch"]
    assert report["weight_difference"] <= TOLERANCE
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert kept[name] == pytest.approx(every_step[name], rel=1e-5, abs=1e-6), name
    assert kept["best_epochs"] == every_step["best_epochs"]
    steps = every_step["train_on_batch_calls"]
    assert steps == report["steps"] > 10
    # One train_on_batch per compile (it builds the compiled step): each phase and each unfreezing.
    assert kept["train_on_batch_calls"] == report["compiles"] < steps


def train(kept: bool) -> tuple[dict[str, Any], list[Any]]:
    """Train the tiny task with the kept state or with ``train_on_batch``; the history and the final weights."""
    import keras
    import numpy as np
    import tlcore_keras.trainer
    from tlcore_keras.jax_steps import supports_kept_state

    import tlcore
    from tests.contract.conftest import build, make_tiny, options

    tlcore_keras.trainer.supports_kept_state = supports_kept_state if kept else (lambda model: False)
    calls = {"train_on_batch": 0}
    original = keras.Model.train_on_batch

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["train_on_batch"] += 1
        return original(self, *args, **kwargs)

    keras.Model.train_on_batch = counted
    try:
        backend = tlcore.get_backend("keras-jax")
        tiny = make_tiny(backend)
        model = build(backend, tiny, seed=0)
        phases = [
            tlcore.Phase(name="unfreeze", freeze=tlcore.GradualUnfreezing(every=1, start=1), epochs=3,
                         learning_rate=1e-3),
            tlcore.Phase(name="fine-tune", freeze=tlcore.Unfrozen(), epochs=2, learning_rate=1e-4,
                         schedule="cosine"),
        ]  # fmt: skip
        history = backend.make_trainer(model, options(seed=0)).fit(tiny.train, phases, validation=tiny.validation)
    finally:
        keras.Model.train_on_batch = original
    epochs = [epoch for phase in history.phases for epoch in phase.epochs]
    names = ("loss", "accuracy", "val_loss", "val_accuracy")
    record: dict[str, Any] = {name: [float(getattr(epoch, name)) for epoch in epochs] for name in names}
    record["best_epochs"] = [phase.best_epoch for phase in history.phases]
    record["train_on_batch_calls"] = calls["train_on_batch"]
    return record, [np.asarray(keras.ops.convert_to_numpy(variable)) for variable in model.native.variables]


def main(out: str) -> None:
    import numpy as np

    kept, kept_weights = train(kept=True)
    every_step, weights = train(kept=False)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(kept_weights, weights, strict=True))
    # Gradual unfreezing from 1 group at epoch 0 compiles at epochs 0, 1 and 2; the second phase once.
    report = {"kept": kept, "train_on_batch": every_step, "weight_difference": difference, "steps": 5 * 3,
              "compiles": 4}  # fmt: skip
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
