"""What differs between the frameworks under Keras (JAX, TensorFlow, torch), in one place.

Every other module of this backend asks here instead of testing
``keras.backend.backend()`` itself. A framework is imported only when the
question needs it, and only the one Keras runs on: importing TensorFlow
beside torchvision can crash the process, and each import costs seconds.
Import this module only after :mod:`tlcore_keras.loader` has selected Keras's
backend.

On TensorFlow on a Linux machine with no NVIDIA driver, importing this
module lets TensorFlow find its devices at once, without the
``failed call to cuInit`` error that its CUDA build prints there (see
:func:`initialise_tensorflow_devices`); elsewhere it changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

__all__ = [
    "device",
    "framework",
    "gpu_available",
    "initialise_tensorflow_devices",
    "jax_on_cpu",
    "nvidia_driver_present",
    "peak_memory_bytes",
    "seed",
    "sync_state",
    "versions",
]


def framework() -> str:
    """The framework Keras runs on in this process: ``jax``, ``tensorflow`` or ``torch``."""
    return str(keras.backend.backend())


def versions() -> dict[str, str]:
    """Keras's version and its framework's."""
    found = {"keras": str(keras.__version__)}
    name = framework()
    if name == "jax":
        import jax

        found["jax"] = str(jax.__version__)
    elif name == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = str(tf.__version__)
    else:
        import torch

        found["torch"] = str(torch.__version__)
    return found


def device() -> str:
    """Where the framework computes by default (``cpu``, ``gpu:0``, ``cuda:0`` ...)."""
    name = framework()
    if name == "jax":
        import jax

        return str(jax.devices()[0]).lower()
    if name == "tensorflow":
        import tensorflow as tf

        return "gpu:0" if tf.config.list_physical_devices("GPU") else "cpu"
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def gpu_available() -> bool:
    """Whether the framework sees a GPU."""
    name = framework()
    if name == "jax":
        import jax

        return any(item.platform == "gpu" for item in jax.devices())
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    import torch

    return bool(torch.cuda.is_available())


def jax_on_cpu() -> bool:
    """Whether Keras runs on JAX and JAX computes on the CPU."""
    if framework() != "jax":
        return False
    import jax

    return bool(jax.default_backend() == "cpu")


def peak_memory_bytes() -> int | None:
    """Peak accelerator memory of this process, where the framework tracks it (torch on CUDA, JAX)."""
    name = framework()
    if name == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    if name == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return int(peak) if peak is not None else None
    return None


def seed(value: int) -> None:
    """Seed Keras's global generator, Python's, numpy's and the framework's, as ``keras.utils.set_random_seed`` does.

    ``keras.utils.set_random_seed`` imports TensorFlow whenever it is
    installed (slow, and a crash risk beside torchvision), so outside
    TensorFlow the same generators are seeded here without it.
    """
    name = framework()
    if name == "tensorflow":
        keras.utils.set_random_seed(value)
        return
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # a Keras whose internals moved: accept the import
        keras.utils.set_random_seed(value)
        return
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, value)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(value)
    np.random.seed(value)
    if name == "torch":
        import torch

        torch.manual_seed(value)


def generator_state() -> np.ndarray | None:
    """The framework's global random generator, where Keras draws from it: on torch, unseeded dropout does.

    Keras's JAX and TensorFlow backends draw every random number from seed
    generator variables, which are part of the model's variables.
    """
    if framework() != "torch":
        return None
    import torch

    return np.asarray(torch.get_rng_state().numpy()).copy()


def set_generator_state(state: np.ndarray | None) -> None:
    """Put back what :func:`generator_state` returned."""
    if state is not None and framework() == "torch":
        import torch

        torch.set_rng_state(torch.from_numpy(np.ascontiguousarray(state, dtype=np.uint8)))


def sync_state(model: Any) -> None:
    """Write the functional training state Keras's JAX trainer holds back into ``model``'s variables.

    Only JAX keeps such a state (``model._jax_state``); elsewhere, and when it
    is already written back, this does nothing.
    """
    if getattr(model, "_jax_state", None) is not None and hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


# ---------------------------------------------------------------- TensorFlow's devices, quietly

CUINIT_MESSAGE = b"failed call to cuInit"
"""What TensorFlow's CUDA build logs (level ERROR, from C++) when it finds no driver."""


def nvidia_driver_present() -> bool:
    """Whether this machine may have an NVIDIA GPU: True unless it is Linux with no NVIDIA driver or device.

    Looks for the driver's ``/proc/driver/nvidia``, a ``/dev/nvidia<N>``
    device, or WSL's ``/dev/dxg``; imports and calls nothing.
    """
    if not sys.platform.startswith("linux"):
        return True  # nothing cheap tells; leave TensorFlow as it is
    dev = Path("/dev")
    return Path("/proc/driver/nvidia").exists() or (dev / "dxg").exists() or any(dev.glob("nvidia[0-9]*"))


@contextlib.contextmanager
def _stderr_without(marker: bytes) -> Iterator[None]:
    """Send what is written to file descriptor 2 (C++ logs included) through, less the lines holding ``marker``.

    The output is held in a temporary file while the block runs and written
    back when it ends, in order; if descriptor 2 cannot be redirected, the
    block runs with it untouched.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held.read().splitlines(keepends=True) if marker not in line)
            while kept:
                kept = kept[os.write(2, kept) :]


def initialise_tensorflow_devices() -> None:
    """On a machine without an NVIDIA driver, let TensorFlow find its devices now, without the cuInit error.

    TensorFlow's CUDA build calls ``cuInit`` when it first lists devices and
    logs ``failed call to cuInit: ... (303)`` where there is no driver: an
    error that says only that there is no GPU. Where
    :func:`nvidia_driver_present` finds no driver, and ``TF_CPP_MIN_LOG_LEVEL``
    is 2 (tlcore's default) or unset, that one line is dropped and anything
    else TensorFlow prints meanwhile still shows. A lower level the user set
    (asking for TensorFlow's information and warnings) keeps it; a machine
    with a driver, or with ``CUDA_VISIBLE_DEVICES`` hiding its GPUs, is left
    exactly as TensorFlow behaves (its devices found on first use, as
    always). Does nothing outside TensorFlow.
    """
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip()
    if framework() != "tensorflow" or level != "2" or nvidia_driver_present():
        return
    import tensorflow as tf

    with _stderr_without(CUINIT_MESSAGE):
        tf.config.list_physical_devices()


initialise_tensorflow_devices()
