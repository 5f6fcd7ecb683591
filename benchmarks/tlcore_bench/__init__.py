"""tlcore's shared benchmark: the same recipe on every backend, for accuracy parity, transfer value and speed.

Run it with ``tlcore bench [--quick] --out DIR``; :func:`run_bench` is the
same from Python. The plans and tasks are in :mod:`tlcore_bench.tasks`.
"""

from tlcore_bench.run import BenchError, resolve_plan, run_bench
from tlcore_bench.tasks import FULL, QUICK, BenchPlan, Task

__all__ = ["FULL", "QUICK", "BenchError", "BenchPlan", "Task", "resolve_plan", "run_bench"]
