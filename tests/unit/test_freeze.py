"""Freeze policies decide from names and groups alone."""

from __future__ import annotations

import pytest

import tlcore
from tlcore import LayerInfo


@pytest.fixture
def layers() -> list[LayerInfo]:
    groups = ["stem", "stem", "stage1", "stage1", "stage1", "stage2", "stage2", "top", "top"]
    kinds = ["conv", "batchnorm", "conv", "batchnorm", "conv", "conv", "batchnorm", "conv", "batchnorm"]
    return [LayerInfo(f"l{i}_{k}", g, k) for i, (g, k) in enumerate(zip(groups, kinds, strict=True))]


def names(layers: list[LayerInfo], indices: range | list[int]) -> set[str]:
    return {layers[i].name for i in indices}


def test_frozen_and_unfrozen(layers: list[LayerInfo]) -> None:
    assert tlcore.Frozen().plan(layers).trainable == frozenset()
    assert tlcore.Frozen().plan(layers).backbone_frozen
    assert tlcore.Unfrozen().plan(layers).trainable == names(layers, range(9))


def test_fine_tune_at_index_name_and_group(layers: list[LayerInfo]) -> None:
    assert tlcore.FineTuneAt(5).trainable_layers(layers) == names(layers, range(5, 9))
    assert tlcore.FineTuneAt("l3_batchnorm").trainable_layers(layers) == names(layers, range(3, 9))
    assert tlcore.FineTuneAt("stage2").trainable_layers(layers) == names(layers, range(5, 9))
    assert tlcore.FineTuneAt(-2).trainable_layers(layers) == names(layers, [7, 8])


def test_fine_tune_at_bad_name_suggests(layers: list[LayerInfo]) -> None:
    with pytest.raises(tlcore.ConfigError, match=r"'stage3' names no layer or group.*Did you mean 'stage2'\?"):
        tlcore.FineTuneAt("stage3").trainable_layers(layers)
    with pytest.raises(tlcore.ConfigError, match="out of range: this backbone has 9 layers"):
        tlcore.FineTuneAt(42).trainable_layers(layers)


def test_last_n_regex_groups(layers: list[LayerInfo]) -> None:
    assert tlcore.LastN(3).trainable_layers(layers) == names(layers, range(6, 9))
    assert tlcore.LastN(0).trainable_layers(layers) == set()
    assert tlcore.LastN(100).trainable_layers(layers) == names(layers, range(9))
    assert tlcore.RegexPolicy(r"_batchnorm$").trainable_layers(layers) == names(layers, [1, 3, 6, 8])
    assert tlcore.TrainGroups(["stage1", "top"]).trainable_layers(layers) == names(layers, [2, 3, 4, 7, 8])
    with pytest.raises(tlcore.ConfigError, match="group 'stage9' is not a group of this backbone"):
        tlcore.TrainGroups(["stage9"]).trainable_layers(layers)
    with pytest.raises(tlcore.ConfigError, match="not a valid regular expression"):
        tlcore.RegexPolicy("(")


def test_gradual_unfreezing_one_group_per_epoch(layers: list[LayerInfo]) -> None:
    policy = tlcore.GradualUnfreezing(every=1, start=1)
    assert policy.varies_by_epoch
    assert policy.trainable_layers(layers, 0) == names(layers, [7, 8])
    assert policy.trainable_layers(layers, 1) == names(layers, [5, 6, 7, 8])
    assert policy.trainable_layers(layers, 2) == names(layers, range(2, 9))
    assert policy.trainable_layers(layers, 9) == names(layers, range(9))
    slow = tlcore.GradualUnfreezing(every=2, start=0)
    assert slow.trainable_layers(layers, 0) == set()
    assert slow.trainable_layers(layers, 1) == set()
    assert slow.trainable_layers(layers, 2) == names(layers, [7, 8])


def test_gradual_unfreezing_on_a_schedule(layers: list[LayerInfo]) -> None:
    policy = tlcore.GradualUnfreezing(schedule={1: "top", 3: "stage1"})
    assert policy.trainable_layers(layers, 0) == set()
    assert policy.trainable_layers(layers, 2) == names(layers, [7, 8])
    assert policy.trainable_layers(layers, 3) == names(layers, range(2, 9))


def test_batchnorm_mode_is_explicit(layers: list[LayerInfo]) -> None:
    default = tlcore.Unfrozen().plan(layers)
    assert default.bn_training == frozenset()
    training = tlcore.FineTuneAt("stage2", train_bn=True).plan(layers)
    assert training.bn_training == names(layers, [6, 8])  # only unfrozen BatchNorms train statistics


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: tlcore.LastN(-1), "'n' must be a non-negative integer"),
        (lambda: tlcore.FineTuneAt(1.5), "'at' must be an integer index or a name"),  # type: ignore[arg-type]
        (lambda: tlcore.GradualUnfreezing(every=0), "'every' must be a positive integer"),
        (lambda: tlcore.Frozen(train_bn="yes"), "train_bn must be true or false"),  # type: ignore[arg-type]
    ],
)
def test_bad_policy_arguments(factory: object, message: str) -> None:
    with pytest.raises(tlcore.ConfigError, match=message):
        factory()  # type: ignore[operator]
