"""What every backend's model shares, written once in ``tlcore.Model``: batching, the saved state, its strict check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tlcore
from tlcore._checkpoint import read_checkpoint

from .conftest import Tiny, build


def test_predict_and_features_do_not_depend_on_the_batch_size(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    images, _ = tiny.validation.all_prepared()
    images = images[:7]
    logits = model.predict(images, batch_size=64)
    features = model.features(images, batch_size=64)
    assert logits.shape == (7, 3) and features.shape[0] == 7 and features.shape[-1] == tiny.spec.feature_channels
    np.testing.assert_allclose(model.predict(images, batch_size=3), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.features(images, batch_size=2), features, rtol=1e-5, atol=1e-5)
    with pytest.raises(tlcore.ConfigError, match="batch_size must be a whole number >= 1; got 0"):
        model.predict(images, batch_size=0)
    with pytest.raises(tlcore.DataError, match=r"images must have shape \(N, H, W, 3\)"):
        model.features(images[..., :1])


def test_save_writes_the_models_state(backend: tlcore.Backend, tiny: Tiny, tmp_path: Path) -> None:
    model = build(backend, tiny)
    state = model.state()
    assert {key for key in state if not key.startswith("backbone.")} == {"head.out.weight", "head.out.bias"}
    assert {key.removeprefix("backbone.") for key in state if key.startswith("backbone.")} == set(
        model.backbone_state()
    )
    metadata, saved = read_checkpoint(model.save(tmp_path / "model.safetensors"))
    assert sorted(saved) == sorted(state) and metadata["backend"] == backend.name
    for key, value in state.items():
        np.testing.assert_array_equal(saved[key], value, err_msg=key)


def test_load_state_names_every_mismatch_and_changes_nothing(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    state = model.state()
    before = model.head_state()
    conv = next(key for key, value in state.items() if key.startswith("backbone.") and value.ndim == 4)
    broken = {key: np.ones_like(value) for key, value in state.items() if key != "head.out.bias"}
    broken[conv] = np.zeros((1, 2, 3), dtype=np.float32)
    broken["head.extra.weight"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(tlcore.CheckpointError) as caught:
        model.load_state(broken)
    message = str(caught.value)
    assert "1 missing tensors ('head.out.bias')" in message
    assert "1 unexpected tensors ('head.extra.weight')" in message
    assert f"1 shape mismatches ({conv!r} is " in message and "but (1, 2, 3) given" in message
    for key, value in model.head_state().items():
        np.testing.assert_array_equal(value, before[key], err_msg="nothing is assigned from a state that does not fit")
    model.load_state({key: value for key, value in state.items() if not key.endswith("num_batches_tracked")})
