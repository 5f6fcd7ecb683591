"""Resumable training state, written at the end of every epoch so that a killed run loses at most one epoch.

The state lives in one folder: ``state.json`` (the phase and epoch reached,
the history so far, the early-stopping and best-weights trackers, and a
fingerprint of what is being trained) and one file the backend writes with
its framework's own serialization (model, optimizer, schedule position,
random generators, the best-weights snapshot). The backend's file is written
first under a new name, then ``state.json`` naming it, each atomically, so a
kill at any moment leaves the previous pair or the new one, never a mix.

The data order and augmentation need no state: they are functions of the
seed and the epoch (:class:`tlcore.data.Batches`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlcore._errors import CheckpointError
from tlcore._io import write_json
from tlcore.training._history import EpochRecord, History, PhaseHistory

__all__ = ["STATE_FILE", "ResumePoint", "read_state", "write_state"]

STATE_FILE = "state.json"
FORMAT_VERSION = 1


@dataclass
class ResumePoint:
    """Where a run stopped: ``epochs_done`` epochs of phase ``phase`` (all of it when ``phase_finished``).

    ``best_value``, ``stale`` and ``has_snapshot`` are the running phase's
    trackers; ``history`` holds every phase begun, the running one included.
    """

    phase: int
    epochs_done: int
    phase_finished: bool
    history: History
    fingerprint: str
    backend_file: str
    best_value: float | None = None
    stale: int = 0
    has_snapshot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _history_from(data: list[dict[str, Any]]) -> History:
    phases = []
    for item in data:
        values = {k: v for k, v in item.items() if k not in ("epochs", "images_per_second")}
        epochs = [EpochRecord(**epoch) for epoch in item.get("epochs", [])]
        phases.append(PhaseHistory(**values, epochs=epochs))
    return History(phases=phases)


def write_state(directory: str | Path, point: ResumePoint, save_backend: Callable[[Path], None]) -> Path:
    """Write the backend's file (through ``save_backend``), then ``state.json`` naming it; remove older files."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    save_backend(folder / point.backend_file)
    record = {
        "version": FORMAT_VERSION,
        "phase": point.phase,
        "epochs_done": point.epochs_done,
        "phase_finished": point.phase_finished,
        "fingerprint": point.fingerprint,
        "backend_file": point.backend_file,
        "best_value": point.best_value,
        "stale": point.stale,
        "has_snapshot": point.has_snapshot,
        "extra": point.extra,
        "history": [asdict(p) for p in point.history.phases],
    }
    path = write_json(folder / STATE_FILE, record)
    for old in folder.glob("backend-*"):
        if old.name != point.backend_file:
            old.unlink(missing_ok=True)
    return path


def read_state(directory: str | Path, fingerprint: str) -> ResumePoint | None:
    """The state in ``directory``, or ``None`` if there is none; CheckpointError if it belongs to another run."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("version") != FORMAT_VERSION:
            raise CheckpointError(
                f"the resumable state {path} has format version {record.get('version')!r}; this tlcore writes "
                f"{FORMAT_VERSION}. Start over (tlcore run --restart)."
            )
        point = ResumePoint(
            phase=int(record["phase"]),
            epochs_done=int(record["epochs_done"]),
            phase_finished=bool(record["phase_finished"]),
            history=_history_from(record["history"]),
            fingerprint=str(record["fingerprint"]),
            backend_file=str(record["backend_file"]),
            best_value=record.get("best_value"),
            stale=int(record.get("stale", 0)),
            has_snapshot=bool(record.get("has_snapshot", False)),
            extra=dict(record.get("extra", {})),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"the resumable state {path} cannot be read ({error}). Start over with --restart."
        ) from None
    if point.fingerprint != fingerprint:
        raise CheckpointError(
            f"the resumable state in {directory} belongs to another run: {describe_difference(point, fingerprint)}. "
            "Resume with the same recipe, backend and versions, or start over (tlcore run --restart)."
        )
    if not (Path(directory) / point.backend_file).is_file():
        raise CheckpointError(
            f"the resumable state {path} names {point.backend_file}, which is missing; use --restart."
        )
    return point


def describe_difference(point: ResumePoint, fingerprint: str) -> str:
    """Which parts of the fingerprint differ (it is ``part=digest;part=digest...``)."""
    saved = dict(item.split("=", 1) for item in point.fingerprint.split(";") if "=" in item)
    now = dict(item.split("=", 1) for item in fingerprint.split(";") if "=" in item)
    differing = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    return "it differs in " + ", ".join(differing) if differing else "its fingerprint differs"
