"""The benchmark's report: tables and verdicts from the per-job results, as JSON, Markdown and plots.

Everything here is recomputed from ``runs/BACKEND/JOB.json`` and
``status.json`` whenever a job finishes, so the report always shows what has
finished so far and never anything else.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from tlcore.io import write_json, write_with
from tlcore_bench.plots import plot_accuracy, plot_curves, plot_throughput
from tlcore_bench.stats import FAIL, INCOMPLETE, PASS, Verdict, combine, equivalence, positive_gain, ratio_verdict
from tlcore_bench.tasks import FULL, PARTS, QUICK, BenchPlan

__all__ = ["build_report", "check_line", "load_results", "render_markdown", "title", "write_report"]

Results = dict[str, list[dict[str, Any]]]

# Defaults for plans written before these fields existed (:class:`tlcore_bench.tasks.BenchPlan`).
_DEFAULTS = BenchPlan(name="", tasks=(), parity_tasks=()).to_dict()


def _setting(plan: dict[str, Any], key: str) -> Any:
    return plan.get(key, _DEFAULTS[key])


def load_results(folder: Path) -> Results:
    """Every finished job's result, by backend."""
    results: Results = defaultdict(list)
    for path in sorted((folder / "runs").glob("*/*.json")):
        if path.name.endswith(".error.json"):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # results are written atomically; anything unreadable is not ours
        results[record["backend"]].append(record)
    return dict(results)


def _errors(folder: Path) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = defaultdict(list)
    for path in sorted((folder / "runs").glob("*/*.error.json")):
        if not path.with_name(path.name.replace(".error.json", ".json")).exists():
            errors[path.parent.name].append(json.loads(path.read_text())["error"])
    return dict(errors)


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
        "values": values,
    }


def _of(results: Results, kind: str, task: str | None = None) -> dict[str, list[dict[str, Any]]]:
    return {
        backend: sorted(
            (r for r in records if r["kind"] == kind and (task is None or r["task"] == task)), key=lambda r: r["seed"]
        )
        for backend, records in results.items()
    }


