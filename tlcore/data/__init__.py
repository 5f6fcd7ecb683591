"""Data for tlcore: datasets, splits, image preparation, batches and the image cache.

Everything here is framework-neutral (numpy and Pillow): the core prepares
every batch, so each backend trains on the same images in the same order.
"""

from __future__ import annotations

from tlcore.data._batches import Batches, default_workers
from tlcore.data._cache import CachedImages, cache_images
from tlcore.data._dataset import Dataset, DatasetSource
from tlcore.data._images import ImageFiles, LazyImages
from tlcore.data._named import (
    FASHION_MNIST_CLASSES,
    load_digits,
    load_fashion_mnist,
    load_image_folder,
    load_mnist_5k,
)
from tlcore.data._splits import Splits, make_splits
from tlcore.data._transforms import Augmentation, ImagePipeline, RandomResizedCrop, normalize

__all__ = [
    "FASHION_MNIST_CLASSES",
    "Augmentation",
    "Batches",
    "CachedImages",
    "Dataset",
    "DatasetSource",
    "ImageFiles",
    "ImagePipeline",
    "LazyImages",
    "RandomResizedCrop",
    "Splits",
    "cache_images",
    "default_workers",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist_5k",
    "make_splits",
    "normalize",
]
