"""Every freeze policy freezes exactly the layers it names, in every backend."""

from __future__ import annotations

import pytest

import tlcore

from .conftest import Tiny, build

POLICIES = {
    "frozen": lambda: tlcore.Frozen(),
    "unfrozen": lambda: tlcore.Unfrozen(),
    "fine_tune_at_index": lambda: tlcore.FineTuneAt(20),
    "fine_tune_at_group": lambda: tlcore.FineTuneAt("stage6"),
    "fine_tune_at_layer": lambda: tlcore.FineTuneAt("top_conv"),
    "last_n": lambda: tlcore.LastN(7),
    "regex": lambda: tlcore.RegexPolicy(r"_bn$"),
    "groups": lambda: tlcore.TrainGroups(["stem", "top"]),
    "gradual_epoch0": lambda: tlcore.GradualUnfreezing(start=2),
}


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
def test_policy_freezes_exactly_what_it_names(backend: tlcore.Backend, tiny: Tiny, policy_name: str) -> None:
    model = build(backend, tiny)
    policy = POLICIES[policy_name]()
    plan = policy.plan(model.layers())
    model.apply_freeze(plan)
    assert model.trainable_layers() == set(plan.trainable)


def test_refreezing_after_unfreezing(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    layers = model.layers()
    model.apply_freeze(tlcore.Unfrozen().plan(layers))
    model.apply_freeze(tlcore.Frozen().plan(layers))
    assert model.trainable_layers() == set()
