"""The benchmark driver: one process per backend, failures reported, finished results kept, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tlcore_bench.run as bench_run
from tlcore_bench import BenchError, resolve_plan, run_bench
from tlcore_bench.tasks import FULL, BenchPlan, Task, jobs_for

from tlcore import ConfigError, UnknownBackendError

TINY = Task("tiny", "digits", labels_per_class=5, validation_per_class=2, test_per_class=5, image_size=32)


def _plan(*backends: str) -> BenchPlan:
    return BenchPlan(
        name="test",
        tasks=(TINY,),
        parity_tasks=("tiny",),
        seeds=(0,),
        backends=backends,
        cache_task="",
        reference="none",
    )


# A stand-in worker: writes one finished parity result, then behaves as told by its backend's name.
FAKE_WORKER = """
import json, os, sys
out, backend = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/runs/{backend}", exist_ok=True)
print("@@start parity_tiny_s0", flush=True)
record = {"kind": "parity", "task": "tiny", "seed": 0, "backend": backend, "test_accuracy": 0.5,
          "peak_rss_bytes": 1, "dataset": {"train": 1}, "phases": []}
with open(f"{out}/runs/{backend}/parity_tiny_s0.json", "w") as f:
    json.dump(record, f)
print("@@done parity_tiny_s0 test accuracy 0.5", flush=True)
if backend == "crashing":
    print("Segmentation fault (core dumped)", flush=True)
    sys.exit(139)
"""


@pytest.fixture
def fake_backends(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    monkeypatch.setattr(
        bench_run, "worker_command", lambda backend, out: [sys.executable, str(script), str(out), backend]
    )
    monkeypatch.setattr(bench_run, "_installed", lambda backend: (backend != "missing", "not installed (missing jax)"))
    monkeypatch.setattr(bench_run, "_neutral_weights", lambda plan, out: out / "weights.json")
    return tmp_path / "bench"


def test_missing_and_crashing_backends_are_reported_and_the_rest_kept(fake_backends: Path) -> None:
    report = run_bench(_plan("working", "crashing", "missing"), fake_backends, progress=False)
    assert report["statuses"]["working"]["state"] == "ok"
    crashed = report["statuses"]["crashing"]
    assert crashed["state"] == "crashed"
    assert "exited with code 139" in crashed["error"]
    assert "Segmentation fault (core dumped)" in crashed["log_tail"]
    assert report["statuses"]["missing"] == {"state": "not installed", "error": "not installed (missing jax)"}
    parity = report["parity"][0]["backends"]
    assert set(parity) == {"working", "crashing"}  # the crashed backend's finished result is kept
    text = (fake_backends / "report.md").read_text()
    assert "| missing | not installed: not installed (missing jax) |" in text
    assert "| crashing | crashed: process exited with code 139 |" in text


def test_a_folder_of_another_plan_is_refused_and_the_same_plan_resumes(fake_backends: Path) -> None:
    run_bench(_plan("working"), fake_backends, progress=False)
    assert run_bench(_plan("working"), fake_backends, progress=False)["statuses"]["working"]["state"] == "ok"
    with pytest.raises(BenchError, match="another benchmark plan"):
        run_bench(BenchPlan(name="other", tasks=(TINY,), parity_tasks=("tiny",)), fake_backends, progress=False)


def test_the_report_is_rewritten_after_each_finished_job(fake_backends: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = bench_run.write_report

    def spy(folder: Path) -> dict[str, object]:
        report = real(folder)
        seen.append(int(report["jobs_finished"]))  # type: ignore[call-overload]
        return report

    monkeypatch.setattr(bench_run, "write_report", spy)
    run_bench(_plan("working", "crashing"), fake_backends, progress=False)
    assert 1 in seen and seen[-1] == 2
    assert json.loads((fake_backends / "status.json").read_text())["crashing"]["state"] == "crashed"


def test_resolve_plan_checks_backends_and_seeds() -> None:
    plan = resolve_plan(True, ["torch", "keras-jax", "torch"], 2)
    assert plan.backends == ("torch", "keras-jax")
    assert plan.seeds == (0, 1)
    # --seeds N is N seeds on every task, those with seeds of their own too.
    assert {resolve_plan(False, None, 4).seeds_of(task) for task in FULL.parity_tasks} == {(0, 1, 2, 3)}
    with pytest.raises(UnknownBackendError, match="keras-jx"):
        resolve_plan(True, ["keras-jx"], None)
    with pytest.raises(Exception, match="--seeds must be at least 1"):
        resolve_plan(False, None, 0)
    assert resolve_plan(False, None, None, ["transfer", "speed", "parity"]).parts == ("speed", "parity", "transfer")
    with pytest.raises(ConfigError, match=r"unknown part 'sped'.*speed, parity, transfer"):
        resolve_plan(False, None, None, ["sped"])
    with pytest.raises(ConfigError, match="'transfer' needs 'parity'"):
        resolve_plan(False, None, None, ["transfer"])


def test_resolve_plan_restricts_the_parity_tasks() -> None:
    plan = resolve_plan(False, None, None, ["parity", "transfer"], ["digits", "mnist-5k/100"])
    assert plan.parity_tasks == ("mnist-5k/100", "digits")  # the plan's order
    torch_jobs = {(job.kind, job.task) for job in jobs_for(plan, "torch")}
    assert {task for _, task in torch_jobs} == {"mnist-5k/100", "digits"}
    assert ("scratch_time", "digits") in torch_jobs and ("probe", "digits") in torch_jobs
    with pytest.raises(ConfigError, match=r"--tasks: unknown task 'digit' in the full plan; expected some of "):
        resolve_plan(False, None, None, None, ["digit"])


def test_cli_bench_reports_a_bad_backend_name_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tlcore._cli import main

    assert main(["bench", "--quick", "--backends", "torh", "--out", str(tmp_path / "b")]) == 2
    error = capsys.readouterr().err
    assert "no backend 'torh'" in error and "Did you mean 'torch'" in error
    assert not (tmp_path / "b").exists()


def test_an_unwritable_folder_is_a_bench_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BenchError, match="cannot create benchmark folder"):
        run_bench(_plan("working"), blocker / "bench", progress=False)


def test_the_benchmark_driver_imports_no_framework() -> None:
    import subprocess

    code = "import sys, tlcore_bench; print([m for m in ('torch','keras','jax','tensorflow') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
