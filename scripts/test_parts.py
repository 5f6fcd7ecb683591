"""Run the test suite's parts side by side, each in a pytest process of its own, and report each as it ends.

``scripts/test.sh`` calls this after lint and type checks. The parts are
independent pytest runs: the fast suite, the contract suite on each Keras
backend (Keras holds one backend per process) and the slow tests. Most of
their time is single-threaded (XLA and TensorFlow compiling steps, Python
tracing), so running two at once on a 2-core machine nearly halves the wall
time. When parts run side by side, each runs on a share of the CPUs of its
own (``taskset``): the frameworks size their thread pools from the CPUs a
process may use, so two parts never run twice as many busy threads as there
are cores (the contract suite on keras-torch took 8.1 minutes beside an
unpinned ``tlcore bench`` torch job, 2.3 alone: this script's own table).
Each part's output goes to a log that is printed whole when the part ends,
so parts never interleave; then a table of every part's time and
status. Exits 1 when any part failed.

    python scripts/test_parts.py [--jobs N] [--only NAME,...] [-- PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-q", "--durations=10"]


@dataclass(frozen=True)
class Part:
    name: str
    args: tuple[str, ...]


def _contract(backend: str) -> Part:
    return Part(f"contract suite on {backend}", ("tests/contract", "--backend", backend, "-m", "slow or not slow"))


# Longest first (minutes on a 2-core CPU, one at a time), so the last part to start is a short one.
PARTS = (
    _contract("keras-jax"),  # about 15
    Part("slow tests", ("-m", "slow")),  # about 12
    _contract("keras-tensorflow"),  # about 10
    Part("fast suite", ()),  # about 5: core, data, CLI, torch, Keras helpers, the contract suite on torch
    _contract("keras-torch"),  # about 2
)


@dataclass
class Outcome:
    part: Part
    returncode: int
    seconds: float
    log: Path


def cpu_shares(jobs: int) -> list[list[int]]:
    """The CPUs this process may use, split into ``jobs`` shares (one share of all of them when not pinning)."""
    if jobs < 2 or not hasattr(os, "sched_getaffinity") or shutil.which("taskset") is None:
        return [[]]
    cpus = sorted(os.sched_getaffinity(0))
    jobs = min(jobs, len(cpus))
    return [cpus[index::jobs] for index in range(jobs)]


def run_part(part: Part, extra: list[str], logs: Path, shares: queue.Queue[list[int]]) -> Outcome:
    """Run one part to completion on a free share of the CPUs, its output into a log of its own."""
    slug = part.name.replace(" ", "_")
    log = logs / f"{slug}.log"
    # A temporary folder of its own: pytest's default one is shared by every session of the user and pruned.
    command = [*PYTEST, f"--basetemp={logs / slug}", *part.args, *extra]
    cpus = shares.get()
    if cpus:
        command = ["taskset", "--cpu-list", ",".join(map(str, cpus)), *command]
    started = time.perf_counter()
    try:
        with log.open("w") as out:
            done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    finally:
        shares.put(cpus)
    return Outcome(part, done.returncode, time.perf_counter() - started, log)


def _select(only: str | None) -> list[Part]:
    if not only:
        return list(PARTS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    chosen = [part for part in PARTS if part.name in names]
    unknown = sorted(set(names) - {part.name for part in chosen})
    if unknown:
        known = ", ".join(repr(part.name) for part in PARTS)
        raise SystemExit(f"test_parts.py: unknown part {unknown[0]!r}; expected some of {known}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra = args[args.index("--") + 1 :] if "--" in args else []
    parser = argparse.ArgumentParser(prog="scripts/test_parts.py", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="parts at once (default: 2)")
    parser.add_argument("--only", default=None, help="comma-separated part names (default: every part)")
    options = parser.parse_args(args[: args.index("--")] if "--" in args else args)
    parts = _select(options.only)
    outcomes: list[Outcome] = []
    shares: queue.Queue[list[int]] = queue.Queue()
    for share in cpu_shares(options.jobs):
        shares.put(share)
    jobs = shares.qsize()
    with tempfile.TemporaryDirectory(prefix="tlcore-tests-") as folder, ThreadPoolExecutor(jobs) as pool:
        print(f"running {len(parts)} test parts, {jobs} at a time: {', '.join(p.name for p in parts)}")
        futures = [pool.submit(run_part, part, extra, Path(folder), shares) for part in parts]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            status = "passed" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
            print(f"\n== {outcome.part.name}: {status} in {outcome.seconds / 60:.1f} min", flush=True)
            print(outcome.log.read_text(), flush=True)
    print("\n== test parts")
    for outcome in sorted(outcomes, key=lambda o: parts.index(o.part)):
        status = "passed" if outcome.returncode == 0 else "FAILED"
        print(f"{outcome.part.name:<36} {outcome.seconds / 60:5.1f} min  {status}")
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
