"""keras-tensorflow on a machine without an NVIDIA driver prints no ``cuInit`` error, unless the user asks for logs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.processes import framework_env

SCRIPT = (
    "from tlcore_keras import frameworks\n"
    "import tensorflow as tf\n"
    "print(frameworks.nvidia_driver_present(), tf.test.is_built_with_cuda(), frameworks.device())\n"
    "import sys; print('after the devices', file=sys.stderr)\n"
)


def _run(**env: str) -> tuple[bool, str]:
    """Whether TensorFlow is a CUDA build, and the process's stderr; skips where there is an NVIDIA driver."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**framework_env(), "KERAS_BACKEND": "tensorflow", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    driver, cuda_build, device = done.stdout.split()
    if driver == "True":
        pytest.skip("this machine has an NVIDIA driver: TensorFlow's messages are left as they are")
    assert device == "cpu"
    return cuda_build == "True", done.stderr


@pytest.mark.slow  # imports TensorFlow in a fresh process, twice: about 25 s
@pytest.mark.requires("tensorflow", "keras")
def test_no_cuinit_error_without_a_driver_and_the_users_log_level_is_respected() -> None:
    cuda_build, quiet = _run(TF_CPP_MIN_LOG_LEVEL="2")
    assert "cuInit" not in quiet
    assert "after the devices" in quiet  # stderr still works after TensorFlow found its devices
    _, verbose = _run(TF_CPP_MIN_LOG_LEVEL="0")  # the user asked for TensorFlow's logs: nothing is dropped
    if cuda_build:
        assert "failed call to cuInit" in verbose
