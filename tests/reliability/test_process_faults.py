"""A backend that would crash beside a framework already imported is refused, never a segmentation fault.

On this stack ``import tensorflow`` and then torch's compiler stack (torch._dynamo and triton, which
torchvision and torch.optim import) is a segmentation fault. The guard reads ``sys.modules`` only, so
the fast tests put a fake module there; the slow ones run the real order in a process of their own.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable

import pytest

import tlcore
from tests.processes import framework_env
from tlcore import _backend
from tlcore.plugins import BackendInfo, ImportConflict, hookimpl, load_plugins, register_plugin

pytestmark = pytest.mark.usefixtures("fresh_plugins")

CONFLICT = ImportConflict(
    "tlcore_test_framework_a",
    reason="framework b crashes when framework a's native library was loaded first",
    unless_loaded=("tlcore_test_framework_b_stack", "tlcore_test_framework_b_native"),
)
REFUSAL = (
    "backend 'crashy' cannot be loaded in this process: 'tlcore_test_framework_a' is already imported, and "
    "framework b crashes when framework a's native library was loaded first. tlcore refuses rather than let the "
    "process crash. Run the crashy backend in a process of its own (one `tlcore run` per backend; `tlcore bench` "
    "already runs each backend in its own process), or import tlcore_test_framework_b_stack before "
    "tlcore_test_framework_a."
)


@pytest.fixture
def crashy(fresh_plugins: None) -> None:
    """A backend ``crashy`` that conflicts with ``tlcore_test_framework_a``; its loader does not exist."""

    @hookimpl
    def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
        register(BackendInfo(name="crashy", loader="tlcore_test_no_such_backend:Crashy", conflicts=(CONFLICT,)))

    register_plugin(types.SimpleNamespace(tlcore_register_backends=tlcore_register_backends), name="crashy-plugin")


@pytest.fixture
def unloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """No backend loaded yet in this process (the real ones come back after the test)."""
    monkeypatch.setattr(_backend._Loaded, "backends", {})


@pytest.mark.usefixtures("crashy")
def test_a_conflicting_module_already_imported_refuses_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tlcore_test_framework_a", types.ModuleType("tlcore_test_framework_a"))
    with pytest.raises(tlcore.BackendConflictError) as caught:
        tlcore.get_backend("crashy")
    assert str(caught.value) == REFUSAL
    assert (caught.value.backend, caught.value.module) == ("crashy", "tlcore_test_framework_a")
    assert isinstance(caught.value, tlcore.TLCoreError)
    assert "tlcore_test_no_such_backend" not in sys.modules


@pytest.mark.usefixtures("crashy")
def test_without_the_conflicting_module_the_backend_loads_as_usual() -> None:
    assert "tlcore_test_framework_a" not in sys.modules
    with pytest.raises(tlcore.PluginError, match="cannot import 'tlcore_test_no_such_backend:Crashy'"):
        tlcore.get_backend("crashy")  # the guard let it through: the loader was tried


@pytest.mark.parametrize("safe", ["tlcore_test_framework_b_stack", "tlcore_test_framework_b_native"])
@pytest.mark.usefixtures("crashy")
def test_the_safe_order_is_allowed(monkeypatch: pytest.MonkeyPatch, safe: str) -> None:
    monkeypatch.setitem(sys.modules, "tlcore_test_framework_a", types.ModuleType("tlcore_test_framework_a"))
    monkeypatch.setitem(sys.modules, safe, types.ModuleType(safe))
    with pytest.raises(tlcore.PluginError, match="cannot import"):
        tlcore.get_backend("crashy")


def test_the_torch_backend_declares_tensorflow_and_the_keras_backends_nothing() -> None:
    """keras-torch cannot meet the crash: ``import tensorflow`` loads Keras on TensorFlow, and Keras then refuses
    another backend in that process (see the slow test), so it declares nothing."""
    registry = load_plugins()
    (torch,) = registry.backend("torch").conflicts
    assert (torch.module, torch.unless_loaded) == ("tensorflow", ("torch._dynamo", "triton"))
    assert all(registry.backend(f"keras-{framework}").conflicts == () for framework in ("jax", "tensorflow", "torch"))


def _fake_tensorflow_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.modules as after ``import tensorflow`` in a process that has not loaded torch's compiler stack."""
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    for name in ("torch._dynamo", "triton"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.requires("torch", "torchvision")
@pytest.mark.usefixtures("unloaded")
def test_torch_after_tensorflow_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tensorflow_first(monkeypatch)
    with pytest.raises(tlcore.BackendConflictError) as caught:
        tlcore.get_backend("torch")
    message = str(caught.value)
    assert message.startswith(
        "backend 'torch' cannot be loaded in this process: 'tensorflow' is already imported, and torch's compiler "
        "stack (torch._dynamo and triton's native library, which importing torchvision or using torch.optim loads) "
        "crashes the process with a segmentation fault when it is loaded after TensorFlow"
    )
    assert message.endswith(
        "Run the torch backend in a process of its own (one `tlcore run` per backend; `tlcore bench` already runs "
        "each backend in its own process), or import torch._dynamo before tensorflow."
    )


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=framework_env(), capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow  # imports TensorFlow, then torch, in a fresh process: about 15 s
@pytest.mark.requires("tensorflow", "torch", "torchvision")
def test_real_tensorflow_then_torch_is_an_error_not_a_crash() -> None:
    done = _run(
        "import tensorflow, tlcore\n"
        "try:\n"
        "    tlcore.get_backend('torch')\n"
        "except tlcore.BackendConflictError as error:\n"
        "    print('refused:', error)\n"
    )
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert "refused: backend 'torch' cannot be loaded in this process: 'tensorflow' is already imported" in done.stdout


@pytest.mark.slow  # about 20 s
@pytest.mark.requires("tensorflow", "torch", "keras")
def test_real_tensorflow_then_keras_torch_is_an_error_not_a_crash() -> None:
    """``import tensorflow`` loads Keras on TensorFlow: keras-torch is refused by Keras's one backend per process."""
    done = _run(
        "import tensorflow, tlcore\n"
        "try:\n"
        "    tlcore.get_backend('keras-torch')\n"
        "except tlcore.TLCoreError as error:\n"
        "    print('refused:', type(error).__name__, error)\n"
    )
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert "refused: KerasBackendConflictError Keras is already loaded with the 'tensorflow' backend" in done.stdout


@pytest.mark.slow  # about 20 s
@pytest.mark.requires("tensorflow", "torch", "torchvision")
def test_real_safe_order_loads_and_trains() -> None:
    """The order the error advises works: torch._dynamo before tensorflow, then torch trains an Adam step."""
    done = _run(
        "import torch._dynamo, tensorflow, tlcore, torch\n"
        "tlcore.get_backend('torch')\n"
        "import torchvision\n"
        "layer = torch.nn.Linear(3, 2)\n"
        "adam = torch.optim.Adam(layer.parameters())\n"
        "layer(torch.ones(1, 3)).sum().backward()\n"
        "adam.step()\n"
        "print('trained')\n"
    )
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert "trained" in done.stdout
