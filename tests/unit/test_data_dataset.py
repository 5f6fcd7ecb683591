"""Dataset and DatasetSource: validation on construction and its messages."""

from __future__ import annotations

import numpy as np
import pytest

from tlcore import DataError, TLCoreError
from tlcore.data import Dataset, DatasetSource


def _images(n: int = 6, channels: int | None = 1) -> np.ndarray:
    shape = (n, 4, 5) if channels is None else (n, 4, 5, channels)
    return np.arange(np.prod(shape), dtype=np.int64).reshape(shape).astype(np.uint8)


def test_from_arrays_names_classes_and_adds_channel_axis() -> None:
    data = Dataset.from_arrays(_images(6, None), [0, 1, 2, 0, 1, 2])
    assert data.images.shape == (6, 4, 5, 1)
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    assert data.class_names == ("0", "1", "2")
    assert data.num_classes == 3
    assert len(data) == 6
    assert data.name == "arrays"
    assert data.image_size == (4, 5)
    assert data.channels == 1
    assert data.class_counts().tolist() == [2, 2, 2]


def test_rgb_and_float_images_are_accepted() -> None:
    rgb = Dataset.from_arrays(_images(2, 3), [0, 1], class_names=["cat", "dog"])
    assert rgb.images.shape == (2, 4, 5, 3)
    floats = Dataset.from_arrays(np.full((2, 3, 3), 0.5), [0, 1])
    assert floats.images.dtype == np.float32


def test_arrays_are_read_only_but_callers_array_is_not() -> None:
    images = _images(2, 1)
    data = Dataset.from_arrays(images, [0, 1])
    with pytest.raises(ValueError):
        data.images[0, 0, 0, 0] = 7
    images[0, 0, 0, 0] = 7  # the caller's array stays writable


def re_tuple(shape: tuple[int, ...]) -> str:
    return r"\(" + r", ".join(str(s) for s in shape) + r"\)"


@pytest.mark.parametrize("shape", [(4, 5), (2, 4, 5, 2), (2, 4, 5, 4), (1, 2, 4, 5, 1)])
def test_wrong_image_shape_is_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(DataError, match=r"with C in 1 or 3; got shape " + re_tuple(shape)):
        Dataset.from_arrays(np.zeros(shape, dtype=np.uint8), [0] * (shape[0] if len(shape) > 2 else 1))


def test_labels_out_of_range_name_values_and_num_classes() -> None:
    with pytest.raises(DataError, match=r"labels must be in \[0, 2\) for num_classes=2; got -1, 5"):
        Dataset(_images(4), np.array([0, 5, -1, 1]), class_names=("a", "b"), name="x")


def test_labels_must_match_images_and_be_integers() -> None:
    with pytest.raises(DataError, match="3 images but 2 labels"):
        Dataset.from_arrays(_images(3), [0, 1])
    with pytest.raises(DataError, match="labels must be integer class indices; got dtype float64"):
        Dataset(_images(2), np.array([0.0, 1.0]), class_names=("a", "b"))
    with pytest.raises(DataError, match=r"labels must have shape \(N,\); got shape \(2, 1\)"):
        Dataset(_images(2), np.array([[0], [1]]), class_names=("a", "b"))


def test_empty_dataset_is_refused() -> None:
    with pytest.raises(DataError, match="dataset 'x' is empty"):
        Dataset(np.zeros((0, 4, 4, 1), np.uint8), np.zeros(0, np.int64), class_names=("a",), name="x")
    with pytest.raises(DataError, match="dataset 'arrays' is empty"):
        Dataset.from_arrays(np.zeros((0, 4, 4)), [])


def test_value_ranges_are_checked() -> None:
    with pytest.raises(DataError, match=r"float images must be in \[0, 1\]; got values from 0.0 to 255.0"):
        Dataset.from_arrays(np.array([[[0.0, 255.0]]]), [0])
    with pytest.raises(DataError, match=r"integer images must be in 0\.\.255; got values from 0 to 300"):
        Dataset.from_arrays(np.array([[[0, 300]]]), [0])
    converted = Dataset.from_arrays(np.array([[[0, 200]]], dtype=np.int32), [0])
    assert converted.images.dtype == np.uint8


def test_class_names_are_checked() -> None:
    with pytest.raises(DataError, match="class names must be unique; 'a' repeat"):
        Dataset(_images(2), np.array([0, 1]), class_names=("a", "a"))
    with pytest.raises(DataError, match="class_names is empty"):
        Dataset(_images(2), np.array([0, 0]), class_names=())


def test_errors_derive_from_tlcore_error() -> None:
    with pytest.raises(TLCoreError):
        Dataset.from_arrays(np.zeros((2, 2)), [0, 1])


def test_subset_keeps_classes_and_order() -> None:
    data = Dataset.from_arrays(_images(6), [0, 1, 2, 0, 1, 2], class_names=["a", "b", "c"], name="d")
    part = data.subset([5, 0, 3], name="part")
    assert part.labels.tolist() == [2, 0, 0]
    assert np.array_equal(part.images[0], data.images[5])
    assert part.class_names == ("a", "b", "c")
    assert part.name == "part"
    masked = data.subset(data.labels == 1)
    assert masked.labels.tolist() == [1, 1]
    assert masked.name == "d"
    with pytest.raises(DataError, match="has 6 examples; subset indices 9 are out of range"):
        data.subset([0, 9])


def test_source_checks_test_split_classes() -> None:
    train = Dataset.from_arrays(_images(2), [0, 1], class_names=["a", "b"])
    test = Dataset.from_arrays(_images(2), [0, 1], class_names=["a", "c"])
    with pytest.raises(DataError, match="test split's classes"):
        DatasetSource(train, test)
    source = DatasetSource(train)
    assert source.test is None
    assert source.num_classes == 2
    assert source.class_names == ("a", "b")
