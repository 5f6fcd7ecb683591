"""Per-group learning rates: the factors the core computes, and the recipe option that asks for them."""

from __future__ import annotations

import pytest

import tlcore
from tlcore._recipe import parse_recipe
from tlcore.training import learning_rate_scales

GROUPS = ("stem", "stage1", "stage2", "top")
LAYERS = [tlcore.LayerInfo(name=f"{group}_conv", group=group, kind="conv", num_params=10) for group in GROUPS]


def test_backbone_multiplier_scales_every_backbone_layer_and_a_group_overrides_it() -> None:
    scales = learning_rate_scales("p", {"backbone": 0.1, "top": 0.5, "head": 2.0}, 1.0, LAYERS, GROUPS)
    assert scales.head == 2.0
    assert scales.layers == {"stem_conv": 0.1, "stage1_conv": 0.1, "stage2_conv": 0.1, "top_conv": 0.5}
    assert not scales.uniform


def test_layer_decay_counts_groups_down_from_the_head() -> None:
    scales = learning_rate_scales("p", {}, 0.5, LAYERS, GROUPS)
    assert scales.head == 1.0
    assert scales.layers == {"top_conv": 0.5, "stage2_conv": 0.25, "stage1_conv": 0.125, "stem_conv": 0.0625}


def test_no_option_means_every_factor_is_one() -> None:
    assert learning_rate_scales("p", {}, 1.0, LAYERS, GROUPS).uniform


def test_unknown_group_is_named_with_a_suggestion() -> None:
    with pytest.raises(tlcore.ConfigError, match=r"'stage3'.*not a group of this backbone. Did you mean 'stage2'\?"):
        learning_rate_scales("p", {"stage3": 0.1}, 1.0, LAYERS, GROUPS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lr_multipliers": {"backbone": 0.0}}, r"lr_multipliers\['backbone'\] must be a positive number; got 0.0"),
        ({"lr_multipliers": {"backbone": "x"}}, r"must be a positive number; got 'x'"),
        ({"layer_lr_decay": 1.5}, r"layer_lr_decay must be in \(0, 1\]; got 1.5"),
        ({"layer_lr_decay": 0}, r"layer_lr_decay must be in \(0, 1\]; got 0"),
    ],
)
def test_phase_refuses_bad_factors(options: dict[str, object], message: str) -> None:
    with pytest.raises(tlcore.ConfigError, match=message):
        tlcore.Phase(**options)  # type: ignore[arg-type]


def test_recipe_passes_the_options_to_the_phase() -> None:
    document = {
        "backbone": {"name": "efficientnet_lite0"},
        "data": {"dataset": "digits"},
        "phases": [{"freeze": "unfrozen", "lr_multipliers": {"backbone": 0.1}, "layer_lr_decay": 0.8}],
    }
    phase = parse_recipe(document).phases[0]
    assert dict(phase.lr_multipliers) == {"backbone": 0.1} and phase.layer_lr_decay == 0.8
    document["phases"] = [{"layer_lr_decay": 2.0}]
    with pytest.raises(tlcore.RecipeError, match=r"recipe key 'phases\[0\]'.*layer_lr_decay must be in \(0, 1\]"):
        parse_recipe(document)
