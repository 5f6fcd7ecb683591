"""How many seeds the parity check needs: each task's scatter between backends, from a finished benchmark.

For every parity task of the benchmark in ``OUT``, takes the seeds that every
backend finished, and prints the standard deviation of one seed's backends
about that seed's mean (pooled over seeds: the scatter that float-level
differences cause, with the seed's own luck taken out). It then simulates
that many backends' means over n seeds as normal draws and prints how often
their spread stays within the plan's tolerance, for a few n. These are the
figures behind the full plan's seeds per task (``tlcore_bench/tasks.py``)::

    .venv/bin/python benchmarks/seed_scatter.py runs/bench-full2
    .venv/bin/python benchmarks/seed_scatter.py runs/bench-full3 --seeds 3,5,7,9
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from tlcore_bench.report import load_results

DRAWS = 100_000


def scatter(accuracies: np.ndarray) -> float:
    """The pooled standard deviation, in points, of backends (rows) about each seed's (column's) mean."""
    backends, seeds = accuracies.shape
    residuals = accuracies - accuracies.mean(axis=0)
    return float(np.sqrt((residuals**2).sum() / ((backends - 1) * seeds)))


def within_tolerance(sigma: float, backends: int, seeds: int, tolerance: float, rng: np.random.Generator) -> float:
    """How often ``backends`` means over ``seeds`` seeds, each scattered by ``sigma``, span at most ``tolerance``."""
    means = rng.normal(0.0, sigma / np.sqrt(seeds), size=(DRAWS, backends))
    return float((np.ptp(means, axis=1) <= tolerance).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a benchmark's --out folder")
    parser.add_argument("--seeds", default="3,5,7", help="seed counts to simulate (default 3,5,7)")
    args = parser.parse_args()
    plan = json.loads((args.out / "plan.json").read_text())["plan"]
    tolerance = 100 * plan["tolerance"]
    counts = [int(n) for n in args.seeds.split(",")]
    rng = np.random.default_rng(0)
    by_task: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for backend, records in load_results(args.out).items():
        for record in records:
            if record["kind"] == "parity":
                by_task[record["task"]][backend][record["seed"]] = 100 * record["test_accuracy"]
    for task in plan["parity_tasks"]:
        runs = by_task.get(task, {})
        seeds = sorted(set.intersection(*(set(seeds) for seeds in runs.values()))) if runs else []
        if len(runs) < 2 or not seeds:
            print(f"{task}: needs two backends with a common seed")
            continue
        accuracies = np.array([[runs[backend][seed] for seed in seeds] for backend in sorted(runs)])
        sigma = scatter(accuracies)
        chances = ", ".join(
            f"{n} seeds {100 * within_tolerance(sigma, len(runs), n, tolerance, rng):.0f} %" for n in counts
        )
        print(
            f"{task}: {len(runs)} backends, seeds {seeds[0]}-{seeds[-1]}: one seed's backends scatter by "
            f"{sigma:.2f} points; spread within {tolerance:.1f}: {chances}"
        )


if __name__ == "__main__":
    main()
