"""``weights="none"``, in any case, means random initialisation wherever weights are resolved."""

from __future__ import annotations

import pytest

from tlcore import WeightsError
from tlcore.extend import choose_weights
from tlcore.plugins import load_plugins
from tlcore.weights import WEIGHT_FILE_SUFFIXES, resolve_weights, wants_random_init


@pytest.mark.parametrize("weights", [None, "none", "None", "NONE", " none "])
def test_none_in_any_case_is_random_initialisation(weights: str | None) -> None:
    spec = load_plugins().backbone("efficientnet_lite0")
    assert wants_random_init(weights)
    assert resolve_weights(spec, weights, suffixes=WEIGHT_FILE_SUFFIXES) == ("none", None)
    assert choose_weights(spec, weights, suffixes=WEIGHT_FILE_SUFFIXES).random_init


@pytest.mark.parametrize("weights", ["imagenet", "nothing", "none.pth"])
def test_other_names_are_not_random_initialisation(weights: str) -> None:
    assert not wants_random_init(weights)


def test_unknown_weights_list_none_the_registered_names_and_a_file() -> None:
    spec = load_plugins().backbone("efficientnet_lite0")
    with pytest.raises(WeightsError) as caught:
        resolve_weights(spec, "imagenett", suffixes=(".pth", ".safetensors"))
    assert str(caught.value) == (
        "unknown weights 'imagenett' for 'efficientnet_lite0'. Did you mean 'imagenet'? "
        "Pass weights=None or \"none\" (random initialisation), a registered name ('imagenet'), "
        "or the path of an existing .pth/.safetensors file or neutral checkpoint (.json)."
    )
