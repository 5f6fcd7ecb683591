"""Optimizers and schedules mean the same thing on every backend."""

from __future__ import annotations

import math

import pytest

import tlcore

from .conftest import Tiny, build, options

STEPS_PER_EPOCH = 3  # the tiny task: 48 images, batch 16
LR = 0.01


def expected_learning_rate(schedule: str, step: int, total: int) -> float:
    """The learning rate after ``step`` optimizer steps, by the schedule's definition."""
    if schedule == "cosine":
        return LR * 0.5 * (1 + math.cos(math.pi * step / total))
    if schedule == "step":
        return LR * 0.1 ** (step // STEPS_PER_EPOCH)
    if schedule == "onecycle":
        warm_end = 0.3 * total - 1
        start, peak = LR / 25, LR
        fraction = min(step / warm_end, 1.0)
        if step <= warm_end:
            return peak + (start - peak) / 2 * (math.cos(math.pi * fraction) + 1)
        fraction = (step - warm_end) / (total - 1 - warm_end)
        final = start / 1e4
        return final + (peak - final) / 2 * (math.cos(math.pi * fraction) + 1)
    return LR


@pytest.mark.parametrize(
    ("optimizer", "schedule"),
    [("adam", "constant"), ("adamw", "constant"), ("sgd", "constant"), ("adam", "cosine"), ("sgd", "step"),
     ("adamw", "onecycle")],
)  # fmt: skip
def test_optimizer_and_schedule(backend: tlcore.Backend, tiny: Tiny, optimizer: str, schedule: str) -> None:
    model = build(backend, tiny)
    phase = tlcore.Phase(
        freeze=tlcore.Frozen(), epochs=3, optimizer=optimizer, learning_rate=LR, schedule=schedule,
        weight_decay=1e-4, step_size=1, gamma=0.1,
    )  # fmt: skip
    history = backend.make_trainer(model, options()).fit(tiny.train, [phase])
    epochs = history.phases[0].epochs
    total = 3 * STEPS_PER_EPOCH
    for record in epochs[:-1]:  # after the last step some schedules are past their end
        step = (record.epoch + 1) * STEPS_PER_EPOCH
        assert record.learning_rate == pytest.approx(expected_learning_rate(schedule, step, total), rel=1e-4)
    assert epochs[-1].loss < epochs[0].loss, "training makes progress"
