"""Batches: seeded order and augmentation, partial last batch, prepared evaluation data."""

from __future__ import annotations

import numpy as np
import pytest

from tlcore import ConfigError, ImageInputSpec
from tlcore.data import Augmentation, Batches, Dataset, ImagePipeline

SPEC = ImageInputSpec(size=(32, 32), channels=1, mean=(0.0,), std=(1.0,), min_size=8)


def _dataset(n: int = 23) -> Dataset:
    images = np.zeros((n, 8, 8, 1), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # each image carries its index
    return Dataset.from_arrays(images, np.arange(n) % 3, name="toy")


def _pipeline(augmentation: Augmentation | None = None) -> ImagePipeline:
    return ImagePipeline(SPEC, (8, 8), augmentation or Augmentation())


def _epoch(batches: Batches, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(batches.epoch(epoch))


def test_sizes_and_partial_last_batch() -> None:
    batches = Batches(_dataset(), _pipeline(), batch_size=5)
    assert batches.num_examples == 23
    assert batches.steps_per_epoch == len(batches) == 5
    assert batches.num_classes == 3
    sizes = [len(labels) for _, labels in batches.epoch(0)]
    assert sizes == [5, 5, 5, 5, 3]
    images, labels = next(iter(batches.epoch(0)))
    assert images.dtype == np.float32 and images.shape == (5, 8, 8, 1)
    assert labels.dtype == np.int64


def test_unshuffled_epochs_follow_dataset_order() -> None:
    batches = Batches(_dataset(), _pipeline(), batch_size=4)
    labels = np.concatenate([labels for _, labels in batches.epoch(3)])
    np.testing.assert_array_equal(labels, np.arange(23) % 3)
    np.testing.assert_array_equal(batches.order(3), np.arange(23))


def test_same_seed_same_batches_and_epochs_differ() -> None:
    data = _dataset()
    first = Batches(data, _pipeline(Augmentation(shift=2)), batch_size=4, shuffle=True, seed=7, augment=True)
    again = Batches(data, _pipeline(Augmentation(shift=2)), batch_size=4, shuffle=True, seed=7, augment=True)
    other = Batches(data, _pipeline(Augmentation(shift=2)), batch_size=4, shuffle=True, seed=8, augment=True)
    for (x1, y1), (x2, y2) in zip(_epoch(first, 0), _epoch(again, 0), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first.order(0), first.order(1))
    assert not np.array_equal(first.order(0), other.order(0))
    assert sorted(first.order(1).tolist()) == list(range(23))


def test_order_is_the_order_epoch_yields() -> None:
    data = _dataset()
    batches = Batches(data, _pipeline(Augmentation(flip=True)), batch_size=6, shuffle=True, seed=3, augment=True)
    labels = np.concatenate([labels for _, labels in batches.epoch(2)])
    np.testing.assert_array_equal(labels, data.labels[batches.order(2)])


def test_augment_needs_an_enabled_augmentation() -> None:
    data = _dataset()
    assert not Batches(data, _pipeline(), batch_size=4, augment=True).augment
    assert not Batches(data, _pipeline(Augmentation(shift=1)), batch_size=4, augment=False).augment
    assert Batches(data, _pipeline(Augmentation(shift=1)), batch_size=4, augment=True).augment


def test_augmented_epochs_differ_but_ordered_does_not_augment() -> None:
    data = _dataset()
    batches = Batches(data, _pipeline(Augmentation(shift=2)), batch_size=23, shuffle=False, seed=0, augment=True)
    (epoch0, _), (epoch1, _) = _epoch(batches, 0)[0], _epoch(batches, 1)[0]
    assert not np.array_equal(epoch0, epoch1)
    plain = Batches(data, _pipeline(), batch_size=23)
    (ordered, _), (unaugmented, _) = next(iter(batches.ordered())), _epoch(plain, 0)[0]
    np.testing.assert_array_equal(ordered, unaugmented)


def test_all_prepared_is_the_whole_dataset_in_order() -> None:
    data = _dataset()
    batches = Batches(data, _pipeline(Augmentation(rotation=10.0)), batch_size=4, shuffle=True, augment=True)
    images, labels = batches.all_prepared()
    assert images.shape == (23, 8, 8, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, data.labels)
    np.testing.assert_allclose(images[:, 0, 0, 0] * 255.0, np.arange(23), atol=1e-4)
    pieces = np.concatenate([x for x, _ in batches.ordered()])
    np.testing.assert_array_equal(images, pieces)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"batch_size": 0}, "batch_size must be an integer >= 1; got 0"), ({"seed": -3}, "seed must be an integer >= 0")],
)
def test_bad_options(options: dict[str, int], message: str) -> None:
    values = {"batch_size": 4} | options
    with pytest.raises(ConfigError, match=message):
        Batches(_dataset(), _pipeline(), **values)  # type: ignore[arg-type]


def test_without_augmentation_keeps_order_and_drops_augmentation() -> None:
    data = _dataset()
    batches = Batches(data, _pipeline(Augmentation(shift=2)), batch_size=5, shuffle=True, seed=4, augment=True)
    plain = batches.without_augmentation()
    assert batches.augment and not plain.augment
    assert (plain.batch_size, plain.seed, plain.shuffle) == (5, 4, True)
    np.testing.assert_array_equal(plain.order(1), batches.order(1))
    expected = Batches(data, _pipeline(), batch_size=5, shuffle=True, seed=4)
    for (x1, y1), (x2, y2) in zip(_epoch(plain, 1), _epoch(expected, 1), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
