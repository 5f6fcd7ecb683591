"""Step equality: identical weights and identical batches give the same parameters after a few steps.

The torch backend is the reference. In a process of its own (torchvision and
TensorFlow must not share one), it builds efficientnet_lite0 with seeded
random weights and a head from the core's seeded draw, saves that model, and
for each case below takes one epoch of three optimizer steps on the tiny task
(the core's seeded batches, BatchNorm in inference mode) and saves the result.
The backend under test loads the saved model, takes the same steps and must
end with the same parameters and BatchNorm statistics:

- max abs difference <= 1e-4 on every element (measured: at most 7.4e-6,
  against updates of up to 2e-3), and
- the difference is at most 1e-3 of the update, in L2 norm over all tensors
  (measured: 1e-6 to 2.6e-4).

``pytest -s tests/contract/test_step_parity.py --backend NAME`` prints both.

The cases cover SGD with momentum (and Nesterov), Adam and AdamW, each with the
whole backbone training and with a frozen part (up to ``stage5``), plus
per-group learning rates, layer-wise decay and a cosine schedule. The test
fails with Keras's own AdamW (epsilon added before the bias correction: max
difference 7.7e-4, 0.58 of the update) and without the per-group factors
(6 times the update).

Why random weights: in a randomly initialised EfficientNet with fresh
BatchNorm statistics the activations shrink towards the top, so a few steps
stay close to linear and compare the optimizers' arithmetic exactly. With
ImageNet weights (or calibrated statistics) every ReLU6 input that sits
within rounding of 0 or 6 switches a gradient on or off, and float32
differences between frameworks grow to 1e-4..1e-2 of the update within three
steps; those regimes are compared by whole runs over seeds instead.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tlcore
from tests.processes import framework_env
from tlcore._checkpoint import read_checkpoint

from .conftest import make_tiny, options

ROOT = Path(__file__).resolve().parents[2]
MAX_ABS = 1e-4
MAX_RELATIVE = 1e-3


def cases() -> dict[str, tlcore.Phase]:
    """The phases each backend runs from the same saved model."""
    sgd = {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 1e-3}
    adam = {"optimizer": "adam", "learning_rate": 3e-4, "weight_decay": 1e-3}
    adamw = {"optimizer": "adamw", "learning_rate": 3e-4, "weight_decay": 1e-2}
    full, part = tlcore.Unfrozen(), tlcore.FineTuneAt("stage5")
    phases = {
        "sgd-full": tlcore.Phase(freeze=full, **sgd),  # type: ignore[arg-type]
        "sgd-nesterov-part": tlcore.Phase(freeze=part, **sgd, nesterov=True),  # type: ignore[arg-type]
        "adam-full": tlcore.Phase(freeze=full, **adam),  # type: ignore[arg-type]
        "adam-part": tlcore.Phase(freeze=part, **adam),  # type: ignore[arg-type]
        "adamw-full": tlcore.Phase(freeze=full, **adamw),  # type: ignore[arg-type]
        "adamw-part": tlcore.Phase(freeze=part, **adamw),  # type: ignore[arg-type]
        "adamw-groups-cosine": tlcore.Phase(
            freeze=full, **adamw, schedule="cosine", lr_multipliers={"backbone": 0.1, "head": 2.0}, layer_lr_decay=0.8
        ),  # type: ignore[arg-type]
    }
    return {name: dataclasses.replace(phase, name=name, keep_best=False) for name, phase in phases.items()}


def take_steps(backend: tlcore.Backend, folder: Path, case: str) -> tlcore.Model:
    """Load the reference's starting model and run ``case`` on the tiny task."""
    model = backend.load_model(folder / "start.safetensors")
    backend.make_trainer(model, options()).fit(make_tiny(backend).train, [cases()[case]])
    return model


def write_reference(folder: str) -> None:
    """The reference process: the starting model and every case's result, by the torch backend."""
    backend = tlcore.get_backend("torch")
    tiny = make_tiny(backend)
    model = backend.build_model(tiny.spec, tlcore.HeadSpec(num_outputs=3), weights=None, seed=0, image_size=tiny.size)
    model.save(Path(folder) / "start.safetensors")
    for case in cases():
        take_steps(backend, Path(folder), case).save(Path(folder) / f"{case}.safetensors")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the reference steps are taken by the torch backend, which is not installed")
    folder = tmp_path_factory.mktemp("step_parity")
    env = framework_env()
    script = "import sys; from tests.contract.test_step_parity import write_reference; write_reference(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise AssertionError(f"the torch reference process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return folder


@pytest.mark.parametrize("case", list(cases()))
def test_steps_match_the_torch_reference(backend: tlcore.Backend, reference: Path, case: str, tmp_path: Path) -> None:
    model = take_steps(backend, reference, case)
    _, start = read_checkpoint(reference / "start.safetensors")
    _, expected = read_checkpoint(reference / f"{case}.safetensors")
    _, got = read_checkpoint(model.save(tmp_path / "after.safetensors"))
    keys = sorted(k for k in expected if not k.endswith("num_batches_tracked"))
    assert keys == sorted(k for k in got if not k.endswith("num_batches_tracked"))
    update = np.concatenate([(expected[k] - start[k]).ravel() for k in keys])
    difference = np.concatenate([(got[k] - expected[k]).ravel() for k in keys])
    assert np.linalg.norm(update) > 0, "the reference steps changed nothing"
    worst = max(keys, key=lambda k: float(np.abs(got[k] - expected[k]).max()))
    worst_abs = float(np.abs(got[worst] - expected[worst]).max())
    assert worst_abs <= MAX_ABS, f"{worst}: max abs difference {worst_abs:.2e} > {MAX_ABS}"
    relative = float(np.linalg.norm(difference) / np.linalg.norm(update))
    print(f"{backend.name} {case}: max abs difference {worst_abs:.2e}, {relative:.2e} of the update")  # pytest -s
    assert relative <= MAX_RELATIVE, f"difference is {relative:.2e} of the update (> {MAX_RELATIVE})"
