"""Resuming: a run interrupted after any epoch and resumed ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tlcore

from .conftest import build, make_tiny, options


class _Interrupted(Exception):
    """Stands in for the process dying after an epoch's state was written."""


def _phases() -> list[tlcore.Phase]:
    # A cached head phase, then fine-tuning with augmentation, dropout, a schedule, early stopping and keep-best:
    # every kind of state a resumed epoch depends on.
    return [
        tlcore.Phase(name="head", freeze=tlcore.Frozen(), epochs=2, learning_rate=1e-2, augment=False),
        tlcore.Phase(
            name="tune",
            freeze=tlcore.FineTuneAt("stage6"),
            epochs=3,
            learning_rate=1e-3,
            schedule="cosine",
            keep_best=True,
            early_stopping=tlcore.EarlyStopping(monitor="val_accuracy", patience=3),
        ),
    ]


def _train(backend: tlcore.Backend, state: Path, *, stop_after: tuple[int, int] | None = None) -> tlcore.Model:
    backend.seed(0)
    tiny = make_tiny(backend, augment=True)
    model = build(backend, tiny, dropout=0.3)
    trainer = backend.make_trainer(model, options(state_dir=str(state), resume=True, fingerprint="run=1"))
    phases = {phase.name: index for index, phase in enumerate(_phases())}

    def on_epoch(record: tlcore.PhaseHistory, epoch: tlcore.EpochRecord) -> None:
        if stop_after == (phases[record.name], epoch.epoch):
            raise _Interrupted

    trainer.fit(tiny.train, _phases(), validation=tiny.validation, on_epoch=on_epoch)
    return model


_UNINTERRUPTED: dict[str, dict[str, np.ndarray]] = {}


def _uninterrupted(backend: tlcore.Backend, folder: Path) -> dict[str, np.ndarray]:
    """The final weights of the run without interruption, trained once per backend (Keras compiles slowly)."""
    if backend.name not in _UNINTERRUPTED:
        _UNINTERRUPTED[backend.name] = _train(backend, folder).state()
    return _UNINTERRUPTED[backend.name]


@pytest.mark.parametrize(
    ("interrupt_at", "saved"),
    [((1, 0), (0, 2, True)), ((1, 2), (1, 2, False))],
    ids=["after-head", "in-tune"],
)
def test_an_interrupted_run_resumes_to_the_same_weights(
    backend: tlcore.Backend, tmp_path: Path, interrupt_at: tuple[int, int], saved: tuple[int, int, bool]
) -> None:
    whole = _uninterrupted(backend, tmp_path / "whole")
    # The state of an epoch is written after its callback: dying there leaves the state of the epoch before.
    with pytest.raises(_Interrupted):
        _train(backend, tmp_path / "cut", stop_after=interrupt_at)
    state = json.loads((tmp_path / "cut" / "state.json").read_text())
    assert (state["phase"], state["epochs_done"], state["phase_finished"]) == saved
    resumed = _train(backend, tmp_path / "cut").state()
    assert whole.keys() == resumed.keys()
    different = [name for name in whole if not np.array_equal(whole[name], resumed[name])]
    assert not different, f"resumed weights differ in {len(different)} tensors, e.g. {different[:3]}"


def test_a_state_of_another_run_is_refused(backend: tlcore.Backend, tmp_path: Path) -> None:
    tiny = make_tiny(backend)
    phase = tlcore.Phase(name="head", freeze=tlcore.Frozen(), epochs=1, learning_rate=1e-2)
    model = build(backend, tiny)
    backend.make_trainer(model, options(state_dir=str(tmp_path), fingerprint="recipe=a;data=x")).fit(
        tiny.train, [phase]
    )
    other = backend.make_trainer(model, options(state_dir=str(tmp_path), resume=True, fingerprint="recipe=b;data=x"))
    with pytest.raises(tlcore.CheckpointError, match=r"belongs to another run: it differs in recipe\. Resume with"):
        other.fit(tiny.train, [phase])
