"""The benchmark's plans, job lists and report, from synthetic results (no framework, no training)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tlcore_bench.command import final_line
from tlcore_bench.report import build_report, check_line, render_markdown, title, write_report
from tlcore_bench.tasks import FULL, QUICK, BenchPlan, Task, jobs_for

from tlcore.io import write_json

TINY = Task("tiny", "digits", labels_per_class=5, validation_per_class=2, test_per_class=5, image_size=32)
PLAN = BenchPlan(
    name="test",
    tasks=(TINY,),
    parity_tasks=("tiny",),
    seeds=(0, 1, 2),
    backends=("torch", "keras-jax"),
    cache_task="tiny",
)


def test_plans_round_trip_through_json() -> None:
    for plan in (FULL, QUICK, PLAN):
        assert BenchPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_full_plan_covers_the_issue_tasks_with_three_seeds() -> None:
    names = {FULL.task(name).dataset + f"/{FULL.task(name).labels_per_class}" for name in FULL.parity_tasks}
    assert names == {"mnist-5k/100", "fashion-mnist/100", "fashion-mnist/1000", "digits/100"}
    assert all(len(FULL.seeds_of(name)) >= 3 for name in FULL.parity_tasks)
    # The small test sets get more seeds than the plan's three.
    assert len(FULL.seeds_of("digits")) > len(FULL.seeds) == len(FULL.seeds_of("fashion-mnist/100"))
    assert set(FULL.backends) == {"torch", "keras-tensorflow", "keras-torch", "keras-jax"}


def test_a_task_runs_its_own_seeds_unless_seeds_are_given() -> None:
    plan = replace(PLAN, tasks=(TINY, replace(TINY, name="more", seeds=(0, 1, 2, 3, 4))), parity_tasks=("tiny", "more"))
    parity = [(job.task, job.seed) for job in jobs_for(plan, "keras-jax") if job.kind == "parity"]
    # Seed by seed, every task's first seeds before any task's later ones.
    assert parity == [
        ("tiny", 0),
        ("more", 0),
        ("tiny", 1),
        ("more", 1),
        ("tiny", 2),
        ("more", 2),
        ("more", 3),
        ("more", 4),
    ]
    timed = [(job.task, job.seed) for job in jobs_for(plan, "torch") if job.kind == "scratch_time"]
    assert timed == parity
    two = plan.with_seeds((0, 1))
    assert [(job.task, job.seed) for job in jobs_for(two, "keras-jax") if job.kind == "parity"] == [
        ("tiny", 0),
        ("more", 0),
        ("tiny", 1),
        ("more", 1),
    ]
    assert BenchPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_only_the_reference_backend_trains_from_scratch_and_probes_every_task() -> None:
    reference = [job.key for job in jobs_for(FULL, "torch")]
    other = [job.key for job in jobs_for(FULL, "keras-jax")]
    assert len(reference) == len(set(reference))
    assert any(key.startswith("scratch_") for key in reference)
    assert not any(key.startswith("scratch_") for key in other)
    # Same-epochs scratch on the scratch seeds; same-time scratch on every seed, after the runs it needs.
    same_epochs = "scratch_digits_"  # same-time runs are "scratch_time_digits_s*"
    assert {key for key in reference if key.startswith(same_epochs)} == {"scratch_digits_s0"}
    timed = [key for key in reference if key.startswith("scratch_time_digits")]
    assert timed == [f"scratch_time_digits_s{seed}" for seed in FULL.seeds_of("digits")]
    assert reference.index(timed[0]) > max(
        reference.index(k) for k in reference if k.startswith(("parity", same_epochs))
    )
    parity = [key for key in other if key.startswith("parity_")]
    assert len(parity) == sum(len(FULL.seeds_of(task)) for task in FULL.parity_tasks)
    cache = FULL.cache_task.replace("/", "-")
    assert {f"probe_{cache}_s0", f"naive_{cache}_s0", "overhead_mnist-5k-100_s0"} <= set(other)


def _parity(backend: str, seed: int, accuracy: float) -> dict[str, Any]:
    epochs = [{"val_accuracy": 0.5 + 0.1 * i, "images_per_second": 100.0} for i in range(3)]
    return {
        "kind": "parity",
        "task": "tiny",
        "seed": seed,
        "backend": backend,
        "test_accuracy": accuracy,
        "peak_rss_bytes": 2**30,
        "peak_memory": {"device_bytes": None},
        "device": "cpu",
        "versions": {"numpy": "2"},
        "dataset": {"train": 50},
        "phases": [
            {"name": "head", "seconds": 2.0, "epochs": epochs, "images_per_second": 1000.0},
            {
                "name": "fine-tune",
                "seconds": 4.0,
                "images_per_second": 70.0,
                "epochs": [
                    {"val_accuracy": 0.9, "images_per_second": 50.0},
                    {"val_accuracy": 0.9, "images_per_second": 90.0},
                ],
            },
        ],
    }


def _bench(
    tmp_path: Path, accuracies: dict[str, list[float]], statuses: dict[str, Any] | None = None, plan: BenchPlan = PLAN
) -> Path:
    write_json(tmp_path / "plan.json", {"plan": plan.to_dict(), "command": "tlcore bench", "machine": {"cores": 2}})
    for backend, values in accuracies.items():
        for seed, value in enumerate(values):
            write_json(tmp_path / "runs" / backend / f"parity_tiny_s{seed}.json", _parity(backend, seed, value))
    if statuses is not None:
        write_json(tmp_path / "status.json", statuses)
    return tmp_path


def test_parity_passes_when_the_paired_interval_is_inside_the_tolerance(tmp_path: Path) -> None:
    # Per-seed differences to torch: +0.1, +0.1, -0.1 points; their 90 % interval is well inside ±0.5.
    bench = _bench(tmp_path, {"torch": [0.90, 0.91, 0.92], "keras-jax": [0.901, 0.911, 0.919]})
    report = build_report(bench)
    row = report["parity"][0]
    assert row["verdict"] == "pass"
    assert row["spread"] == pytest.approx(0.00033, abs=1e-4)
    assert row["backends"]["torch"]["mean"] == pytest.approx(0.91)
    assert row["backends"]["torch"]["std"] == pytest.approx(0.01)
    assert row["against_reference"]["keras-jax"]["verdict"] == "pass"
    assert report["checks"]["parity"]["verdict"] == "pass"
    assert "keras-jax: pass: mean difference to torch 0.03 points" in render_markdown(report)


def test_parity_is_undecided_when_the_seeds_cannot_decide_it_and_says_how_many_would(tmp_path: Path) -> None:
    # Means 0.2 points apart, but the differences scatter by 0.5 points: the interval straddles +0.5.
    bench = _bench(tmp_path, {"torch": [0.90, 0.91, 0.92], "keras-jax": [0.904, 0.906, 0.926]})
    report = build_report(bench)
    check = report["parity"][0]["against_reference"]["keras-jax"]
    assert check["verdict"] == "undecided"
    assert check["seeds_needed"] > 3
    assert f"about {check['seeds_needed']} seeds would decide it" in check["reason"]
    assert report["checks"]["parity"]["verdict"] == "undecided"


def test_parity_fails_beyond_the_tolerance_and_is_incomplete_with_missing_seeds(tmp_path: Path) -> None:
    failing = build_report(_bench(tmp_path / "a", {"torch": [0.90, 0.91, 0.92], "keras-jax": [0.92, 0.93, 0.94]}))
    assert failing["parity"][0]["verdict"] == "fail"
    assert failing["checks"]["parity"]["verdict"] == "fail"
    partial = build_report(_bench(tmp_path / "b", {"torch": [0.90] * 3, "keras-jax": [0.90]}))
    assert partial["parity"][0]["verdict"] == "incomplete"
    # A task with seeds of its own is complete with all of them, not with the plan's three.
    five = replace(PLAN, tasks=(replace(TINY, seeds=(0, 1, 2, 3, 4)),))
    three_of_five = build_report(_bench(tmp_path / "c", {"torch": [0.90] * 3, "keras-jax": [0.90] * 3}, plan=five))
    assert three_of_five["parity"][0]["verdict"] == "incomplete"
    report = build_report(_bench(tmp_path / "d", {"torch": [0.90] * 5, "keras-jax": [0.901] * 5}, plan=five))
    assert report["parity"][0]["verdict"] == "pass"
    assert "seeds 0, 1, 2 (tiny: 0, 1, 2, 3, 4)" in render_markdown(report)


def test_a_crashed_or_missing_backend_is_in_the_table_and_the_others_are_kept(tmp_path: Path) -> None:
    statuses = {
        "torch": {"state": "ok", "seconds": 3.0},
        "keras-jax": {"state": "crashed", "error": "process killed by signal 11", "log_tail": []},
    }
    bench = _bench(tmp_path, {"torch": [0.9, 0.9, 0.9]}, statuses)
    report = write_report(bench)
    text = (bench / "report.md").read_text()
    assert "| keras-jax | crashed: process killed by signal 11 |" in text
    assert "90.00 ± 0.00 (n=3)" in text
    assert report["parity"][0]["verdict"] == "incomplete"
    assert json.loads((bench / "report.json").read_text())["statuses"]["keras-jax"]["state"] == "crashed"


def test_transfer_value_and_speed_rows(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {"torch": [0.9, 0.9, 0.9], "keras-jax": [0.9, 0.9, 0.9]})
    probe = {**_parity("torch", 0, 0.8), "kind": "probe", "phases": [{"name": "head", "seconds": 2.0, "epochs": []}]}
    naive = {
        **probe,
        "kind": "naive",
        "test_accuracy": 0.8,
        "phases": [{"name": "head", "seconds": 30.0, "epochs": []}],
    }
    scratch = {**_parity("torch", 0, 0.7), "kind": "scratch"}
    overhead = {
        **_parity("torch", 0, 0.0),
        "kind": "overhead",
        "ratio": 0.97,
        "tlcore_median": 97.0,
        "hand_median": 100.0,
        "hand_loop": "plain torch loop",
        "freeze": "fine_tune_at(stage5)",
        "pair_ratios": [0.96, 0.97, 0.99, 0.97, 0.98, 0.96, 1.01],
    }
    for name, record in (("probe", probe), ("naive", naive), ("scratch", scratch), ("overhead", overhead)):
        write_json(bench / "runs" / "torch" / f"{name}.json", record)
    report = build_report(bench)
    transfer = report["transfer"][0]
    # One seed: a 20-point gain is decided against the assumed per-seed spread of 4 points.
    assert transfer["verdict_same_epochs"] == "transfer wins"
    assert transfer["gain_same_epochs"] == pytest.approx(0.2)
    assert "assumed per-seed spread of 4.00 points" in transfer["check_same_epochs"]["reason"]
    assert transfer["verdict_same_time"] == "incomplete"
    assert report["checks"]["transfer"]["verdict"] == "incomplete"
    assert report["checks"]["transfer_same_epochs"]["verdict"] == "pass"
    timed = {**scratch, "kind": "scratch_time", "test_accuracy": 0.5, "phases": [{"name": "s", "epochs_planned": 2}]}
    write_json(bench / "runs" / "torch" / "scratch_time.json", timed)
    with_timed = build_report(bench)
    transfer = with_timed["transfer"][0]
    assert with_timed["checks"]["transfer"]["verdict"] == "pass"  # the budget is the training time
    assert transfer["verdict_same_time"] == "transfer wins"
    assert transfer["gain_same_time"] == pytest.approx(0.4)
    assert transfer["scratch_same_time_epochs"] == [2]
    assert transfer["linear_probe"]["mean"] == pytest.approx(0.8)
    torch_speed = next(row for row in report["speed"] if row["backend"] == "torch")
    assert torch_speed["cache"]["speedup"] == pytest.approx(15.0)
    assert torch_speed["overhead"]["ratio"] == pytest.approx(0.97)
    # Seven pairs: the median's interval runs from the 2nd to the 6th ratio (0.96 to 0.99), above 0.95.
    assert torch_speed["overhead"]["check"]["verdict"] == "pass"
    assert torch_speed["cache"]["check"]["verdict"] == "pass"
    # keras-jax has not measured its overhead: the check is incomplete, and says so.
    assert report["checks"]["overhead"]["verdict"] == "incomplete"
    assert report["checks"]["overhead"]["reason"] == "keras-jax: not measured yet"
    assert torch_speed["fine_tune_images_per_second"] == pytest.approx(90.0)  # the compiling epoch left out
    markdown = render_markdown(report)
    assert "2.0 s vs 30.0 s (15.0x)" in markdown
    assert "| 0.970 |" in markdown


def test_one_seed_leaves_parity_undecided_with_the_seeds_that_would_decide_it(tmp_path: Path) -> None:
    plan = {**replace(PLAN, parts=("parity",)).to_dict(), "seeds": [0]}
    write_json(tmp_path / "plan.json", {"plan": plan})
    for backend, value in (("torch", 0.9), ("keras-jax", 0.899)):
        write_json(tmp_path / "runs" / backend / "parity_tiny_s0.json", _parity(backend, 0, value))
    report = build_report(tmp_path)
    row = report["parity"][0]
    assert row["verdict"] == "undecided"
    assert row["spread"] == pytest.approx(0.001)
    reason = row["against_reference"]["keras-jax"]["reason"]
    assert reason.startswith("1 seed (difference to torch -0.10 points)")
    assert "assumed per-seed spread of 0.45 points" in reason and "seeds would decide it" in reason
    # Undecided is printed with its reason and is not counted as not passed.
    assert check_line(report["checks"]["parity"]).startswith("undecided (tiny: keras-jax: 1 seed")
    assert final_line(report["checks"], "OUT").endswith(
        "checks not passed: none; undecided (see the reasons above): parity"
    )


def _probe(backend: str, correct: int, test: int = 450) -> dict[str, Any]:
    record = _parity(backend, 0, correct / test)
    return {**record, "kind": "probe", "dataset": {"train": 50, "test": test}}


def test_head_parity_compares_correct_test_images_across_backends(tmp_path: Path) -> None:
    plan = replace(PLAN, head_parity=True, parts=("parity",))
    bench = _bench(tmp_path, {"torch": [0.9] * 3, "keras-jax": [0.9] * 3}, plan=plan)
    assert next(job.key for job in jobs_for(plan, "keras-jax")) == "probe_tiny_s0"
    write_json(bench / "runs" / "torch" / "probe_tiny_s0.json", _probe("torch", 400))
    assert build_report(bench)["checks"]["head_parity"]["verdict"] == "incomplete"
    write_json(bench / "runs" / "keras-jax" / "probe_tiny_s0.json", _probe("keras-jax", 402))
    report = build_report(bench)
    assert report["head_parity"][0]["apart"] == 2
    assert report["checks"]["head_parity"] == {
        "verdict": "pass",
        "reason": "tiny: correct test images torch 400, keras-jax 402 of 450: 2 apart (at most 2)",
        "interval": None,
        "seeds_needed": None,
    }
    assert "| tiny | 400 | 402 | 2 of 450 | pass |" in render_markdown(report)
    write_json(bench / "runs" / "keras-jax" / "probe_tiny_s0.json", _probe("keras-jax", 403))
    assert build_report(bench)["checks"]["head_parity"]["verdict"] == "fail"


def test_equal_time_scratch_gets_the_epochs_that_fit_in_the_recipe_time(tmp_path: Path) -> None:
    from tlcore_bench.worker import _equal_time_scratch

    write_json(tmp_path / "parity_tiny_s0.json", {"training_seconds": 10.0})
    write_json(tmp_path / "scratch_tiny_s0.json", {"training_seconds": 44.0, "phases": [{"epochs": [{}] * 11}]})
    recipe, extra = _equal_time_scratch(TINY, 0, 0, tmp_path)
    assert recipe.phases[0].epochs == 2 and recipe.backbone.weights is None
    assert extra == {"budget_seconds": 10.0, "scratch_epoch_seconds": 4.0}
    # Another seed: its own parity run's budget, the scratch seed's epoch time.
    write_json(tmp_path / "parity_tiny_s1.json", {"training_seconds": 21.0})
    recipe, extra = _equal_time_scratch(TINY, 1, 0, tmp_path)
    assert recipe.phases[0].epochs == 5 and recipe.seed == 1
    assert extra == {"budget_seconds": 21.0, "scratch_epoch_seconds": 4.0}
    (tmp_path / "scratch_tiny_s0.json").unlink()
    with pytest.raises(RuntimeError, match=r"needs scratch_tiny_s0\.json first"):
        _equal_time_scratch(TINY, 0, 0, tmp_path)


def test_parts_choose_the_jobs() -> None:
    speed = replace(FULL, parts=("speed",))
    assert [job.kind for job in jobs_for(speed, "torch")] == ["probe", "naive", "overhead"]
    parity = replace(FULL, parts=("parity",))
    assert {job.kind for job in jobs_for(parity, "torch")} == {"parity"}
    assert len(jobs_for(parity, "keras-jax")) == sum(len(FULL.seeds_of(task)) for task in FULL.parity_tasks)
    # The quick plan's cache task is its parity task: without the speed part, transfer runs its seed-0 probe itself.
    quick = [job.key for job in jobs_for(replace(QUICK, parts=("parity", "transfer")), "torch")]
    assert "probe_digits-30_s0" in quick and "overhead_digits-30_s0" not in quick


def test_a_speed_only_report_has_only_the_speed_checks(tmp_path: Path) -> None:
    write_json(tmp_path / "plan.json", {"plan": replace(PLAN, parts=("speed",)).to_dict()})
    overhead = {**_parity("torch", 0, 0.0), "kind": "overhead", "ratio": 0.99, "tlcore_median": 99.0}
    overhead |= {"hand_median": 100.0, "hand_loop": "plain torch loop", "freeze": "fine_tune_at(stem)"}
    overhead["pair_ratios"] = [0.93, 0.99, 1.02, 0.97, 1.0]  # five pairs: the interval is the range, 0.93 to 1.02
    write_json(tmp_path / "runs" / "torch" / "overhead.json", overhead)
    report = write_report(tmp_path)
    assert set(report["checks"]) == {"overhead", "cache"}
    assert report["checks"]["overhead"]["verdict"] == "undecided"
    assert "the interval straddles the bar" in report["checks"]["overhead"]["reason"]
    assert report["checks"]["cache"]["verdict"] == "incomplete"
    assert report["parity"] == [] and report["transfer"] == []
    markdown = (tmp_path / "report.md").read_text()
    assert "Accuracy parity" not in markdown and "Transfer value" not in markdown
    assert "| 0.990 |" in markdown


def test_the_title_says_what_part_of_the_plan_ran() -> None:
    assert title(FULL.to_dict()) == "full"
    assert title(QUICK.to_dict()) == "quick"
    narrowed = replace(FULL, parts=("parity",), parity_tasks=("digits", "fashion-mnist/1000"))
    assert title(narrowed.to_dict()) == "full (parity only; tasks digits, fashion-mnist/1000)"
    assert title(replace(FULL, parts=("speed",)).to_dict()) == "full (speed only)"
