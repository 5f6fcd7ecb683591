"""Learning-rate schedules: a phase's rate at every optimizer step, a pure function written once for all backends.

``learning_rate_table(phase, total_steps)[k]`` is the rate of the optimizer
step taken after ``k`` steps (``k = 0 .. total_steps``; the last entry is the
rate after the phase's last step, which the history reports). Backends only
apply the table: torch through its own ``LambdaLR``, Keras through a
``LearningRateSchedule`` that looks the rate up with ``keras.ops``. A
per-group factor (:mod:`tlcore.training._rates`) multiplies the table.

The definitions are torch's ``torch.optim.lr_scheduler``, evaluated the way
torch evaluates them (the same float64 operations in the same order, the
recursive forms included), so the table is torch's rates to the last bit:

- ``constant``: the phase's ``learning_rate`` at every step.
- ``cosine``: ``CosineAnnealingLR(T_max=max(1, total_steps))`` down to 0.
- ``step``: ``StepLR(step_size=step_size * steps_per_epoch, gamma)``: the
  rate is multiplied by ``gamma`` every ``step_size`` epochs, where an epoch
  is ``max(1, total_steps // epochs)`` steps.
- ``onecycle``: ``OneCycleLR(max_lr=learning_rate, total_steps=max(2,
  total_steps), pct_start=warmup_fraction)`` with its defaults (cosine
  annealing, ``div_factor=25``, ``final_div_factor=1e4``, two phases): up
  from ``learning_rate / 25`` to ``learning_rate`` over the warm-up, then
  down to ``learning_rate / 25e4``. Where torch would divide by a phase of
  zero length (a warm-up of exactly one step, or ``warmup_fraction=1`` at the
  last step) that step takes the end of the phase. Momentum is not cycled:
  the phase's momentum and betas hold, on every backend.

    >>> from tlcore.training import Phase, learning_rate_table
    >>> learning_rate_table(Phase(schedule="cosine", learning_rate=0.1), 4).round(6).tolist()
    [0.1, 0.085355, 0.05, 0.014645, 0.0]
"""

from __future__ import annotations

import math

import numpy as np

from tlcore._errors import ConfigError
from tlcore.training._config import Phase

__all__ = ["learning_rate_at", "learning_rate_table", "steps_per_epoch"]

ONECYCLE_DIV_FACTOR = 25.0
ONECYCLE_FINAL_DIV_FACTOR = 1e4


def steps_per_epoch(phase: Phase, total_steps: int) -> int:
    """The optimizer steps in one of the phase's epochs, as the step schedule counts them (at least 1)."""
    return max(1, total_steps // phase.epochs)


def learning_rate_table(phase: Phase, total_steps: int) -> np.ndarray:
    """The phase's learning rate before each optimizer step: float64, ``total_steps + 1`` values.

    Entry ``k`` is the rate after ``k`` steps. ConfigError if ``total_steps``
    is negative or not an integer.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int | np.integer) or total_steps < 0:
        raise ConfigError(f"phase {phase.name!r}: total_steps must be a whole number >= 0; got {total_steps!r}.")
    total = int(total_steps)
    if phase.schedule == "cosine":
        rates = _cosine(phase.learning_rate, total)
    elif phase.schedule == "step":
        rates = _step(phase.learning_rate, total, phase.step_size * steps_per_epoch(phase, total), phase.gamma)
    elif phase.schedule == "onecycle":
        rates = _onecycle(phase.learning_rate, total, phase.warmup_fraction)
    else:
        rates = [float(phase.learning_rate)] * (total + 1)
    return np.asarray(rates, dtype=np.float64)


def learning_rate_at(phase: Phase, total_steps: int, step: int) -> float:
    """The phase's learning rate after ``step`` optimizer steps (the last rate for any step past the end)."""
    table = learning_rate_table(phase, total_steps)
    return float(table[min(max(int(step), 0), len(table) - 1)])


def _cosine(base: float, total: int) -> list[float]:
    """``CosineAnnealingLR(T_max=max(1, total), eta_min=0)``, by torch's recursion from the previous rate."""
    period = max(1, total)
    rates = [float(base)]
    for step in range(1, total + 1):
        previous = rates[-1]
        if (step - 1 - period) % (2 * period) == 0:  # torch's branch where the recursion would divide by zero
            rates.append(previous + base * (1 - math.cos(math.pi / period)) / 2)
        else:
            ratio = (1 + math.cos(math.pi * step / period)) / (1 + math.cos(math.pi * (step - 1) / period))
            rates.append(ratio * previous)
    return rates


def _step(base: float, total: int, every: int, gamma: float) -> list[float]:
    """``StepLR(step_size=every, gamma)``: the previous rate times ``gamma`` at every multiple of ``every``."""
    rates = [float(base)]
    for step in range(1, total + 1):
        rates.append(rates[-1] * gamma if step % every == 0 else rates[-1])
    return rates


def _anneal(start: float, end: float, fraction: float) -> float:
    """Cosine annealing from ``start`` to ``end`` as ``fraction`` goes from 0 to 1 (torch's ``_annealing_cos``)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def _onecycle(base: float, total: int, warmup: float) -> list[float]:
    """``OneCycleLR(max_lr=base, total_steps=max(2, total), pct_start=warmup)``, torch's defaults otherwise."""
    cycle = max(2, total)
    initial = base / ONECYCLE_DIV_FACTOR
    phases = (
        (float(warmup * cycle) - 1, initial, base),
        (cycle - 1, base, initial / ONECYCLE_FINAL_DIV_FACTOR),
    )
    rates = []
    for step in range(total + 1):
        start_step = 0.0
        for index, (end_step, start, end) in enumerate(phases):
            if step <= end_step or index == len(phases) - 1:
                length = end_step - start_step
                rates.append(_anneal(start, end, (step - start_step) / length if length else 1.0))
                break
            start_step = end_step
    return rates
