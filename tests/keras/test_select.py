"""Keras backend selection: one Keras backend per process, no config in the user's home."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("keras", "jax")

CONFLICT = """
import tlcore
tlcore.get_backend("keras-jax")
try:
    tlcore.get_backend("keras-tensorflow")
except tlcore.TLCoreError as error:
    print(type(error).__name__ + ": " + str(error))
"""


def _run(code: str, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", "KERAS_BACKEND", "TLCORE_CACHE")}
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home / "cache")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return result.stdout.strip()


def test_second_keras_backend_in_one_process_is_refused(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs tensorflow registered as installed")
    printed = _run(CONFLICT, tmp_path)
    assert printed.startswith("KerasBackendConflictError: Keras is already loaded with the 'jax' backend")
    assert "keras-tensorflow was asked for" in printed and "its own process" in printed


def test_keras_config_is_not_written_to_the_home_folder(tmp_path: Path) -> None:
    code = "import tlcore; tlcore.get_backend('keras-jax'); import keras; print(keras.backend.backend())"
    printed = _run(code, tmp_path)
    assert printed == "jax"
    assert not (tmp_path / ".keras").exists(), "Keras must not create ~/.keras"
    assert (tmp_path / "cache" / "tlcore" / "keras" / "keras.json").exists()


def test_keras_backend_variable_is_set_before_keras_loads(tmp_path: Path) -> None:
    code = "import os, tlcore; tlcore.get_backend('keras-jax'); print(os.environ['KERAS_BACKEND'])"
    assert _run(code, tmp_path) == "jax"
