"""Recipes: TOML validated into typed objects, with errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tlcore

ROOT = Path(__file__).resolve().parents[2]


def minimal(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "backbone": {"name": "efficientnet_lite0"},
        "data": {"dataset": "digits"},
        "phases": [{"freeze": "frozen", "epochs": 2}],
    }
    document.update(overrides)
    return document


def test_quickstart_recipe_parses() -> None:
    recipe = tlcore.load_recipe(ROOT / "recipes" / "quickstart.toml")
    assert recipe.name == "quickstart"
    assert recipe.backbone.name == "efficientnet_lite0"
    assert recipe.data.labels_per_class == 100
    assert recipe.data.augmentation.shift == 4
    assert [p.name for p in recipe.phases] == ["head", "fine-tune"]
    assert isinstance(recipe.phases[0].freeze, tlcore.Frozen)
    assert isinstance(recipe.phases[1].freeze, tlcore.FineTuneAt)
    assert recipe.phases[1].early_stopping is not None and recipe.phases[1].early_stopping.patience == 4


def test_defaults() -> None:
    recipe = tlcore.parse_recipe(minimal())
    assert recipe.seed == 0 and recipe.backend == "torch"
    assert recipe.backbone.weights == "imagenet"
    assert recipe.phases[0].optimizer == "adam" and recipe.phases[0].adam_epsilon == 1e-7
    assert tlcore.parse_recipe(minimal(backbone={"name": "x", "weights": "none"})).backbone.weights is None


def test_unknown_key_is_named_with_suggestion() -> None:
    document = minimal(phases=[{"freeze": "frozen", "optimzer": "adam"}])
    with pytest.raises(tlcore.RecipeError, match=r"'phases\[0\]\.optimzer' is not known\. Did you mean 'optimizer'\?"):
        tlcore.parse_recipe(document)
    with pytest.raises(tlcore.RecipeError, match=r"recipe key 'sede' is not known\. Did you mean 'seed'\?"):
        tlcore.parse_recipe(minimal(sede=1))


def test_wrong_type_names_key_value_and_expected_type() -> None:
    with pytest.raises(tlcore.RecipeError, match=r"'phases\[0\]\.epochs' must be an integer; got 'five' \(str\)"):
        tlcore.parse_recipe(minimal(phases=[{"epochs": "five"}]))
    with pytest.raises(tlcore.RecipeError, match=r"'data\.batch_size' must be an integer; got True \(bool\)"):
        tlcore.parse_recipe(minimal(data={"dataset": "digits", "batch_size": True}))
    with pytest.raises(tlcore.RecipeError, match=r"'seed' must be an integer; got 1\.5"):
        tlcore.parse_recipe(minimal(seed=1.5))


def test_bad_values() -> None:
    with pytest.raises(tlcore.RecipeError, match=r"optimizer must be one of adam, adamw, sgd; got 'adagrad'"):
        tlcore.parse_recipe(minimal(phases=[{"optimizer": "adagrad"}]))
    with pytest.raises(tlcore.RecipeError, match=r"'data\.test_fraction' must be between 0 and 1; got 1\.5"):
        tlcore.parse_recipe(minimal(data={"dataset": "digits", "test_fraction": 1.5}))
    with pytest.raises(tlcore.RecipeError, match=r"'phases' must list at least one phase"):
        tlcore.parse_recipe(minimal(phases=[]))
    with pytest.raises(tlcore.RecipeError, match=r"'backbone\.name' is required"):
        tlcore.parse_recipe(minimal(backbone={}))


def test_freeze_policy_by_name_and_table() -> None:
    recipe = tlcore.parse_recipe(
        minimal(
            phases=[
                {"freeze": {"policy": "fine_tune_at", "at": 100}},
                {"freeze": {"policy": "gradual", "every": 2}},
                {"freeze": {"policy": "groups", "groups": ["top"], "train_bn": True}},
            ]
        )
    )
    kinds = [type(p.freeze) for p in recipe.phases]
    assert kinds == [tlcore.FineTuneAt, tlcore.GradualUnfreezing, tlcore.TrainGroups]
    assert recipe.phases[2].freeze.train_bn is True


def test_unknown_freeze_policy_and_bad_options() -> None:
    with pytest.raises(
        tlcore.RecipeError, match=r"phases\[0\]\.freeze.*no freeze policy 'frozn'.*Did you mean 'frozen'"
    ):
        tlcore.parse_recipe(minimal(phases=[{"freeze": "frozn"}]))
    with pytest.raises(tlcore.RecipeError, match=r"bad options \['depth'\] for policy 'last_n'"):
        tlcore.parse_recipe(minimal(phases=[{"freeze": {"policy": "last_n", "depth": 3}}]))


def test_recipe_file_errors(tmp_path: Path) -> None:
    with pytest.raises(tlcore.RecipeError, match="does not exist"):
        tlcore.load_recipe(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1\n")
    with pytest.raises(tlcore.RecipeError, match="is not valid TOML"):
        tlcore.load_recipe(bad)


def test_test_per_class_and_bn_momentum_keys() -> None:
    recipe = tlcore.parse_recipe(
        minimal(
            backbone={"name": "x", "bn_momentum": 0.1},
            data={"dataset": "digits", "test_per_class": 50},
        )
    )
    assert recipe.backbone.bn_momentum == 0.1 and recipe.data.test_per_class == 50
    assert tlcore.parse_recipe(minimal()).backbone.bn_momentum is None
    with pytest.raises(tlcore.RecipeError, match=r"'backbone\.bn_momentum' must be in \(0, 1\]; got 1\.5"):
        tlcore.parse_recipe(minimal(backbone={"name": "x", "bn_momentum": 1.5}))
    with pytest.raises(tlcore.RecipeError, match=r"'data\.test_per_class' must be at least 1; got 0"):
        tlcore.parse_recipe(minimal(data={"dataset": "digits", "test_per_class": 0}))


def test_input_pipeline_keys() -> None:
    data = tlcore.parse_recipe(minimal()).data
    assert (data.workers, data.cache, data.crop_pct, data.augmentation.random_resized_crop) == (
        None,
        "auto",
        None,
        None,
    )
    photos = tlcore.load_recipe(ROOT / "recipes" / "photos.toml").data
    assert photos.dataset == "image-folder" and photos.image_size == 224
    assert photos.augmentation.random_resized_crop == ((0.08, 1.0), (3 / 4, 4 / 3)) and photos.augmentation.flip
    table = {"dataset": "x", "workers": 0, "cache": False, "crop_pct": 1, "augmentation": {}}
    table["augmentation"] = {"random_resized_crop": {"scale": [0.5, 1.0], "ratio": [1, 2]}}
    data = tlcore.parse_recipe(minimal(data=table)).data
    assert (data.workers, data.cache, data.crop_pct) == (0, False, 1.0)
    assert data.augmentation.random_resized_crop == ((0.5, 1.0), (1.0, 2.0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workers": -1}, r"'data.workers' must be >= 0"),
        ({"cache": "always"}, r"'data.cache' must be true, false or \"auto\""),
        ({"crop_pct": 0}, r"'data.crop_pct' must be in \(0, 1\]"),
        ({"augmentation": {"random_resized_crop": {"scale": [0.5, 2]}}}, r"random_resized_crop.scale' must be \[min"),
        ({"augmentation": {"random_resized_crop": {"size": 3}}}, r"random_resized_crop.size' is not known"),
    ],
)
def test_bad_input_pipeline_keys(data: dict[str, Any], message: str) -> None:
    with pytest.raises(tlcore.RecipeError, match=message):
        tlcore.parse_recipe(minimal(data={"dataset": "digits", **data}))
