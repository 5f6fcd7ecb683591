"""`tlcore layers` prints the layer table a freeze policy acts on; `tlcore run --dry-run` checks a recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tlcore import ConfigError, FineTuneAt, Frozen, GradualUnfreezing, LastN, TrainGroups
from tlcore._cli import main
from tlcore._layers import freeze_from_text, recipe_phase_policies

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.requires("torch")


def _table(capsys: pytest.CaptureFixture[str], *arguments: str) -> dict:
    assert main(["layers", "efficientnet_lite0", "--backend", "torch", "--image-size", "32", *arguments, "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert len(tables) == 1
    return tables[0]


def test_the_table_shows_the_index_the_policy_counts_and_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(capsys, "--freeze", "fine_tune_at=stage6")
    rows = table["layers"]
    assert [row["index"] for row in rows] == list(range(98))
    start = next(row["index"] for row in rows if row["group"] == "stage6")
    assert [row["trainable"] for row in rows] == [index >= start for index in range(98)]
    assert table["trainable_parameters"] == sum(row["parameters"] for row in rows[start:])
    assert table["frozen_parameters"] == sum(row["parameters"] for row in rows[:start])
    assert table["head_parameters"] == 1280 * 2 + 2
    assert {row["bn_mode"] for row in rows if row["kind"] == "batchnorm"} == {"inference"}
    assert {row["bn_mode"] for row in rows if row["kind"] != "batchnorm"} == {""}
    assert rows[0]["layer_type"].startswith("Conv2d")  # the module's class name
    assert "neutral list of the layers with weights, the same on every backend" in table["indexing"]


def test_an_index_counts_the_same_layers_as_fine_tune_at(capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(capsys, "--freeze", "fine_tune_at=80")
    assert [row["index"] for row in table["layers"] if row["trainable"]] == list(range(80, 98))


def test_train_bn_shows_as_training_batchnorm(capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(capsys, "--freeze", '{ policy = "fine_tune_at", at = "top", train_bn = true }')
    modes = {row["name"]: row["bn_mode"] for row in table["layers"] if row["kind"] == "batchnorm"}
    assert modes["top_bn"] == "train" and modes["stem_bn"] == "inference"


def test_the_text_table_names_the_policy_and_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "efficientnet_lite0", "--image-size", "32", "--freeze", "last_n=2"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0 on torch, freeze policy last_n=2" in out
    assert "Layer indices: indices count tlcore's neutral list" in out
    assert "   97  top_bn" in out and "trainable parameters" in out


def test_freeze_text_forms() -> None:
    assert isinstance(freeze_from_text("frozen"), Frozen)
    at = freeze_from_text("fine_tune_at=100")
    assert isinstance(at, FineTuneAt) and at.at == 100
    assert freeze_from_text("fine_tune_at=stage6").at == "stage6"  # type: ignore[attr-defined]
    assert isinstance(freeze_from_text("last_n=20"), LastN)
    groups = freeze_from_text("groups=stage7, top")
    assert isinstance(groups, TrainGroups) and groups.groups == ("stage7", "top")
    gradual = freeze_from_text('{ policy = "gradual", every = 2 }')
    assert isinstance(gradual, GradualUnfreezing) and gradual.every == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frozen=3", "policy 'frozen' takes no NAME=VALUE form; use one of fine_tune_at=..., last_n=..."),
        ("lastn=3", "policy 'lastn' takes no NAME=VALUE form"),
        ("frozn", "frozn"),
        ("{ policy = ", "is not a valid TOML inline table"),
    ],
)
def test_bad_freeze_text_is_explained(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        freeze_from_text(text)
    assert message in str(caught.value)


def test_an_out_of_range_index_names_the_range(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["layers", "efficientnet_lite0", "--image-size", "32", "--freeze", "fine_tune_at=100"])
    assert code == 2
    assert "fine_tune_at=100 is out of range: this backbone has 98 layers" in capsys.readouterr().err


def test_a_recipe_phase_gives_its_policy() -> None:
    recipe = str(ROOT / "recipes" / "quickstart.toml")
    phases = recipe_phase_policies(recipe)
    assert phases is not None and [type(policy) for _, policy in phases] == [Frozen, FineTuneAt]
    second = recipe_phase_policies(f"{recipe}:2")
    assert second is not None and second[0][1].at == "stage5"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"the recipe has no phase '9'; give a number 1\.\.2 or a name"):
        recipe_phase_policies(f"{recipe}:9")
    assert recipe_phase_policies("fine_tune_at=3") is None


@pytest.mark.requires("mlxtend")
def test_dry_run_checks_the_recipe_and_prints_each_phase(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative runs/ or cache folder would appear here
    monkeypatch.setenv("TLCORE_CACHE", str(tmp_path / "cache"))
    recipe = ROOT / "recipes" / "quickstart-head.toml"
    assert main(["run", str(recipe), "--backend", "torch", "--weights", "none", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "== phase 1/" in out and "freeze policy frozen" in out
    assert "backbone: 0 trainable parameters" in out
    assert "recipe checked: data, weights, model and every phase; nothing trained or written." in out
    assert not list(tmp_path.iterdir())


@pytest.mark.requires("mlxtend")
def test_dry_run_refuses_a_phase_that_does_not_fit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = (ROOT / "recipes" / "quickstart.toml").read_text().replace('at = "stage5"', 'at = "stage9"')
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    assert main(["run", str(recipe), "--backend", "torch", "--weights", "none", "--dry-run"]) == 2
    assert "phases[1].freeze" in capsys.readouterr().err


def test_run_without_out_says_what_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(ROOT / "recipes" / "quickstart.toml")]) == 2
    assert "tlcore run needs --out DIR" in capsys.readouterr().err
