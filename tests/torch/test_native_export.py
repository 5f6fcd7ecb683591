"""The torch model's ``native`` module works with torch's own tools: torch.export and torch.jit.trace.

``model.native`` takes NCHW float32 images (``Model.predict`` takes NHWC and
permutes them); both exported programs must give its outputs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tlcore

pytestmark = pytest.mark.requires("torch", "torchvision")

SIZE = 32


@pytest.fixture(params=["resnet18", "efficientnet_lite0"])
def model(request: pytest.FixtureRequest) -> tlcore.Model:
    backend = tlcore.get_backend("torch")
    spec = tlcore.load_plugins().backbone(request.param, "torch")
    head = tlcore.HeadSpec(num_outputs=3, hidden=(8,))
    built = backend.build_model(spec, head, weights=None, seed=0, image_size=(SIZE, SIZE))
    # A freeze plan with BatchNorm kept in inference mode: the state export and tracing must cope with.
    built.apply_freeze(tlcore.FreezePlan(trainable=frozenset(), bn_training=frozenset()))
    return built


def _images() -> np.ndarray:
    return np.random.default_rng(2).standard_normal((3, SIZE, SIZE, 3)).astype(np.float32)


def test_torch_export_of_the_native_module(model: tlcore.Model) -> None:
    import torch

    net = model.native.eval()
    images = torch.from_numpy(_images()).permute(0, 3, 1, 2)
    program = torch.export.export(net, (images,), dynamic_shapes={"images": {0: torch.export.Dim("batch")}})
    with torch.no_grad():
        got = program.module()(images[:2]).numpy()
    np.testing.assert_allclose(got, model.predict(_images()[:2]), rtol=0, atol=1e-5)


def test_jit_trace_of_the_native_module(model: tlcore.Model) -> None:
    import torch

    net = model.native.eval()
    images = torch.from_numpy(_images()).permute(0, 3, 1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # padding sizes fixed for this image size
        traced = torch.jit.trace(net, (images,))
    with torch.no_grad():
        got = traced(images).numpy()
    np.testing.assert_allclose(got, model.predict(_images()), rtol=0, atol=1e-5)
