"""One saved model, every backend: a model saved by one backend loads in another.

Each backend runs in a process of its own (Keras holds one backend per
process); the processes exchange the model file and the expected predictions.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tlcore

SCRIPT = """
import sys, numpy as np, tlcore
backend = tlcore.get_backend(sys.argv[1])
path, action = sys.argv[2], sys.argv[3]
images = np.random.default_rng(0).normal(size=(3, 40, 40, 3)).astype("float32")
if action == "save":
    spec = tlcore.load_plugins().backbone("efficientnet_lite0", backend.name)
    model = backend.build_model(spec, tlcore.HeadSpec(5, hidden=(8,)), weights="imagenet", seed=1, image_size=(40, 40))
    model.save(path)
    model.export(path + ".neutral")
elif action == "load":
    model = backend.load_model(path)
else:
    model = backend.load_model(path + ".neutral.json")
np.save(path + "." + action + ".npy", model.predict(images))
"""

pytestmark = pytest.mark.slow

PAIRS = [("torch", "keras-jax"), ("torch", "keras-tensorflow"), ("keras-torch", "torch"), ("keras-jax", "keras-torch")]


def _installed(backend: str) -> bool:
    info = tlcore.load_plugins().backend(backend)
    return all(importlib.util.find_spec(module) is not None for module in info.requires)


def _run(backend: str, path: Path, action: str) -> np.ndarray:
    env_script = ["-c", SCRIPT, backend, str(path), action]
    subprocess.run([sys.executable, *env_script], check=True, capture_output=True, text=True)
    return np.load(f"{path}.{action}.npy")


@pytest.mark.parametrize(("saver", "loader"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_model_saved_by_one_backend_predicts_the_same_in_another(saver: str, loader: str, tmp_path: Path) -> None:
    if not (_installed(saver) and _installed(loader)):
        pytest.skip(f"needs the {saver} and {loader} backends")
    path = tmp_path / "model.safetensors"
    saved = _run(saver, path, "save")
    loaded = _run(loader, path, "load")
    assert np.abs(saved - loaded).max() <= 1e-4
    imported = _run(loader, path, "import")  # the same model through its neutral export
    assert np.abs(saved - imported).max() <= 1e-4
