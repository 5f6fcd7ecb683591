"""The torch model's saved state, now assembled by ``tlcore.Model``, is torch's own ``state_dict`` key for key."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

import tlcore


@pytest.mark.parametrize("name", tlcore.load_plugins().backbones_on("torch"))
def test_state_is_the_nets_state_dict(name: str) -> None:
    backend = tlcore.get_backend("torch")
    spec = tlcore.load_plugins().backbone(name, "torch")
    size = (max(32, spec.input.min_size),) * 2
    model = backend.build_model(
        spec, tlcore.HeadSpec(num_outputs=3, hidden=(8,)), weights=None, seed=0, image_size=size
    )
    native = {key: value.detach().cpu().numpy() for key, value in model.native.state_dict().items()}
    state = model.state()
    assert list(state) == list(native)
    for key, value in native.items():
        assert state[key].dtype == value.dtype and np.array_equal(state[key], value), key
