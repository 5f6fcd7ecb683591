"""Batches made by the core, so that every backend sees the same images in the same order.

Preparation runs in worker threads, a bounded number of batches ahead of the
consumer: decoding, resizing and augmenting are Pillow and numpy C code that
release the GIL, so threads use every core without copying batches between
processes. Each image is augmented from a generator of its own, seeded from
the epoch's generator, so the batches do not depend on the number of workers.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from tlcore._errors import ConfigError
from tlcore.data._dataset import Dataset
from tlcore.data._transforms import ImagePipeline, image_seeds

__all__ = ["Batches", "default_workers", "parallel_map"]

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The machine's usable cores: how many preparation threads run by default."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"Batches: {name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def parallel_map(function: Callable[[T], R], items: Iterable[T], workers: int, ahead: int) -> Iterator[R]:
    """``function`` over ``items`` in order, on ``workers`` threads, at most ``ahead`` results in flight.

    With ``workers == 0`` it runs in the caller's thread. An error in one item
    is raised when that item's turn comes; closing the iterator early cancels
    what has not started and waits for what has.
    """
    if workers == 0:
        yield from map(function, items)
        return
    pending: deque[Future[R]] = deque()
    remaining = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tlcore-data") as pool:

        def refill() -> None:
            while len(pending) < max(ahead, 1):
                try:
                    item = next(remaining)
                except StopIteration:
                    return
                pending.append(pool.submit(function, item))

        try:
            refill()
            while pending:
                result = pending.popleft().result()
                refill()
                yield result
        finally:
            for future in pending:
                future.cancel()


class Batches:
    """Prepared (images, labels) batches of a dataset, epoch by epoch.

    Epoch ``e`` draws from ``np.random.default_rng([seed, e])``: the order
    first (a permutation when ``shuffle``), then, when augmenting, one seed per
    image in that order, from which the image's own generator draws its
    augmentation. So the same seed gives the same batches on every backend,
    every run and for any number of ``workers``, and each epoch differs. The
    last batch may be smaller than ``batch_size``.

    ``workers`` threads (default: the machine's cores; 0 prepares in the
    consumer's thread) keep ``prefetch`` batches (default ``2 * workers``)
    prepared ahead of the one being consumed.

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
        workers: int | None = None,
        prefetch: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.pipeline = pipeline
        self.batch_size: int = _check_count(batch_size, "batch_size", 1)
        self.seed: int = _check_count(seed, "seed", 0)
        self.shuffle: bool = bool(shuffle)
        self.augment: bool = bool(augment) and pipeline.augmentation.enabled
        self.workers: int = default_workers() if workers is None else _check_count(workers, "workers", 0)
        self.prefetch: int = 2 * max(self.workers, 1) if prefetch is None else _check_count(prefetch, "prefetch", 1)

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
        """The same batches (same order, seed, size and workers) with augmentation switched off."""
        return Batches(
            self.dataset,
            self.pipeline,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            augment=False,
            workers=self.workers,
            prefetch=self.prefetch,
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

    def _prepared(self, order: np.ndarray, seeds: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        images, labels = self.dataset.images, self.dataset.labels
        starts = range(0, len(order), self.batch_size)

        def prepare(start: int) -> tuple[np.ndarray, np.ndarray]:
            index = order[start : start + self.batch_size]
            chosen = None if seeds is None else seeds[start : start + self.batch_size]
            return self.pipeline.prepare_selection(images, index, chosen), np.array(labels[index])

        return parallel_map(prepare, starts, self.workers, self.prefetch)

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images, labels)``: float32 NHWC prepared images and int64 labels, for epoch ``epoch``."""
        rng = self._generator(epoch)
        order = self._order(rng)
        seeds = image_seeds(rng, len(order)) if self.augment else None
        return self._prepared(order, seeds)

    def ordered(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the dataset in its stored order, prepared without augmentation (for evaluation and caching)."""
        return self._prepared(np.arange(self.num_examples), None)

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
            f"shuffle={self.shuffle}, augment={self.augment}, seed={self.seed}, workers={self.workers})"
        )
