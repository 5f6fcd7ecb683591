"""A Keras model from tlcore saves the Keras way and loads with keras.models.load_model, predicting the same.

For each Keras framework, one process builds efficientnet_lite0 (portable:
tlcore's own layers, depthwise convolution and initializers included) and
keras_mobilenet_v2 (keras.applications), saves each ``model.native`` with ``save("x.keras")``
and writes its predictions; a fresh process does only what the README says
a user does, ``tlcore.get_backend("keras-<framework>")`` then
``keras.models.load_model``, and predicts again. This file is also the
script those processes run: ``python test_native_save.py save|load FOLDER``
with ``KERAS_BACKEND`` set.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.processes import framework_env

BACKBONES = {"efficientnet_lite0": 32, "keras_mobilenet_v2": 32}
TOLERANCE = 1e-6  # of the largest output

pytestmark = pytest.mark.slow  # two processes per framework, 20-40 s each on a 2-core CPU


def _images(size: int) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((2, size, size, 3)).astype(np.float32)


def _script(stage: str, folder: Path) -> None:
    import keras

    import tlcore

    backend = tlcore.get_backend(f"keras-{keras.backend.backend()}")  # registers tlcore's Keras classes
    for name, size in BACKBONES.items():
        if stage == "save":
            spec = tlcore.load_plugins().backbone(name, backend.name)
            head = tlcore.HeadSpec(num_outputs=4, hidden=(8,), dropout=0.1, pooling="avg")
            model = backend.build_model(spec, head, weights=None, seed=0, image_size=(size, size))
            np.save(folder / f"{name}.expected.npy", model.predict(_images(size)))
            model.native.save(folder / f"{name}.keras")
        else:
            loaded = keras.models.load_model(folder / f"{name}.keras")
            assert type(loaded).__name__ == "KerasNet", type(loaded)
            assert loaded.head.spec == tlcore.HeadSpec(num_outputs=4, hidden=(8,), dropout=0.1, pooling="avg")
            got = keras.ops.convert_to_numpy(loaded(_images(size), training=False))
            np.save(folder / f"{name}.loaded.npy", got)


def _run(stage: str, framework: str, folder: Path) -> None:
    env = {**framework_env(folder / "keras_home"), "KERAS_BACKEND": framework}
    done = subprocess.run(
        [sys.executable, __file__, stage, str(folder)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{stage} on {framework} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


@pytest.mark.parametrize("framework", ["jax", "tensorflow", "torch"])
def test_native_keras_model_round_trips_through_keras_saving(framework: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec(framework) is None:
        pytest.skip(f"needs keras and {framework}")
    _run("save", framework, tmp_path)
    _run("load", framework, tmp_path)
    for name in BACKBONES:
        expected = np.load(tmp_path / f"{name}.expected.npy")
        got = np.load(tmp_path / f"{name}.loaded.npy")
        assert got.shape == expected.shape
        # Relative to the outputs' size: random-weight MobileNet-style models give outputs near 1e-9.
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE * np.abs(expected).max(), err_msg=name)


if __name__ == "__main__":
    _script(sys.argv[1], Path(sys.argv[2]))
