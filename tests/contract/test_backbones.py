"""Every portable backbone builds through the backend and gives features of the declared shape.

The framework-specific backbones (torchvision's and keras.applications' other
models) are built and checked the same way (features of the declared
channels, unique layer names, declared groups) per framework:
``tests/torch/test_backbones.py`` and, on every Keras backend,
``tests/keras/test_backbones.py``. Building them again here took 4.4 minutes
of one keras-jax run (with another job on the CPU).
"""

from __future__ import annotations

import numpy as np
import pytest

import tlcore

from .conftest import PORTABLE_BACKBONES


@pytest.mark.parametrize("backbone", PORTABLE_BACKBONES)
def test_backbone_builds_with_declared_feature_shape(backend: tlcore.Backend, backbone: str) -> None:
    registry = tlcore.load_plugins()
    if backbone not in registry.backbones_on(backend.name):
        pytest.skip(f"{backbone} is not provided on {backend.name}")
    spec = registry.backbone(backbone, backend.name)
    side = max(32, spec.input.min_size)
    model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=4), weights=None, seed=0, image_size=(side, side))
    images = np.random.default_rng(0).normal(size=(2, side, side, spec.input.channels)).astype(np.float32)
    features = model.features(images)
    assert features.ndim == 4 and features.shape[0] == 2
    assert features.shape[-1] == spec.feature_channels
    assert model.predict(images).shape == (2, 4)
    layers = model.layers()
    assert len({layer.name for layer in layers}) == len(layers), "layer names must be unique"
    assert {layer.group for layer in layers} == set(spec.groups), "every group is used, and only declared groups"


def test_predict_rejects_images_of_wrong_rank_or_channels(backend: tlcore.Backend) -> None:
    spec = tlcore.load_plugins().backbone("efficientnet_lite0", backend.name)
    model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=2), weights=None, seed=0, image_size=(32, 32))
    with pytest.raises(tlcore.DataError, match=r"images must have shape \(N, H, W, 3\); got shape \(32, 32, 3\)"):
        model.predict(np.zeros((32, 32, 3), dtype=np.float32))
    with pytest.raises(tlcore.DataError, match=r"\(N, H, W, 3\); got shape \(1, 32, 32, 1\)"):
        model.predict(np.zeros((1, 32, 32, 1), dtype=np.float32))
