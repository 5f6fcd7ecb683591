"""The benchmark's driver: one process per backend, progress, incremental results and the report.

Imports no framework: frameworks live in the workers (:mod:`tlcore_bench.worker`),
one process per backend, because Keras holds one backend per process and a
framework that crashes takes only its own process down.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tlcore import ConfigError, TLCoreError
from tlcore.io import write_json
from tlcore_bench.report import write_report
from tlcore_bench.tasks import ALL_BACKENDS, FULL, PARTS, QUICK, BenchPlan, jobs_for

__all__ = ["BenchError", "run_bench"]

WEIGHTS_NAME = "lite0-imagenet"


class BenchError(TLCoreError):
    """The benchmark cannot start (a bad folder, backend name or option)."""


def _installed(backend: str) -> tuple[bool, str]:
    from tlcore.plugins import load_plugins

    registry = load_plugins()
    if backend not in registry.backends:
        return False, "no plugin registers it"
    missing = [m for m in registry.backends[backend].item.requires if importlib.util.find_spec(m) is None]
    return (False, f"not installed (missing {', '.join(missing)})") if missing else (True, "")


def _neutral_weights(plan: BenchPlan, out: Path) -> Path:
    """The one neutral checkpoint every backend loads, converted once into ``out/weights``."""
    from tlcore.checkpoints import convert_checkpoint

    manifest = out / "weights" / f"{WEIGHTS_NAME}.json"
    if not manifest.exists():
        (out / "weights").mkdir(parents=True, exist_ok=True)
        convert_checkpoint(plan.weights, out / "weights" / WEIGHTS_NAME)
    return manifest


def machine() -> dict[str, Any]:
    """The machine the benchmark runs on: CPU model, cores, memory, GPU (from ``nvidia-smi``), Python."""
    cpu = platform.processor() or platform.machine()
    memory = None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), cpu)
        meminfo = Path("/proc/meminfo").read_text().split()
        memory = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    gpu = None
    if shutil.which("nvidia-smi"):
        query = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        gpu = query.stdout.strip().replace("\n", "; ") or None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory,
        "gpu": gpu,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _write_plan(plan: BenchPlan, out: Path, weights: Path, command: str) -> None:
    path = out / "plan.json"
    wanted = {
        "plan": json.loads(json.dumps(plan.to_dict())),  # as it reads back: tuples become lists
        "weights": str(weights.resolve()),
        "command": command,
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if path.exists():
        existing = json.loads(path.read_text())
        if existing.get("plan") != wanted["plan"]:
            raise BenchError(
                f"{str(out)!r} holds results of another benchmark plan ({existing.get('plan', {}).get('name')!r}); "
                f"pass a new --out folder, or the same options as before to resume it."
            )
        wanted["started"] = existing.get("started", wanted["started"])
    write_json(path, wanted)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Progress:
    """One line per event on stderr, with a job counter and the elapsed time (a tqdm bar when on a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.started = time.perf_counter()

    def say(self, text: str) -> None:
        if self.enabled:
            minutes, seconds = divmod(int(time.perf_counter() - self.started), 60)
            print(f"[{minutes:3d}:{seconds:02d} {self.done}/{self.total}] {text}", file=sys.stderr, flush=True)


def worker_command(backend: str, out: Path) -> list[str]:
    """The command line of ``backend``'s worker process."""
    return [sys.executable, "-m", "tlcore_bench.worker", "--bench", str(out), "--backend", backend]


def _run_worker(backend: str, out: Path, progress: _Progress, on_result: Callable[[], None]) -> dict[str, Any]:
    """Run one backend's worker process; return its status record."""
    log_path = out / "logs" / f"{backend}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = worker_command(backend, out)
    started = time.perf_counter()
    tail: deque[str] = deque(maxlen=15)
    failures: list[str] = []
    with open(log_path, "a", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_worker_env(), bufsize=1
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if not line.startswith("@@"):
                    tail.append(line.rstrip())
                    continue
                event, _, rest = line[2:].strip().partition(" ")
                if event in ("done", "skip", "fail"):
                    progress.done += 1
                if event == "fail":
                    failures.append(rest)
                if event != "skip":
                    progress.say(f"{backend}: {event} {rest}")
                if event == "done":
                    on_result()
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
    seconds = time.perf_counter() - started
    if code == 0:
        return {"state": "ok", "seconds": seconds}
    if failures and code == 1:
        return {"state": "failed jobs", "seconds": seconds, "errors": failures}
    reason = f"process exited with code {code}" if code >= 0 else f"process killed by signal {-code}"
    return {"state": "crashed", "seconds": seconds, "error": reason, "log_tail": list(tail), "log": str(log_path)}


def resolve_plan(
    quick: bool,
    backends: Sequence[str] | None,
    seeds: int | None,
    parts: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> BenchPlan:
    """The quick or full plan, restricted to ``backends``, the first ``seeds`` seeds, ``parts`` and the parity
    ``tasks`` (those of parity and transfer) when given."""
    from dataclasses import replace

    from tlcore import UnknownBackendError
    from tlcore.plugins import load_plugins

    plan = QUICK if quick else FULL
    if backends:
        known = set(load_plugins().backends) | set(ALL_BACKENDS)
        for backend in backends:
            if backend not in known:
                raise UnknownBackendError(backend, sorted(known))
        plan = replace(plan, backends=tuple(dict.fromkeys(backends)))
    if seeds is not None:
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1; got {seeds}.")
        plan = plan.with_seeds(tuple(range(seeds)))
    if parts:
        unknown = [part for part in parts if part not in PARTS]
        if unknown:
            raise ConfigError(f"--only: unknown part {unknown[0]!r}; expected some of {', '.join(PARTS)}.")
        if "transfer" in parts and "parity" not in parts:
            raise ConfigError("--only: 'transfer' needs 'parity' too (its budgets come from the parity runs).")
        plan = replace(plan, parts=tuple(part for part in PARTS if part in parts))
    if tasks:
        unknown = [task for task in tasks if task not in plan.parity_tasks]
        if unknown:
            raise ConfigError(
                f"--tasks: unknown task {unknown[0]!r} in the {plan.name} plan; expected some of "
                f"{', '.join(plan.parity_tasks)}."
            )
        plan = replace(plan, parity_tasks=tuple(task for task in plan.parity_tasks if task in tasks))
    return plan


def run_bench(plan: BenchPlan, out: str | Path, *, progress: bool = True, command: str = "") -> dict[str, Any]:
    """Run ``plan`` on every backend it names, each in its own process; return the report.

    Results already in ``out`` (from an interrupted run of the same plan) are
    kept and not run again. ``report.json``, ``report.md`` and the plots are
    rewritten after every finished job.
    """
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create benchmark folder {str(folder)!r}: {exc}") from None
    weights = _neutral_weights(plan, folder)
    _write_plan(plan, folder, weights, command or f"run_bench({plan.name!r})")
    statuses: dict[str, dict[str, Any]] = {}
    status_path = folder / "status.json"
    if status_path.exists():
        statuses = json.loads(status_path.read_text())
    runnable = []
    for backend in plan.backends:
        ok, why = _installed(backend)
        if ok:
            runnable.append(backend)
        else:
            statuses[backend] = {"state": "not installed", "error": why}
    total = sum(len(jobs_for(plan, b)) for b in runnable)
    bar = _Progress(total, progress)
    bar.say(f"benchmark {plan.name!r}: {total} jobs on {', '.join(runnable) or 'no installed backend'} -> {folder}")

    def report() -> None:
        write_json(status_path, statuses)
        write_report(folder)

    for backend in runnable:
        statuses[backend] = {"state": "running"}
        report()
        statuses[backend] = _run_worker(backend, folder, bar, report)
        bar.say(f"{backend}: {statuses[backend]['state']} after {statuses[backend]['seconds']:.0f} s")
        report()
    report()
    result: dict[str, Any] = json.loads((folder / "report.json").read_text())
    return result
