"""Choosing Keras's backend, which Keras reads once per process.

The variable ``KERAS_BACKEND`` is set before Keras is first imported. If
Keras is already imported with another backend, :func:`select_keras_backend`
raises, because each Keras backend needs a process of its own. Keras's config
file is never written to the user's home: ``KERAS_HOME`` defaults to tlcore's
cache folder unless the user has set it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tlcore import TLCoreError
from tlcore.weights import cache_dir

__all__ = ["KerasBackendConflictError", "keras_home", "select_keras_backend"]


class KerasBackendConflictError(TLCoreError):
    """Keras is already loaded with another backend in this process."""


def keras_home() -> Path:
    """Where Keras keeps its config and downloads when tlcore imports it: ``keras/`` in tlcore's cache."""
    return cache_dir("keras")


def select_keras_backend(framework: str) -> None:
    """Make Keras use ``framework`` (jax, tensorflow or torch) in this process."""
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != framework:
            raise KerasBackendConflictError(
                f"Keras is already loaded with the {loaded!r} backend in this process, and keras-{framework} was "
                f"asked for. Keras reads its backend once per process: run each Keras backend in its own process "
                f"(tlcore's CLI and benchmarks do)."
            )
        return
    os.environ["KERAS_BACKEND"] = framework
    os.environ.setdefault("KERAS_HOME", str(keras_home()))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
