"""tlcore's shared benchmark: the same recipe on every backend, for accuracy parity, transfer value and speed.

Run it with ``tlcore bench [--quick] --out DIR`` (the command is registered by
:mod:`tlcore_bench.plugin`); :func:`run_bench` is the same from Python. The
plans and tasks are in :mod:`tlcore_bench.tasks`. The names below are imported
on first use, so loading the plugin does not load the benchmark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlcore_bench.run import BenchError, resolve_plan, run_bench
    from tlcore_bench.tasks import FULL, QUICK, BenchPlan, Task

__all__ = ["FULL", "QUICK", "BenchError", "BenchPlan", "Task", "resolve_plan", "run_bench"]

_HOMES = {
    "BenchError": "tlcore_bench.run",
    "resolve_plan": "tlcore_bench.run",
    "run_bench": "tlcore_bench.run",
    "FULL": "tlcore_bench.tasks",
    "QUICK": "tlcore_bench.tasks",
    "BenchPlan": "tlcore_bench.tasks",
    "Task": "tlcore_bench.tasks",
}


def __getattr__(name: str) -> Any:
    """Import the public names from their modules on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'tlcore_bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
