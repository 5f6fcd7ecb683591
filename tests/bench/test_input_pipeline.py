"""benchmarks/input_pipeline.py: the photos, measurements in child processes, and the table and plot, at tiny size."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "input_pipeline.py"
TINY = {"widths": (16, 24), "heights": (12, 18)}


def _script() -> ModuleType:
    if "input_pipeline" not in sys.modules:  # its dataclass needs it there
        spec = importlib.util.spec_from_file_location("input_pipeline", SCRIPT)
        assert spec is not None and spec.loader is not None
        sys.modules["input_pipeline"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["input_pipeline"]


def _tiny_run(tmp_path: Path, pipelines: str, rounds: int = 1) -> dict[str, Any]:
    arguments = ["--out", str(tmp_path / "out"), "--data", str(tmp_path / "photos"), "--images", "20"]
    arguments += ["--photo-scale", "0.04", "--size", "32", "--measure", "40", "--warmup", "1", "--workers", "1"]
    arguments += ["--rounds", str(rounds), "--retries", "0", "--quiet-wait", "0"]
    report: dict[str, Any] = _script().main([*arguments, "--pipelines", pipelines])
    assert json.loads((tmp_path / "out" / "input.json").read_text())["results"] == report["results"]
    assert "| 1 |" in (tmp_path / "out" / "input.md").read_text()
    return report


@pytest.mark.requires("PIL")
def test_photos_are_deterministic_jpegs_built_once(tmp_path: Path) -> None:
    script = _script()
    first = script.make_photos(tmp_path / "a", 6, seed=3, **TINY)
    files = sorted((tmp_path / "a").rglob("*.jpg"))
    assert [f.parent.name for f in files] == ["cat"] * 3 + ["dog"] * 3
    stamps = [f.stat().st_mtime_ns for f in files]
    assert script.make_photos(tmp_path / "a", 6, seed=3, **TINY) == first  # reused, not rewritten
    assert [f.stat().st_mtime_ns for f in files] == stamps
    script.make_photos(tmp_path / "b", 6, seed=3, **TINY)
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in sorted((tmp_path / "b").rglob("*.jpg"))]
    assert first["bytes"] == sum(f.stat().st_size for f in files)
    script.make_photos(tmp_path / "a", 4, seed=3, **TINY)  # another count: rebuilt
    assert len(list((tmp_path / "a").rglob("*.jpg"))) == 4


def test_rounds_combine_into_medians_and_the_largest_memory() -> None:
    script = _script()
    rounds = [
        {"pipeline": "cached", "workers": 2, "images_per_second": rate, "first_epoch_images_per_second": first}
        | {"peak_rss_bytes": memory, "seconds": 1.0, "other_busy_cores": 0.0}
        for rate, first, memory in ((100.0, 10.0, 5), (300.0, 30.0, 7), (200.0, 40.0, 6))
    ]
    failed = {"pipeline": "cached", "workers": 2, "error": "exit code 1: DataError"}
    combined = script.combine([*rounds, failed])
    assert combined["images_per_second"] == 200.0 and combined["first_epoch_images_per_second"] == 30.0
    assert combined["images_per_second_rounds"] == [100.0, 300.0, 200.0]
    assert combined["peak_rss_bytes"] == 7 and combined["rounds"] == 3 and combined["failed_rounds"] == 1
    assert script.combine([failed]) == failed


@pytest.mark.requires("matplotlib")
def test_table_and_plot_from_fake_figures(tmp_path: Path) -> None:
    script = _script()

    def record(pipeline: str, workers: int, rate: float, **extra: Any) -> dict[str, Any]:
        return {"pipeline": pipeline, "workers": workers, "images_per_second": rate, "peak_rss_bytes": 2**27} | extra

    report = {
        "settings": {"size": 224, "batch_size": 32, "measure": 1024, "warmup_batches": 4},
        "photos": {"images": 3000, "median_kib": 80.0},
        "machine": {"cpu_count": 2},
        "workers": [1, 2],
        "results": [
            record("tlcore", 1, 300.0),
            record("torch", 1, 150.0, children_peak_rss_bytes=2**28),
            record("tf", 1, 200.0, children_peak_rss_bytes=2**28),  # tf forks while it loads: not counted
            record("cached", 1, 900.0, first_epoch_images_per_second=120.0),
            record("tlcore", 2, 500.0),
            {"pipeline": "torch", "workers": 2, "error": "exit code -11: Segmentation fault"},
            record("tf", 2, 350.0),
            record("cached", 2, 1500.0, first_epoch_images_per_second=240.0),
        ],
    }
    table = script.render_markdown(report).splitlines()
    rows = [line for line in table if line.startswith("| ")]
    assert rows[0].count("|") == 13  # workers, 5 rates, 2 ratios, 4 memory columns
    assert rows[1] == "| 1 | 300 | 150 | 200 | 120 | 900 | 2.00x | 6.00x | 128 | 128 + 1x256 | 128 | 128 |"
    assert rows[2].startswith("| 2 | 500 | failed | 350 | 240 | 1500 | — | — | 128 | — |")
    assert table[-1] == "- torch, 2 workers: exit code -11: Segmentation fault"
    assert script.plot(report, tmp_path / "input.png").stat().st_size > 0


@pytest.mark.requires("PIL")
def test_tlcore_and_its_cache_measured_in_child_processes(tmp_path: Path) -> None:
    report = _tiny_run(tmp_path, "tlcore,cached", rounds=2)
    tlcore, cached = report["results"]
    assert "error" not in tlcore and "error" not in cached, report["results"]
    assert len(tlcore["images_per_second_rounds"]) == len(cached["first_epoch_images_per_second_rounds"]) == 2
    assert tlcore["images"] >= 40 and tlcore["images_per_second"] > 0 and tlcore["peak_rss_bytes"] > 0
    assert cached["first_epoch_images"] == 20 and cached["first_epoch_images_per_second"] > 0
    assert cached["cache_bytes"] > 0 and cached["images_per_second"] > 0
    assert not (tmp_path / "out" / "cache" / "w1").exists()  # each run builds a fresh cache and removes it


# Found, not imported: torchvision segfaults in a process that imported TensorFlow first (the child imports it).
@pytest.mark.requires("torch", "torchvision", "PIL")
def test_torch_dataloader_measured_in_a_child_process(tmp_path: Path) -> None:
    (torch,) = _tiny_run(tmp_path, "torch")["results"]
    assert "error" not in torch, torch
    assert torch["images"] >= 40 and torch["images_per_second"] > 0
    assert torch["peak_rss_bytes"] > 0 and torch["children_peak_rss_bytes"] > 0
