"""The environment of a test's framework process (one per framework: torchvision and TensorFlow must not meet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def run_keras_script(script: str, framework: str, folder: Path, timeout: float) -> dict[str, Any]:
    """Run ``python SCRIPT FILE`` with ``KERAS_BACKEND=framework`` in a process of its own; the JSON it wrote to FILE.

    Keras holds one backend per process, so a test of one Keras backend runs its body this way.
    """
    out = folder / "report.json"
    env = {**framework_env(folder / "keras_home"), "KERAS_BACKEND": framework}
    done = subprocess.run([sys.executable, script, str(out)], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report
