"""Seeded, stratified train / validation / test splits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tlcore._errors import ConfigError, DataError
from tlcore.data._dataset import Dataset, DatasetSource

__all__ = ["Splits", "make_splits"]


@dataclass(frozen=True)
class Splits:
    """The three splits a recipe trains, selects and reports on; they never share an example."""

    train: Dataset
    validation: Dataset | None
    test: Dataset

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names shared by every split."""
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        """How many classes the splits declare."""
        return self.train.num_classes

    def sizes(self) -> dict[str, int]:
        """Examples per split, e.g. ``{"train": 1000, "validation": 500, "test": 1000}``."""
        return {
            "train": len(self.train),
            "validation": 0 if self.validation is None else len(self.validation),
            "test": len(self.test),
        }


def _check_options(seed: int, labels_per_class: int | None, validation_per_class: int, test_fraction: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    if labels_per_class is not None and (
        isinstance(labels_per_class, bool)
        or not isinstance(labels_per_class, (int, np.integer))
        or labels_per_class < 1
    ):
        raise ConfigError(f"labels_per_class must be a positive integer or None (all); got {labels_per_class!r}.")
    if (
        isinstance(validation_per_class, bool)
        or not isinstance(validation_per_class, (int, np.integer))
        or validation_per_class < 0
    ):
        raise ConfigError(
            f"validation_per_class must be a non-negative integer (0 = no validation split); "
            f"got {validation_per_class!r}."
        )
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}.")


def _carve_test(data: Dataset, rng: np.random.Generator, test_fraction: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Take a stratified ``test_fraction`` of each class; return the test indices and each class's shuffled rest."""
    test_parts: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for label in range(data.num_classes):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        count = len(members)
        n_test = round(test_fraction * count)
        if count >= 2:
            n_test = min(max(n_test, 1), count - 1)
        test_parts.append(members[:n_test])
        rest.append(members[n_test:])
    return np.sort(np.concatenate(test_parts)), rest


def make_splits(
    source: DatasetSource,
    *,
    seed: int,
    labels_per_class: int | None,
    validation_per_class: int,
    test_fraction: float,
    test_per_class: int | None = None,
) -> Splits:
    """Split ``source`` into train, validation and test, stratified by class and seeded.

    The test split is the source's official one when it has one; otherwise a
    stratified ``test_fraction`` of every class is carved off first, so the
    test split depends only on ``seed`` and ``test_fraction``, never on
    ``labels_per_class`` or ``validation_per_class``. From what remains,
    ``validation_per_class`` examples per class form the validation split
    (0: no validation split) and ``labels_per_class`` examples per class the
    training split (``None``: all the rest). Validation draws come before
    training draws, so for a given ``validation_per_class`` the validation
    split does not change with ``labels_per_class`` and a smaller training
    split is contained in a larger one. Each split keeps the source's order.
    ``test_per_class`` keeps at most that many test examples of each class,
    drawn with their own seeded generator (``None``: the whole test split).
    A source with fewer than two classes is a :class:`DataError`; a validation
    or test split without any example of a class the training split has gets
    a ``RuntimeWarning`` naming those classes.
    """
    _check_options(seed, labels_per_class, validation_per_class, test_fraction)
    if test_per_class is not None and (
        isinstance(test_per_class, bool) or not isinstance(test_per_class, (int, np.integer)) or test_per_class < 1
    ):
        raise ConfigError(f"test_per_class must be a positive integer or None (all); got {test_per_class!r}.")
    rng = np.random.default_rng(int(seed))
    data = source.train
    name = data.name
    if data.num_classes < 2:
        raise DataError(
            f"dataset {name!r} has {data.num_classes} class{'' if data.num_classes == 1 else 'es'} "
            f"({_names(data.class_names)}); a classifier needs at least 2, each with examples "
            "(for an image folder: one subfolder per class)."
        )
    if source.test is not None:
        test = source.test
        pools = [rng.permutation(np.flatnonzero(data.labels == label)) for label in range(data.num_classes)]
        where = "in the training data"
    else:
        test_index, pools = _carve_test(data, rng, float(test_fraction))
        test = data.subset(test_index, name=f"{name}/test")
        where = f"after {test_fraction:g} of each class went to the test split"

    train_parts: list[np.ndarray] = []
    validation_parts: list[np.ndarray] = []
    for label, pool in enumerate(pools):
        wanted_train = 1 if labels_per_class is None else int(labels_per_class)
        needed = validation_per_class + wanted_train
        if len(pool) < needed:
            asked = "at least 1 training example" if labels_per_class is None else f"{labels_per_class} training"
            if validation_per_class:
                asked += f" + {validation_per_class} validation = {needed}"
            raise DataError(
                f"dataset {name!r}: class {data.class_names[label]!r} has {len(pool)} examples {where}; "
                f"asked for {asked}. Lower labels_per_class or validation_per_class."
            )
        validation_parts.append(pool[:validation_per_class])
        end = None if labels_per_class is None else validation_per_class + int(labels_per_class)
        train_parts.append(pool[validation_per_class:end])

    train = data.subset(np.sort(np.concatenate(train_parts)), name=f"{name}/train")
    validation = None
    if validation_per_class:
        validation = data.subset(np.sort(np.concatenate(validation_parts)), name=f"{name}/validation")
    if test_per_class is not None:
        test = _cap_per_class(test, int(test_per_class), seed)
    for split in (validation, test):
        if split is not None:
            _warn_missing_classes(split, train)
    return Splits(train=train, validation=validation, test=test)


def _names(class_names: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in class_names[:limit])
    more = f" and {len(class_names) - limit} more" if len(class_names) > limit else ""
    return (shown + more) or "none"


def _warn_missing_classes(split: Dataset, train: Dataset) -> None:
    """Warn when ``split`` has no example of a class that ``train`` has: its accuracy says nothing about them."""
    missing = (train.class_counts() > 0) & (split.class_counts() == 0)
    if missing.any():
        names = tuple(name for name, absent in zip(train.class_names, missing, strict=True) if absent)
        warnings.warn(
            f"split {split.name!r} has no example of {len(names)} of the {train.num_classes} classes that training "
            f"has: {_names(names)}; its accuracy says nothing about them.",
            RuntimeWarning,
            stacklevel=3,
        )


def _cap_per_class(test: Dataset, cap: int, seed: int) -> Dataset:
    """At most ``cap`` examples of each class of ``test``, seeded, in the split's order."""
    rng = np.random.default_rng([int(seed), 1])
    keep = [rng.permutation(np.flatnonzero(test.labels == label))[:cap] for label in range(test.num_classes)]
    return test.subset(np.sort(np.concatenate(keep)), name=test.name)
