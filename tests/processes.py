"""The environment of a test's framework process (one per framework: torchvision and TensorFlow must not meet)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def framework_env(keras_home: Path | None = None) -> dict[str, str]:
    """This environment plus the repository on ``PYTHONPATH``, no GPU (float32 parity: GPUs may use TF32),
    quiet TensorFlow, and ``KERAS_HOME`` when given (Keras writes its config and downloads there)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "backends"), env.get("PYTHONPATH", "")])
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if keras_home is not None:
        env["KERAS_HOME"] = str(keras_home)
    return env
