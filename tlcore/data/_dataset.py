"""Labelled image arrays, validated once so that everything downstream can trust them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tlcore._errors import DataError
from tlcore.data._images import LazyImages

__all__ = ["Dataset", "DatasetSource"]

_MAX_LISTED = 5


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view, so a Dataset cannot be changed behind its back (the caller's array stays writable)."""
    view = array.view()
    view.flags.writeable = False
    return view


def _listing(values: np.ndarray) -> str:
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED].tolist())
    more = f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return shown + more


def _check_images(images: Any, name: str) -> np.ndarray | LazyImages:
    if isinstance(images, LazyImages):
        if len(images) == 0:
            raise DataError(f"dataset {name!r} is empty: it has no images.")
        return images
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise DataError(
            f"dataset {name!r}: images must have shape (N, H, W, C) with C in 1 or 3; "
            f"got shape {tuple(np.shape(images))}. Gray images may also be given as (N, H, W)."
        )
    if array.shape[0] == 0:
        raise DataError(f"dataset {name!r} is empty: it has no images.")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise DataError(f"dataset {name!r}: images must have a positive height and width; got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32, copy=False)
        low, high = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
            raise DataError(
                f"dataset {name!r}: float images must be in [0, 1]; got values from {low} to {high}. "
                "Pass uint8 images in 0..255, or divide by 255."
            )
        return array
    if np.issubdtype(array.dtype, np.integer):
        low_int, high_int = int(np.min(array)), int(np.max(array))
        if low_int < 0 or high_int > 255:
            raise DataError(
                f"dataset {name!r}: integer images must be in 0..255; got values from {low_int} to {high_int}."
            )
        return array.astype(np.uint8)
    raise DataError(f"dataset {name!r}: images must be uint8 in 0..255 or float in [0, 1]; got dtype {array.dtype}.")


def _check_labels(labels: Any, count: int, num_classes: int, name: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise DataError(f"dataset {name!r}: labels must have shape (N,); got shape {array.shape}.")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"dataset {name!r}: labels must be integer class indices; got dtype {array.dtype}. "
            "Map class names to 0..num_classes-1 first."
        )
    if len(array) != count:
        raise DataError(f"dataset {name!r}: there are {count} images but {len(array)} labels; they must match.")
    array = array.astype(np.int64, copy=False)
    bad = np.unique(array[(array < 0) | (array >= num_classes)])
    if len(bad):
        raise DataError(
            f"dataset {name!r}: labels must be in [0, {num_classes}) for num_classes={num_classes}; "
            f"got {_listing(bad)}."
        )
    return array


def _check_class_names(class_names: Sequence[str], name: str) -> tuple[str, ...]:
    if isinstance(class_names, str):
        raise DataError(f"dataset {name!r}: class_names must be a sequence of names, not the string {class_names!r}.")
    names = tuple(str(c) for c in class_names)
    if not names:
        raise DataError(f"dataset {name!r}: class_names is empty; give one name per class.")
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise DataError(f"dataset {name!r}: class names must be unique; {', '.join(map(repr, duplicates))} repeat.")
    return names


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled images, checked on construction.

    ``images`` is either an array held in memory, NHWC with 1 or 3 channels,
    ``uint8`` in 0..255 or ``float32`` in [0, 1] (rank-3 NHW input becomes
    NHW1; other integer and float dtypes are converted when their values fit),
    or :class:`~tlcore.data.LazyImages` (files decoded on demand, of any
    sizes). ``labels`` are ``int64`` class indices in ``[0, len(class_names))``.
    Arrays are stored as read-only views.
    """

    images: np.ndarray | LazyImages
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str = "dataset"

    def __post_init__(self) -> None:
        names = _check_class_names(self.class_names, self.name)
        images = _check_images(self.images, self.name)
        labels = _check_labels(self.labels, len(images), len(names), self.name)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "images", images if isinstance(images, LazyImages) else _read_only(images))
        object.__setattr__(self, "labels", _read_only(labels))

    @classmethod
    def from_arrays(
        cls,
        images: Any,
        labels: Any,
        class_names: Sequence[str] | None = None,
        name: str = "arrays",
    ) -> Dataset:
        """A dataset from array-likes; without ``class_names`` the classes are named ``"0"``, ``"1"`` ...

        The number of classes is then one more than the largest label.
        """
        if class_names is None:
            label_array = np.asarray(labels)
            if label_array.size == 0:
                raise DataError(f"dataset {name!r} is empty: it has no labels.")
            if label_array.dtype == np.bool_ or not np.issubdtype(label_array.dtype, np.integer):
                raise DataError(
                    f"dataset {name!r}: labels must be integer class indices; got dtype {label_array.dtype}."
                )
            class_names = tuple(str(i) for i in range(max(int(label_array.max()) + 1, 1)))
        return cls(images=images, labels=labels, class_names=tuple(class_names), name=name)

    @property
    def num_classes(self) -> int:
        """How many classes the dataset declares (some may have no examples)."""
        return len(self.class_names)

    @property
    def lazy(self) -> bool:
        """Whether the images are read from files on demand rather than held in memory."""
        return isinstance(self.images, LazyImages)

    @property
    def image_size(self) -> tuple[int, int] | None:
        """Image (height, width) when every image has it (in-memory arrays); ``None`` for files of any size."""
        if isinstance(self.images, LazyImages):
            return None
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def channels(self) -> int:
        """Channels per image: 1 (gray) or 3 (RGB)."""
        if isinstance(self.images, LazyImages):
            return self.images.channels
        return int(self.images.shape[3])

    def class_counts(self) -> np.ndarray:
        """Examples per class, an ``int64`` array of length ``num_classes``."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def __len__(self) -> int:
        """The number of examples."""
        return int(self.labels.shape[0])

    def subset(self, indices: Any, name: str | None = None) -> Dataset:
        """The examples at ``indices`` (integer indices or a boolean mask), same classes, in that order."""
        index = np.asarray(indices)
        if index.dtype == np.bool_:
            if index.shape != (len(self),):
                raise DataError(
                    f"dataset {self.name!r}: a boolean mask must have shape ({len(self)},); got {index.shape}."
                )
        elif index.size == 0:
            index = index.astype(np.int64)
        elif not np.issubdtype(index.dtype, np.integer):
            raise DataError(f"dataset {self.name!r}: subset indices must be integers; got dtype {index.dtype}.")
        elif index.ndim != 1:
            raise DataError(f"dataset {self.name!r}: subset indices must be one-dimensional; got shape {index.shape}.")
        else:
            bad = index[(index < -len(self)) | (index >= len(self))]
            if len(bad):
                raise DataError(
                    f"dataset {self.name!r} has {len(self)} examples; subset indices {_listing(np.unique(bad))} "
                    "are out of range."
                )
        return Dataset(
            images=self.images[index],
            labels=self.labels[index],
            class_names=self.class_names,
            name=self.name if name is None else name,
        )

    def __repr__(self) -> str:
        """A one-line summary (the arrays themselves are not printed)."""
        if isinstance(self.images, LazyImages):
            return f"Dataset(name={self.name!r}, n={len(self)}, images={self.images!r}, num_classes={self.num_classes})"
        return (
            f"Dataset(name={self.name!r}, n={len(self)}, image_shape={tuple(self.images.shape[1:])}, "
            f"dtype={self.images.dtype}, num_classes={self.num_classes})"
        )


@dataclass(frozen=True)
class DatasetSource:
    """What a named dataset loader returns: the data and, if the source has one, its official test split."""

    train: Dataset
    test: Dataset | None = None

    def __post_init__(self) -> None:
        if self.test is not None and self.test.class_names != self.train.class_names:
            raise DataError(
                f"dataset {self.train.name!r}: the test split's classes {self.test.class_names} differ "
                f"from the training classes {self.train.class_names}."
            )
        if (
            self.test is not None
            and isinstance(self.test.images, np.ndarray)
            and isinstance(self.train.images, np.ndarray)
            and self.test.images.shape[1:] != self.train.images.shape[1:]
        ):
            raise DataError(
                f"dataset {self.train.name!r}: test images have shape {self.test.images.shape[1:]} but "
                f"training images have {self.train.images.shape[1:]}."
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names shared by both splits."""
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        """How many classes the source declares."""
        return self.train.num_classes
