"""The contract suite: every backend must pass it unchanged.

Tests take the ``backend`` fixture and are collected once per backend
(``[torch]``, ``[keras-jax]`` ...). ``--backend NAME`` (repeatable) or the
``TLCORE_TEST_BACKENDS`` variable chooses the backends; the default is every
registered backend that is not a Keras backend, because Keras holds one
backend per process: ``scripts/test.sh`` runs the suite once more for each
Keras backend, each in a process of its own. Backends whose framework is not
installed are skipped, not failed.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np
import pytest

import tlcore
from tlcore.data import Augmentation, Batches, Dataset, ImagePipeline

PORTABLE_BACKBONES = tuple(
    name for name, entry in sorted(tlcore.load_plugins().backbones.items()) if entry.item.portable
)
"""Backbones with the same structure, layer names and weights on every backend that provides them.

Every registered one, plugins' included: efficientnet_lite0, mobilenet_v2,
resnet18, resnet50 from the core, and those installed plugins add.
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", action="append", default=[], help="run the contract suite on this backend only")


def _selected(config: pytest.Config) -> list[str]:
    chosen = list(config.getoption("--backend"))
    if not chosen and os.environ.get("TLCORE_TEST_BACKENDS"):
        chosen = [b.strip() for b in os.environ["TLCORE_TEST_BACKENDS"].split(",") if b.strip()]
    if chosen:
        return chosen
    return [name for name in sorted(tlcore.load_plugins().backends) if not name.startswith("keras-")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", _selected(metafunc.config))


@pytest.fixture
def backend(backend_name: str) -> tlcore.Backend:
    info = tlcore.load_plugins().backend(backend_name)
    missing = [m for m in info.requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"backend {backend_name} needs {', '.join(missing)}")
    return tlcore.get_backend(backend_name)


@dataclass
class Tiny:
    """A tiny learnable image task: colour and position encode the class."""

    train: Batches
    validation: Batches
    dataset: Dataset
    spec: tlcore.BackboneSpec
    size: tuple[int, int]


def tiny_dataset(count: int = 48, classes: int = 3, size: int = 32, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    images = rng.integers(0, 60, size=(count, size, size, 3)).astype(np.uint8)
    for index, label in enumerate(labels):
        quarter = size // 2
        row, col = divmod(int(label), 2)
        images[index, row * quarter : (row + 1) * quarter, col * quarter : (col + 1) * quarter, label % 3] = 250
    return Dataset.from_arrays(images, labels, name="tiny")


def make_tiny(backend: tlcore.Backend, *, augment: bool = False, backbone: str = "efficientnet_lite0") -> Tiny:
    spec = tlcore.load_plugins().backbone(backbone, backend.name)
    size = (max(32, spec.input.min_size),) * 2
    dataset = tiny_dataset(size=size[0])
    augmentation = Augmentation(shift=2) if augment else Augmentation()
    pipeline = ImagePipeline(spec.input, size, augmentation)
    train = Batches(dataset, pipeline, batch_size=16, shuffle=True, seed=0, augment=augment)
    validation = Batches(dataset, ImagePipeline(spec.input, size), batch_size=16)
    return Tiny(train=train, validation=validation, dataset=dataset, spec=spec, size=size)


@pytest.fixture
def tiny(backend: tlcore.Backend) -> Tiny:
    return make_tiny(backend)


def build(backend: tlcore.Backend, tiny: Tiny, *, seed: int = 0, dropout: float = 0.0) -> tlcore.Model:
    head = tlcore.HeadSpec(num_outputs=3, dropout=dropout)
    return backend.build_model(tiny.spec, head, weights=None, seed=seed, image_size=tiny.size)


def options(**kwargs: object) -> tlcore.TrainerOptions:
    return tlcore.TrainerOptions(progress=False, device="cpu", **kwargs)  # type: ignore[arg-type]
