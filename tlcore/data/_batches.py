"""Batches made by the core, so that every backend sees the same images in the same order."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from tlcore._errors import ConfigError
from tlcore.data._dataset import Dataset
from tlcore.data._transforms import ImagePipeline

__all__ = ["Batches"]


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"Batches: {name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


class Batches:
    """Prepared (images, labels) batches of a dataset, epoch by epoch.

    Epoch ``e`` draws its order and its augmentation from
    ``np.random.default_rng([seed, e])``: the order first (a permutation when
    ``shuffle``), then the augmentations batch after batch. So the same seed
    gives the same batches on every backend and every run, and each epoch
    differs. The last batch may be smaller than ``batch_size``.

    ``augment`` is true only when asked for and the pipeline has an enabled
    :class:`~tlcore.data.Augmentation`. This class implements the trainer's
    ``BatchSource`` protocol.
    """

    def __init__(
        self,
        dataset: Dataset,
        pipeline: ImagePipeline,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        augment: bool = False,
    ) -> None:
        self.dataset = dataset
        self.pipeline = pipeline
        self.batch_size: int = _check_count(batch_size, "batch_size", 1)
        self.seed: int = _check_count(seed, "seed", 0)
        self.shuffle: bool = bool(shuffle)
        self.augment: bool = bool(augment) and pipeline.augmentation.enabled

    @property
    def num_examples(self) -> int:
        """How many examples one epoch yields."""
        return len(self.dataset)

    @property
    def num_classes(self) -> int:
        """The dataset's number of classes."""
        return self.dataset.num_classes

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch, counting the last partial one."""
        return math.ceil(self.num_examples / self.batch_size)

    def __len__(self) -> int:
        """Batches per epoch, the same as :attr:`steps_per_epoch`."""
        return self.steps_per_epoch

    def without_augmentation(self) -> Batches:
        """The same batches (same order, seed and size) with augmentation switched off."""
        return Batches(
            self.dataset,
            self.pipeline,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            augment=False,
        )

    def _generator(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _check_count(epoch, "epoch", 0)])

    def _order(self, rng: np.random.Generator) -> np.ndarray:
        if self.shuffle:
            return rng.permutation(self.num_examples)
        return np.arange(self.num_examples)

    def order(self, epoch: int) -> np.ndarray:
        """The example indices in the order :meth:`epoch` yields them."""
        return self._order(self._generator(epoch))

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images, labels)``: float32 NHWC prepared images and int64 labels, for epoch ``epoch``."""
        rng = self._generator(epoch)
        order = self._order(rng)
        augment_rng = rng if self.augment else None
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.pipeline.prepare(self.dataset.images[index], augment_rng), self.dataset.labels[index]

    def ordered(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the dataset in its stored order, prepared without augmentation (for evaluation and caching)."""
        images, labels = self.dataset.images, self.dataset.labels
        for start in range(0, self.num_examples, self.batch_size):
            stop = start + self.batch_size
            yield self.pipeline.prepare(images[start:stop], None), np.array(labels[start:stop])

    def all_prepared(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole dataset prepared without augmentation, in stored order, as ``(images, labels)``.

        Preparation runs batch by batch into one preallocated float32 array.
        """
        height, width = self.pipeline.size
        images = np.empty((self.num_examples, height, width, self.pipeline.input.channels), dtype=np.float32)
        start = 0
        for batch, _ in self.ordered():
            images[start : start + len(batch)] = batch
            start += len(batch)
        return images, np.array(self.dataset.labels, dtype=np.int64)

    def __repr__(self) -> str:
        """A one-line summary."""
        return (
            f"Batches(dataset={self.dataset.name!r}, n={self.num_examples}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, augment={self.augment}, seed={self.seed})"
        )