def _parity_tasks(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [task for task in plan["tasks"] if task["name"] in plan["parity_tasks"]]


def _seeds(plan: dict[str, Any], task: dict[str, Any]) -> list[int]:
    """The seeds ``task`` runs (:meth:`BenchPlan.seeds_of`)."""
    return list(BenchPlan.from_dict(plan).seeds_of(task["name"]))


def _parity(plan: dict[str, Any], results: Results) -> list[dict[str, Any]]:
    """Fine-tuned parity per task: each backend against the reference, TOST on the per-seed differences."""
    rows = []
    reference, margin = plan["reference"], plan["tolerance"]
    for task in _parity_tasks(plan):
        runs = _of(results, "parity", task["name"])
        backends = {b: _stats([r["test_accuracy"] for r in rs]) for b, rs in runs.items() if rs}
        means = [s["mean"] for s in backends.values()]
        spread = max(means) - min(means) if len(means) > 1 else None
        seeds = _seeds(plan, task)
        against: dict[str, Verdict] = {}
        base = {r["seed"]: r["test_accuracy"] for r in runs.get(reference, [])}
        for backend in plan["backends"]:
            if backend == reference:
                continue
            mine = {r["seed"]: r["test_accuracy"] for r in runs.get(backend, [])}
            paired = sorted(set(mine) & set(base) & set(seeds))
            verdict = equivalence(
                [mine[seed] - base[seed] for seed in paired],
                margin,
                assumed_spread=_setting(plan, "parity_spread"),
                what=f"difference to {reference}",
            )
            if verdict.verdict != FAIL and len(paired) < len(seeds):
                verdict = Verdict(INCOMPLETE, f"{len(paired)} of {len(seeds)} seeds paired so far; {verdict.reason}")
            against[backend] = verdict
        if reference not in plan["backends"]:
            overall = Verdict(INCOMPLETE, f"the reference backend {reference} is not in the plan")
        else:
            overall = combine(against)
        rows.append(
            {
                "task": task["name"],
                "backends": backends,
                "spread": spread,
                "against_reference": {b: v.to_dict() for b, v in against.items()},
                "verdict": overall.verdict,
                "reason": overall.reason,
            }
        )
    return rows


def _head_parity(plan: dict[str, Any], results: Results) -> list[dict[str, Any]]:
    """The head phase alone (the linear probe) from one checkpoint, on every backend: correct test images compared."""
    if not _setting(plan, "head_parity"):
        return []
    rows = []
    allowed = _setting(plan, "head_parity_images")
    for task in _parity_tasks(plan):
        seed = _seeds(plan, task)[0]
        correct: dict[str, int] = {}
        size = 0
        for backend, records in _of(results, "probe", task["name"]).items():
            record = next((r for r in records if r["seed"] == seed), None)
            if record is not None:
                size = record["dataset"]["test"]
                correct[backend] = round(record["test_accuracy"] * size)
        apart = max(correct.values()) - min(correct.values()) if correct else None
        missing = [b for b in plan["backends"] if b not in correct]
        counts = ", ".join(f"{b} {correct[b]}" for b in plan["backends"] if b in correct)
        text = f"correct test images {counts} of {size}"
        if apart is not None and apart > allowed:
            verdict = Verdict(FAIL, f"{text}: {apart} apart, more than {allowed}")
        elif missing:
            verdict = Verdict(INCOMPLETE, f"no linear probe yet on {', '.join(missing)}")
        else:
            verdict = Verdict(PASS, f"{text}: {apart} apart (at most {allowed})")
        rows.append(
            {"task": task["name"], "seed": seed, "correct": correct, "test_images": size, "apart": apart}
            | {"verdict": verdict.verdict, "reason": verdict.reason}
        )
    return rows


def _transfer(plan: dict[str, Any], results: Results) -> list[dict[str, Any]]:
    reference = plan["reference"]
    rows = []
    for task in _parity_tasks(plan):
        name = task["name"]
        fine = [r["test_accuracy"] for rs in _of(results, "parity", name).values() for r in rs]
        reference_runs = _of(results, "parity", name).get(reference, [])
        reference_fine = [r["test_accuracy"] for r in reference_runs]
        probe = [r["test_accuracy"] for r in _of(results, "probe", name).get(reference, [])]
        scratch_runs = _of(results, "scratch", name).get(reference, [])
        scratch = [r["test_accuracy"] for r in scratch_runs]
        timed = _of(results, "scratch_time", name).get(reference, [])
        row: dict[str, Any] = {
            "task": name,
            "reference": reference,
            "fine_tuned_all": _stats(fine) if fine else None,
            "fine_tuned": _stats(reference_fine) if reference_fine else None,
            "linear_probe": _stats(probe) if probe else None,
            "scratch": _stats(scratch) if scratch else None,
            "epochs": task["head_epochs"] + task["fine_tune_epochs"],
            "scratch_same_time": _stats([r["test_accuracy"] for r in timed]) if timed else None,
            "scratch_same_time_epochs": [r["phases"][0]["epochs_planned"] for r in timed],
        }
        tuned = {r["seed"]: r["test_accuracy"] for r in reference_runs}
        for key, runs, suffix in (
            ("scratch_same_time", timed, "_same_time"),
            ("scratch", scratch_runs, "_same_epochs"),
        ):
            # Paired by seed: the same split and the same test images on both sides.
            gains = [tuned[r["seed"]] - r["test_accuracy"] for r in runs if r["seed"] in tuned]
            if row["fine_tuned"] and row[key]:
                row[f"gain{suffix}"] = row["fine_tuned"]["mean"] - row[key]["mean"]
            verdict = positive_gain(gains, assumed_spread=_setting(plan, "gain_spread"), what="gain over scratch")
            row[f"verdict{suffix}"] = {"pass": "transfer wins", "fail": "scratch wins"}.get(
                verdict.verdict, verdict.verdict
            )
            row[f"check{suffix}"] = verdict.to_dict()
        rows.append(row)
    return rows


def _phase(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in record["phases"] if p["name"] == name), None)


