"""Lazy loaders named by the plugin: select Keras's backend, then import Keras."""

from __future__ import annotations

from tlcore import Backend
from tlcore_keras.select import select_keras_backend


def _load(framework: str) -> Backend:
    select_keras_backend(framework)
    from tlcore_keras.backend import KerasBackend

    return KerasBackend(f"keras-{framework}")


def jax_backend() -> Backend:
    """The keras-jax backend."""
    return _load("jax")


def tensorflow_backend() -> Backend:
    """The keras-tensorflow backend."""
    return _load("tensorflow")


def torch_backend() -> Backend:
    """The keras-torch backend."""
    return _load("torch")
