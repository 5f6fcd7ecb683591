"""Run folders: a finished run is never damaged, one run at a time, and a killed run resumes to the same end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.processes import framework_env
from tlcore._cli import main
from tlcore._runfolder import RunFolder

RECIPE = """
name = "tiny-runs"
seed = 3

[backbone]
name = "efficientnet_lite0"
weights = "none"

[head]
preset = "linear"
dropout = 0.3

[data]
dataset = "digits"
image_size = 32
labels_per_class = 8
validation_per_class = 4
test_fraction = 0.5
batch_size = 16
augmentation = { shift = 2 }

[[phases]]
name = "head"
freeze = "frozen"
augment = false
epochs = 2
learning_rate = 3e-3

[[phases]]
name = "tune"
freeze = { policy = "fine_tune_at", at = "stage6" }
epochs = EPOCHS
learning_rate = 1e-3
schedule = "cosine"
keep_best = true
"""

pytestmark = pytest.mark.requires("torch", "sklearn")


def _recipe(folder: Path, epochs: int = 2, learning_rate: str = "1e-3") -> Path:
    path = folder / f"recipe-{epochs}-{learning_rate}.toml"
    path.write_text(
        RECIPE.replace("EPOCHS", str(epochs)).replace("learning_rate = 1e-3", f"learning_rate = {learning_rate}")
    )
    return path


def _run(recipe: Path, out: Path, *extra: str) -> int:
    return main(["run", str(recipe), "--backend", "torch", "--out", str(out), "--no-progress", *extra])


def test_a_finished_run_is_replaced_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(_recipe(tmp_path), out) == 0
    first = (out / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert _run(_recipe(tmp_path, learning_rate="3e-4"), out) == 2
    error = capsys.readouterr().err
    assert f"{out} holds a finished run (recipe 'tiny-runs' on torch); pass --overwrite to replace it" in error
    assert "Traceback" not in error
    assert (out / "model.safetensors").read_bytes() == first
    assert _run(_recipe(tmp_path, learning_rate="3e-4"), out, "--overwrite") == 0
    record = json.loads((out / "result.json").read_text())
    assert (
        record["model_file"] == str(out / "model.safetensors") and (out / "checkpoints" / "best.safetensors").is_file()
    )
    assert (out / "model.safetensors").read_bytes() != first
    assert not (out / ".partial").exists()


def test_a_second_run_into_a_held_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with RunFolder(out):
        assert _run(_recipe(tmp_path), out) == 2
    error = capsys.readouterr().err
    assert f"{out} is in use by another tlcore run (pid " in error and "choose another --out" in error
    assert not (out / "result.json").exists()
    assert _run(_recipe(tmp_path), out) == 0  # released


def test_nothing_to_resume_and_a_state_of_another_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(_recipe(tmp_path), out, "--resume") == 2
    assert f"there is no unfinished run to resume in {out}" in capsys.readouterr().err
    with RunFolder(out) as folder:  # a state left by a run of another recipe
        folder.state_dir.mkdir(parents=True)
        state = {"version": 1, "phase": 1, "epochs_done": 1, "phase_finished": False, "backend_file": "backend-x.pt"}
        state |= {"fingerprint": "recipe=0;backend=0;weights=0;data=0", "history": []}
        (folder.state_dir / "state.json").write_text(json.dumps(state))
    assert _run(_recipe(tmp_path), out) == 2
    error = capsys.readouterr().err
    assert "belongs to another run: it differs in backend, data, recipe, weights" in error and "--restart" in error
    assert _run(_recipe(tmp_path), out, "--restart") == 0


def _kill_after_first_tune_epoch(command: list[str], out: Path) -> None:
    """Start ``command``, SIGKILL it once the fine-tuning phase's first epoch has its resumable state."""
    process = subprocess.Popen(command, env=framework_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / ".partial" / "resume" / "state.json"
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        try:
            saved = json.loads(state.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("phase") == 1 and not saved.get("phase_finished") and saved.get("epochs_done", 0) >= 1:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-phase"


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes_to_the_same_weights(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    recipe = _recipe(tmp_path, epochs=4)
    whole, cut = tmp_path / "whole", tmp_path / "cut"

    def command(out: Path) -> list[str]:
        tlcore = str(Path(sys.executable).parent / "tlcore")
        return [tlcore, "run", str(recipe), "--backend", "torch", "--out", str(out)]

    subprocess.run([*command(whole), "--no-progress"], env=framework_env(), check=True, capture_output=True)
    _kill_after_first_tune_epoch(command(cut), cut)
    assert not (cut / "result.json").exists() and (cut / ".partial" / "resume" / "state.json").is_file()
    done = subprocess.run([*command(cut), "--no-progress"], env=framework_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed after epoch" in done.stdout and "of phase 'tune'" in done.stdout
    first, second = json.loads((whole / "result.json").read_text()), json.loads((cut / "result.json").read_text())
    assert (first["test_accuracy"], first["test_loss"]) == (second["test_accuracy"], second["test_loss"])
    a, b = load_file(whole / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