def _speed(plan: dict[str, Any], results: Results) -> list[dict[str, Any]]:
    rows = []
    for backend in plan["backends"]:
        records = results.get(backend, [])
        if not records:
            continue
        row: dict[str, Any] = {"backend": backend, "device": next((r.get("device") for r in records), None)}
        fine, head = [], []
        for record in (r for r in records if r["kind"] == "parity"):
            train = record["dataset"]["train"]
            if (phase := _phase(record, "fine-tune")) is not None:
                # The first epoch includes compiling the step (tf.function/XLA, jit): leave it out when there are more.
                epochs = phase["epochs"][1:] or phase["epochs"]
                fine.append(statistics.fmean(e["images_per_second"] for e in epochs))
            if (phase := _phase(record, "head")) is not None and phase["seconds"] > 0:
                head.append(train * len(phase["epochs"]) / phase["seconds"])
        row["fine_tune_images_per_second"] = statistics.fmean(fine) if fine else None
        row["frozen_phase_images_per_second"] = statistics.fmean(head) if head else None
        cached = next(
            (
                r
                for r in records
                if r["kind"] == "probe" and r["task"] == plan["cache_task"] and r["seed"] == plan["seeds"][0]
            ),
            None,
        )
        naive = next((r for r in records if r["kind"] == "naive"), None)
        if cached and naive:
            cached_seconds = _phase(cached, "head")["seconds"]  # type: ignore[index]
            naive_seconds = _phase(naive, "head")["seconds"]  # type: ignore[index]
            row["cache"] = {
                "task": plan["cache_task"],
                "cached_seconds": cached_seconds,
                "naive_seconds": naive_seconds,
                "speedup": naive_seconds / cached_seconds if cached_seconds > 0 else None,
                "cached_accuracy": cached["test_accuracy"],
                "naive_accuracy": naive["test_accuracy"],
                "accuracy_difference": abs(cached["test_accuracy"] - naive["test_accuracy"]),
            }
            speedup = row["cache"]["speedup"] or 0.0
            bar, apart = _setting(plan, "cache_bar"), row["cache"]["accuracy_difference"]
            verdict = Verdict(
                PASS if speedup >= bar and apart <= plan["tolerance"] else FAIL,
                f"{speedup:.1f}x against {bar:.0f}x, accuracy {100 * apart:.2f} points apart",
            )
            row["cache"]["check"] = verdict.to_dict()
        overhead = next((r for r in records if r["kind"] == "overhead"), None)
        if overhead:
            row["overhead"] = {k: overhead[k] for k in ("ratio", "tlcore_median", "hand_median", "hand_loop", "freeze")}
            if "pair_ratios" in overhead:
                verdict = ratio_verdict(overhead["pair_ratios"], _setting(plan, "overhead_bar"))
            else:  # a result from before the paired design: one ratio of medians, no interval
                ratio = overhead["ratio"]
                verdict = Verdict(PASS if ratio >= _setting(plan, "overhead_bar") else FAIL, f"ratio {ratio:.3f}")
            row["overhead"]["check"] = verdict.to_dict()
        row["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in records)
        device_peaks = [
            r["peak_memory"]["device_bytes"] for r in records if r.get("peak_memory", {}).get("device_bytes")
        ]
        row["peak_device_bytes"] = max(device_peaks) if device_peaks else None
        row["versions"] = next((r["versions"] for r in records if r.get("versions")), {})
        rows.append(row)
    return rows


def _verdict(check: dict[str, Any]) -> Verdict:
    return Verdict(check["verdict"], check["reason"])


def _checks(
    plan: dict[str, Any],
    parts: list[str],
    head_parity: list[dict[str, Any]],
    parity: list[dict[str, Any]],
    transfer: list[dict[str, Any]],
    speed: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Every check's verdict and reason: pass, fail, undecided (the data cannot decide it, and why) or incomplete."""
    checks: dict[str, Verdict] = {}
    if "parity" in parts:
        if _setting(plan, "head_parity"):
            checks["head_parity"] = combine({row["task"]: _verdict(row) for row in head_parity})
        checks["parity"] = combine({row["task"]: _verdict(row) for row in parity})
    if "transfer" in parts:
        # The budget is the training time: a head epoch on cached features costs a fraction of a full one.
        checks["transfer"] = combine({row["task"]: _verdict(row["check_same_time"]) for row in transfer})
        checks["transfer_same_epochs"] = combine({row["task"]: _verdict(row["check_same_epochs"]) for row in transfer})
    if "speed" in parts:
        for name in ("overhead", "cache"):
            checks[name] = combine(
                {
                    row["backend"]: _verdict(row[name]["check"])
                    if name in row and "check" in row[name]
                    else Verdict(INCOMPLETE, "not measured yet")
                    for row in speed
                }
            )
    return {name: verdict.to_dict() for name, verdict in checks.items()}


def build_report(folder: Path) -> dict[str, Any]:
    """The report of the benchmark in ``folder``, from what has finished so far."""
    meta = json.loads((folder / "plan.json").read_text())
    plan = meta["plan"]
    status_path = folder / "status.json"
    statuses = json.loads(status_path.read_text()) if status_path.exists() else {}
    results = load_results(folder)
    errors = _errors(folder)
    for backend, messages in errors.items():
        statuses.setdefault(backend, {}).setdefault("errors", messages)
    parts = plan.get("parts", PARTS)
    parity = _parity(plan, results) if "parity" in parts else []
    transfer = _transfer(plan, results) if "transfer" in parts else []
    speed = _speed(plan, results)
    head_parity = _head_parity(plan, results) if "parity" in parts else []
    checks = _checks(plan, parts, head_parity, parity, transfer, speed)
    return {
        "plan": plan,
        "command": meta.get("command"),
        "machine": meta.get("machine", {}),
        "started": meta.get("started"),
        "statuses": statuses,
        "head_parity": head_parity,
        "parity": parity,
        "transfer": transfer,
        "speed": speed,
        "checks": checks,
        "jobs_finished": sum(len(r) for r in results.values()),
    }


def _seeds_text(plan: dict[str, Any]) -> str:
    """``seeds 0, 1, 2``, and the tasks with seeds of their own."""
    own = [(task["name"], _seeds(plan, task)) for task in _parity_tasks(plan) if task.get("seeds")]
    text = f"seeds {', '.join(map(str, plan['seeds']))}"
    if own:
        text += " (" + "; ".join(f"{name}: {', '.join(map(str, seeds))}" for name, seeds in own) + ")"
    return text


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _mean_std(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "-"
    return f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f} (n={stats['n']})"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def title(plan: dict[str, Any]) -> str:
    """The plan's name, and what of it ran when ``--only`` or ``--tasks`` narrowed it."""
    narrowed = []
    parts = plan.get("parts", list(PARTS))
    if list(parts) != list(PARTS):
        narrowed.append(f"{', '.join(parts)} only")
    named = {FULL.name: FULL, QUICK.name: QUICK}.get(plan["name"])
    if named is not None and list(plan["parity_tasks"]) != list(named.parity_tasks):
        narrowed.append(f"tasks {', '.join(plan['parity_tasks'])}")
    name = str(plan["name"])
    return name + (f" ({'; '.join(narrowed)})" if narrowed else "")


def check_line(check: dict[str, Any]) -> str:
    """``passed``, ``not passed`` or ``undecided``, with the check's reason."""
    word = {"pass": "passed", "fail": "not passed", "undecided": "undecided", "incomplete": "incomplete"}
    text = word.get(check["verdict"], check["verdict"])
    return f"{text} ({check['reason']})" if check.get("reason") else text


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables, for people and for the README."""
    plan, machine = report["plan"], report["machine"]
    backends = plan["backends"]
    lines = [
        f"# tlcore benchmark: {title(plan)}",
        "",
        f"Command: `{report['command']}`  ",
        f"Started: {report['started']}; machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('gpu') or 'no GPU'}; Python {machine.get('python', '?')}",
        "",
        "efficientnet_lite0 with ImageNet weights from one neutral checkpoint, two-phase recipe "
        f"(head on frozen features, then fine-tuning); {_seeds_text(plan)}; "
        f"parity: each backend's per-seed differences to {plan['reference']}, the 90 % interval of their mean "
        f"within ±{100 * plan['tolerance']:.1f} points (two one-sided tests).",
        "",
        "## Backends",
        "",
        "| backend | state | versions |",
        "| --- | --- | --- |",
    ]
    versions = {row["backend"]: row["versions"] for row in report["speed"]}
    for backend in backends:
        status = report["statuses"].get(backend, {"state": "not run"})
        state = status.get("state", "?")
        detail = status.get("error") or "; ".join(status.get("errors", []))
        text = f"{state}: {detail}" if detail else state
        version = ", ".join(f"{k} {v}" for k, v in versions.get(backend, {}).items() if v)
        lines.append(f"| {backend} | {text.replace('|', '/')} | {version or '-'} |")
    if report.get("head_parity"):
        lines += [
            "",
            "## Head-phase parity (the linear probe from one checkpoint: correct test images, first seed)",
            "",
            "| task | " + " | ".join(backends) + " | apart | verdict |",
            "| --- |" + " --- |" * (len(backends) + 2),
        ]
    for row in report.get("head_parity", []):
        cells = [str(row["correct"].get(b, "-")) for b in backends]
        apart = "-" if row["apart"] is None else str(row["apart"])
        lines.append(
            f"| {row['task']} | " + " | ".join(cells) + f" | {apart} of {row['test_images']} | {row['verdict']} |"
        )
    if report["parity"]:
        lines += ["", "## Accuracy parity (test accuracy %, mean ± std over seeds)", ""]
        lines.append("| task | " + " | ".join(backends) + " | spread (points) | verdict |")
        lines.append("| --- |" + " --- |" * (len(backends) + 2))
    for row in report["parity"]:
        cells = [_mean_std(row["backends"].get(b)) for b in backends]
        spread = "-" if row["spread"] is None else f"{100 * row['spread']:.2f}"
        lines.append(f"| {row['task']} | " + " | ".join(cells) + f" | {spread} | {row['verdict']} |")
    for row in report["parity"]:
        for backend, check in row.get("against_reference", {}).items():
            lines.append(f"- {row['task']}, {backend}: {check['verdict']}: {check['reason']}")
    if report["transfer"]:
        lines += [
            "",
            f"## Transfer value (test accuracy %, on {plan['reference']}; fine-tuned over every backend in brackets)",
            "",
            "| task | fine-tuned | linear probe | from scratch, same training time | gain (points) | verdict "
            "| from scratch, same epochs | gain (points) | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    for row in report["transfer"]:
        everyone = row["fine_tuned_all"]
        brackets = f" [{100 * everyone['mean']:.2f}]" if everyone else ""
        timed_epochs = ", ".join(map(str, row["scratch_same_time_epochs"])) or "-"
        lines.append(
            f"| {row['task']} | {_mean_std(row['fine_tuned'])}{brackets} | {_mean_std(row['linear_probe'])} | "
            f"{_mean_std(row['scratch_same_time'])} ({timed_epochs} epochs) | {_pct(row.get('gain_same_time'))} | "
            f"{row['verdict_same_time']} | {_mean_std(row['scratch'])} ({row['epochs']} epochs) | "
            f"{_pct(row.get('gain_same_epochs'))} | {row['verdict_same_epochs']} |"
        )
    lines += [
        "",
        "## Speed and memory",
        "",
        "| backend | fine-tuning img/s | frozen phase img/s (cached) | cached vs naive frozen phase | "
        "accuracy cached / naive | tlcore vs hand loop img/s | overhead ratio | peak host memory |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["speed"]:
        cache, overhead = row.get("cache"), row.get("overhead")
        cache_cell = (
            f"{cache['cached_seconds']:.1f} s vs {cache['naive_seconds']:.1f} s ({cache['speedup']:.1f}x)"
            if cache
            else "-"
        )
        accuracy_cell = f"{_pct(cache['cached_accuracy'])} / {_pct(cache['naive_accuracy'])}" if cache else "-"
        rates = (
            f"{overhead['tlcore_median']:.0f} vs {overhead['hand_median']:.0f} ({overhead['hand_loop']})"
            if overhead
            else "-"
        )
        ratio = f"{overhead['ratio']:.3f}" if overhead else "-"
        memory = f"{row['peak_rss_bytes'] / 2**30:.2f} GiB"
        if row.get("peak_device_bytes"):
            memory += f" (+{row['peak_device_bytes'] / 2**30:.2f} GiB device)"
        lines.append(
            f"| {row['backend']} ({row['device']}) | {_number(row['fine_tune_images_per_second'])} | "
            f"{_number(row['frozen_phase_images_per_second'])} | {cache_cell} | {accuracy_cell} | {rates} | "
            f"{ratio} | {memory} |"
        )
    lines += ["", "## Checks", ""]
    lines += [f"- {name}: {check_line(check)}" for name, check in report["checks"].items()]
    lines += [
        "",
        f"Jobs finished: {report['jobs_finished']}.",
        "",
        "Fine-tuning img/s: the fine-tuning phase's training throughput, data preparation included, the first "
        "(compiling) epoch left out when there are more. Frozen phase img/s: training images x "
        "epochs / the phase's time, feature extraction included. Cached vs naive: the frozen phase with the "
        "backbone's features computed once, against recomputing them every epoch. Overhead ratio: tlcore's "
        "training step throughput over the hand-written loop's, same model, batches, batch size and float32 "
        "(1.0 = no overhead): the median of per-pair ratios of single epochs run back to back, with an "
        "order-statistics interval. Peak host memory: the largest resident set of the backend's process.",
        "",
    ]
    return "\n".join(lines)


def write_report(folder: Path) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the plots into ``folder``; return the report."""
    report = build_report(folder)
    report["plots"] = {
        "accuracy": plot_accuracy(report, folder / "accuracy.png"),
        "curves": plot_curves(report["plan"], load_results(folder), folder / "curves.png"),
        "throughput": plot_throughput(report, folder / "throughput.png"),
    }
    report["plots"] = {k: str(v) if v else None for k, v in report["plots"].items()}
    write_json(folder / "report.json", report)
    write_with(folder / "report.md", lambda temporary: temporary.write_text(render_markdown(report)))
    return report
