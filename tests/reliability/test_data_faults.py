"""Data a classifier cannot learn from, or cannot be judged on, is named before training.

Fewer than two classes is refused (a one-class folder used to "reach" a test
accuracy of 1.0); an evaluation split that lacks a class the training split
has is reported with a warning naming the classes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tlcore import DataError
from tlcore._cli import main
from tlcore.data import Dataset, DatasetSource, make_splits


def _dataset(labels: list[int], names: tuple[str, ...], name: str) -> Dataset:
    return Dataset(np.zeros((len(labels), 4, 4, 1), np.uint8), np.asarray(labels), class_names=names, name=name)


def test_one_class_is_not_enough_to_train_a_classifier() -> None:
    source = DatasetSource(_dataset([0] * 10, ("cat",), "pets"))
    with pytest.raises(DataError) as caught:
        make_splits(source, seed=0, labels_per_class=None, validation_per_class=0, test_fraction=0.2)
    assert str(caught.value) == (
        "dataset 'pets' has 1 class ('cat'); a classifier needs at least 2, each with examples "
        "(for an image folder: one subfolder per class)."
    )


def test_a_test_split_without_a_training_class_is_reported() -> None:
    names = ("cat", "dog", "owl")
    source = DatasetSource(_dataset([0, 1, 2] * 4, names, "pets"), test=_dataset([0, 0, 1], names, "pets/test"))
    with pytest.warns(RuntimeWarning) as caught:
        splits = make_splits(source, seed=0, labels_per_class=None, validation_per_class=1, test_fraction=0.2)
    messages = [str(warning.message) for warning in caught]
    assert messages == [
        "split 'pets/test' has no example of 1 of the 3 classes that training has: 'owl'; "
        "its accuracy says nothing about them."
    ]
    assert caught[0].filename == __file__, "the warning points at the caller of make_splits"
    assert splits.sizes() == {"train": 9, "validation": 3, "test": 3}


def test_complete_splits_warn_about_nothing() -> None:
    source = DatasetSource(_dataset([0, 1] * 10, ("cat", "dog"), "pets"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_splits(source, seed=0, labels_per_class=3, validation_per_class=2, test_fraction=0.3)


RECIPE = """
name = "one-class"
seed = 0

[backbone]
name = "efficientnet_lite0"
weights = "none"

[data]
dataset = "image-folder"
options = {{ path = {path} }}
image_size = 32
test_fraction = 0.25
batch_size = 4
cache = false

[[phases]]
epochs = 1
"""


@pytest.mark.requires("torch", "PIL")
def test_a_one_class_image_folder_is_refused_by_tlcore_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tlcore_torch.trainer import TorchTrainer

    from tests.photos import photo_folder

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("training began on a one-class dataset")

    monkeypatch.setattr(TorchTrainer, "_train_step", refuse)
    folder = photo_folder(tmp_path / "pets", count=8, classes=("cat",))
    recipe = tmp_path / "one-class.toml"
    recipe.write_text(RECIPE.format(path=json.dumps(str(folder))))
    out = tmp_path / "out"
    code = main(["run", str(recipe), "--backend", "torch", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert (
        "DataError: dataset 'pets' has 1 class ('cat'); a classifier needs at least 2, each with examples "
        "(for an image folder: one subfolder per class)." in captured.err
    )
    assert "test accuracy" not in captured.out
    assert not (out / "result.json").exists()
