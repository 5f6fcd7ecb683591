"""The benchmark's plots (matplotlib, off-screen): accuracy with error bars, overlaid curves, throughput."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlcore.io import write_with

__all__ = ["plot_accuracy", "plot_curves", "plot_throughput"]


def _draw(path: Path, draw: Callable[[Any], Any]) -> Path | None:
    """Run ``draw(pyplot)`` and save its figure to ``path``; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: no benchmark plots (pip install matplotlib)", stacklevel=3)
        return None
    figure = draw(plt)
    try:
        figure.tight_layout()
        return write_with(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    finally:
        plt.close(figure)


def plot_accuracy(report: dict[str, Any], path: Path) -> Path | None:
    """Test accuracy per task and backend, mean with a standard-deviation error bar; probe and scratch beside."""
    rows, transfer = report["parity"], {row["task"]: row for row in report["transfer"]}
    backends = report["plan"]["backends"]

    def draw(plt: Any) -> Any:
        figure, axes = plt.subplots(1, max(1, len(rows)), figsize=(4.5 * max(1, len(rows)), 4), squeeze=False)
        for axis, row in zip(axes[0], rows, strict=False):
            labels, means, stds = [], [], []
            for backend in backends:
                if (stats := row["backends"].get(backend)) is not None:
                    labels.append(backend)
                    means.append(100 * stats["mean"])
                    stds.append(100 * stats["std"])
            extra = transfer.get(row["task"], {})
            baselines = {
                "linear_probe": "linear probe",
                "scratch_same_time": "scratch, same time",
                "scratch": "scratch, same epochs",
            }
            for key, label in baselines.items():
                if extra.get(key):
                    labels.append(label)
                    means.append(100 * extra[key]["mean"])
                    stds.append(100 * extra[key]["std"])
            colors = ["C0"] * (len(labels) - sum(lbl in baselines.values() for lbl in labels))
            colors += ["C7"] * (len(labels) - len(colors))
            axis.bar(range(len(labels)), means, yerr=stds, capsize=4, color=colors)
            axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
            low = min(means) - 5 if means else 0
            axis.set_ylim(max(0, low), 100)
            axis.set(title=f"{row['task']} ({row['verdict']})", ylabel="test accuracy %")
            axis.grid(axis="y", alpha=0.3)
        return figure

    return _draw(path, draw)


def plot_curves(plan: dict[str, Any], results: dict[str, list[dict[str, Any]]], path: Path) -> Path | None:
    """Validation accuracy per epoch (both phases in a row) of every backend, first seed, one panel per task."""
    tasks = list(plan["parity_tasks"])

    def draw(plt: Any) -> Any:
        figure, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4.5 * max(1, len(tasks)), 4), squeeze=False)
        for axis, task in zip(axes[0], tasks, strict=False):
            for backend in plan["backends"]:
                runs = [r for r in results.get(backend, []) if r["kind"] == "parity" and r["task"] == task]
                if not runs:
                    continue
                run = min(runs, key=lambda r: r["seed"])
                values = [e["val_accuracy"] for p in run["phases"] for e in p["epochs"]]
                axis.plot(range(1, len(values) + 1), [100 * v for v in values], marker=".", label=backend)
            axis.set(title=task, xlabel="epoch (head, then fine-tuning)", ylabel="validation accuracy %")
            axis.grid(alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=8)
        return figure

    return _draw(path, draw)


def plot_throughput(report: dict[str, Any], path: Path) -> Path | None:
    """Training images per second per backend: tlcore's fine-tuning, the hand loop's, the cached frozen phase's."""
    rows = report["speed"]

    def draw(plt: Any) -> Any:
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        names = [row["backend"] for row in rows]
        series: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
            ("tlcore fine-tuning", lambda r: r.get("overhead", {}).get("tlcore_median")),
            ("hand-written loop", lambda r: r.get("overhead", {}).get("hand_median")),
            ("recipe fine-tune phase", lambda r: r.get("fine_tune_images_per_second")),
        ]
        width = 0.8 / len(series)
        for index, (label, get) in enumerate(series):
            values = [get(row) or 0 for row in rows]
            left.bar([i + index * width for i in range(len(rows))], values, width, label=label)
        left.set_xticks([i + width for i in range(len(rows))], names, rotation=20, fontsize=8)
        left.set(title="training step throughput", ylabel="images / s")
        left.legend(fontsize=8)
        cached = [row.get("cache", {}).get("cached_seconds", 0) for row in rows]
        naive = [row.get("cache", {}).get("naive_seconds", 0) for row in rows]
        right.bar([i - 0.2 for i in range(len(rows))], naive, 0.4, label="naive (backbone every epoch)")
        right.bar([i + 0.2 for i in range(len(rows))], cached, 0.4, label="cached features")
        right.set_xticks(range(len(rows)), names, rotation=20, fontsize=8)
        right.set(title="frozen-backbone phase", ylabel="seconds")
        right.legend(fontsize=8)
        for axis in (left, right):
            axis.grid(axis="y", alpha=0.3)
        return figure

    return _draw(path, draw)
