"""make_splits: stratified, disjoint, seeded and reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from tlcore import ConfigError, DataError
from tlcore.data import Dataset, DatasetSource, Splits, make_splits


def _source(per_class: tuple[int, ...] = (30, 40, 50), with_test: bool = False) -> DatasetSource:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    n = len(labels)
    # Each image holds its own index, so splits can be traced back to the source.
    images = np.zeros((n, 2, 2, 1), dtype=np.float32)
    images[:, 0, 0, 0] = np.arange(n) / n
    names = tuple(f"class{c}" for c in range(len(per_class)))
    train = Dataset(images, labels, class_names=names, name="toy")
    test = Dataset(images[:9], labels[:9], class_names=names, name="toy/test") if with_test else None
    return DatasetSource(train, test)


def _ids(data: Dataset | None, n: int) -> set[int]:
    assert data is not None
    return set(np.rint(data.images[:, 0, 0, 0] * n).astype(int).tolist())


def _split(source: DatasetSource, **options: object) -> Splits:
    values: dict[str, object] = {"seed": 0, "labels_per_class": 5, "validation_per_class": 3, "test_fraction": 0.2}
    values.update(options)
    return make_splits(source, **values)  # type: ignore[arg-type]


def test_splits_are_stratified_and_disjoint() -> None:
    source = _source()
    n = len(source.train)
    splits = _split(source)
    assert splits.train.class_counts().tolist() == [5, 5, 5]
    assert splits.validation is not None
    assert splits.validation.class_counts().tolist() == [3, 3, 3]
    assert splits.test.class_counts().tolist() == [6, 8, 10]  # 20 % of each class
    train, validation, test = _ids(splits.train, n), _ids(splits.validation, n), _ids(splits.test, n)
    assert len(train) == 15 and len(validation) == 9 and len(test) == 24
    assert not train & validation and not train & test and not validation & test
    assert splits.sizes() == {"train": 15, "validation": 9, "test": 24}
    assert splits.train.name == "toy/train" and splits.test.name == "toy/test"


def test_same_seed_same_splits_other_seed_other_splits() -> None:
    source = _source()
    n = len(source.train)
    first, again, other = _split(source), _split(source), _split(source, seed=1)
    assert _ids(first.train, n) == _ids(again.train, n)
    assert _ids(first.test, n) == _ids(again.test, n)
    assert _ids(first.train, n) != _ids(other.train, n)
    assert _ids(first.test, n) != _ids(other.test, n)


def test_test_split_does_not_depend_on_labels_or_validation() -> None:
    source = _source()
    n = len(source.train)
    none = _split(source, labels_per_class=2, validation_per_class=0)
    few = _split(source, labels_per_class=2, validation_per_class=4)
    many = _split(source, labels_per_class=10, validation_per_class=4)
    everything = _split(source, labels_per_class=None, validation_per_class=4)
    assert _ids(none.test, n) == _ids(few.test, n) == _ids(many.test, n) == _ids(everything.test, n)
    # For one validation_per_class, smaller training sets are nested in larger ones
    # and the validation split is the same for any labels_per_class.
    assert _ids(few.train, n) < _ids(many.train, n) < _ids(everything.train, n)
    assert _ids(few.validation, n) == _ids(many.validation, n) == _ids(everything.validation, n)
    assert _ids(many.validation, n) == _ids(everything.validation, n)


def test_labels_per_class_none_takes_the_rest() -> None:
    source = _source()
    n = len(source.train)
    splits = _split(source, labels_per_class=None, validation_per_class=2)
    assert splits.validation is not None
    assert len(splits.train) + len(splits.validation) + len(splits.test) == n
    assert _ids(splits.train, n) | _ids(splits.validation, n) | _ids(splits.test, n) == set(range(n))


def test_zero_validation_means_no_validation_split() -> None:
    assert _split(_source(), validation_per_class=0).validation is None


def test_official_test_split_is_used() -> None:
    source = _source(with_test=True)
    splits = _split(source, labels_per_class=None, validation_per_class=1)
    assert splits.test is source.test
    assert len(splits.train) + 3 == len(source.train)


def test_too_few_examples_names_the_class() -> None:
    source = _source((30, 4, 50))
    with pytest.raises(DataError, match=r"class 'class1' has 3 examples .*asked for 5 training \+ 3 validation = 8"):
        _split(source)
    with pytest.raises(DataError, match=r"class 'class1' has 3 examples .*asked for 5 training"):
        _split(source, validation_per_class=0)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("seed", -1, "seed must be a non-negative integer"),
        ("labels_per_class", 0, "labels_per_class must be a positive integer or None"),
        ("validation_per_class", -2, "validation_per_class must be a non-negative integer"),
        ("test_fraction", 1.0, "test_fraction must be a number strictly between 0 and 1; got 1.0"),
    ],
)
def test_bad_options_are_config_errors(option: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _split(_source(), **{option: value})


def test_test_per_class_caps_each_class_of_the_test_split() -> None:
    full = make_splits(_source(), seed=3, labels_per_class=5, validation_per_class=2, test_fraction=0.5)
    capped = make_splits(
        _source(), seed=3, labels_per_class=5, validation_per_class=2, test_fraction=0.5, test_per_class=4
    )
    assert np.bincount(capped.test.labels).tolist() == [4, 4, 4]
    kept = set(capped.test.images[:, 0, 0, 0].tolist())
    assert kept <= set(full.test.images[:, 0, 0, 0].tolist())  # a subset of the same test split
    assert np.array_equal(capped.train.images, full.train.images)  # training data unchanged
    again = make_splits(
        _source(), seed=3, labels_per_class=5, validation_per_class=2, test_fraction=0.5, test_per_class=4
    )
    assert np.array_equal(again.test.images, capped.test.images)
    with pytest.raises(ConfigError, match="test_per_class must be a positive integer"):
        make_splits(_source(), seed=0, labels_per_class=5, validation_per_class=0, test_fraction=0.5, test_per_class=0)
