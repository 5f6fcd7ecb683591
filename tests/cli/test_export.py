"""``tlcore export``: a saved model (Model.save, ``tlcore run``'s OUT/model.safetensors, a neutral export) to ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tlcore
from tlcore._cli import main

pytestmark = pytest.mark.requires("torch", "torchvision", "onnx", "onnxruntime", "onnxscript")

SIZE = (32, 32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A resnet18 saved by the torch backend in a run-like folder, with images and their predictions."""
    backend = tlcore.get_backend("torch")
    spec = tlcore.load_plugins().backbone("resnet18", "torch")
    model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=3, output_activation="softmax"), weights=None,
                                seed=0, image_size=SIZE)  # fmt: skip
    folder = tmp_path_factory.mktemp("run")
    model.save(folder / "model.safetensors")
    images = np.random.default_rng(0).standard_normal((2, *SIZE, 3)).astype(np.float32)
    return folder, images, model.predict(images)


def _onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["predictions"], {"images": images})[0])


def test_export_writes_onnx_that_predicts_like_the_model(
    saved: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, images, expected = saved
    out = tmp_path / "model.onnx"
    assert main(["export", str(folder / "model.safetensors"), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "input 'images' NHWC float32 (N, 32, 32, 3)" in printed and f"wrote {out}" in printed
    np.testing.assert_allclose(_onnx(out, images), expected, rtol=0, atol=1e-4)


def test_export_takes_a_run_folder_and_refuses_to_overwrite(
    saved: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, images, expected = saved
    out = tmp_path / "model.onnx"
    out.write_bytes(b"mine")
    assert main(["export", str(folder), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main(["export", str(folder), "--out", str(out), "--overwrite", "--backend", "torch"]) == 0
    np.testing.assert_allclose(_onnx(out, images), expected, rtol=0, atol=1e-4)


def test_export_refuses_what_the_backend_cannot_write(
    saved: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = saved
    assert main(["export", str(folder), "--format", "saved_model", "--out", str(tmp_path / "sm")]) == 2
    error = capsys.readouterr().err
    assert "ConfigError" in error and "keras-tensorflow" in error and "onnx" in error
    assert not (tmp_path / "sm").exists()
    assert main(["export", str(tmp_path / "nothing.safetensors"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "no saved model" in capsys.readouterr().err
