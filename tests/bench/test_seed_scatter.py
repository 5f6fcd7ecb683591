"""benchmarks/seed_scatter.py: the backends' scatter per seed and the simulated chance of a parity pass."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "seed_scatter.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_scatter", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scatter_takes_each_seeds_luck_out() -> None:
    script = _script()
    # Seed 1 is 5 points easier for every backend: only the backends' differences count.
    accuracies = np.array([[90.0, 95.0], [91.0, 96.0]])
    assert script.scatter(accuracies) == pytest.approx(np.sqrt(4 * 0.25 / 2))


def test_more_seeds_bring_the_spread_within_the_tolerance_more_often() -> None:
    script = _script()
    rng = np.random.default_rng(0)
    chances = [script.within_tolerance(0.32, 4, n, 0.5, rng) for n in (3, 7)]
    assert 0.7 < chances[0] < 0.85 < 0.95 < chances[1]
    assert script.within_tolerance(0.0, 4, 3, 0.5, rng) == 1.0
