"""Data for tlcore: datasets, splits, image preprocessing and batches, in numpy only.

Everything here is framework-neutral: the core prepares every batch, so each
backend trains on the same images in the same order.
"""

from __future__ import annotations

from tlcore.data._batches import Batches
from tlcore.data._dataset import Dataset, DatasetSource
from tlcore.data._named import (
    FASHION_MNIST_CLASSES,
    load_digits,
    load_fashion_mnist,
    load_image_folder,
    load_mnist_5k,
)
from tlcore.data._splits import Splits, make_splits
from tlcore.data._transforms import (
    Augmentation,
    ImagePipeline,
    interpolation_matrix,
    normalize,
    random_crop,
    random_flip,
    random_rotation,
    random_shift,
    resize,
    to_channels,
    to_float,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "Augmentation",
    "Batches",
    "Dataset",
    "DatasetSource",
    "ImagePipeline",
    "Splits",
    "interpolation_matrix",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist_5k",
    "make_splits",
    "normalize",
    "random_crop",
    "random_flip",
    "random_rotation",
    "random_shift",
    "resize",
    "to_channels",
    "to_float",
]
