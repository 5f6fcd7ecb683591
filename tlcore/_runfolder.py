"""The output folder of a run: locked while the run writes, never left disagreeing with itself.

A run owns ``OUT`` through a lock (``OUT/.lock``, an ``flock`` the kernel
releases when the process ends, even on ``kill -9``); a second run into the
same folder is refused, naming the holder. Everything in progress goes to
``OUT/.partial/``: the best checkpoint and the resumable state. Only when the
run has finished are its files moved into ``OUT`` (``result.json`` last), so
``OUT`` holds one whole finished run, or nothing yet, and a finished run is
replaced only when asked (``overwrite``).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import IO, Any

from tlcore._errors import RunFolderError, TLCoreError

__all__ = ["RESUME_MODES", "RunFolder"]

RESUME_MODES = ("auto", "require", "restart")
LOCK_FILE = ".lock"
PARTIAL = ".partial"
FINISHED_MARK = "result.json"


class RunFolder:
    """``out`` held for one run; use as a context manager.

    ``resume`` is ``"auto"`` (continue an unfinished run of the same recipe
    found there), ``"require"`` (fail when there is none) or ``"restart"``
    (discard it).
    """

    def __init__(self, out: str | Path, *, overwrite: bool = False, resume: str = "auto") -> None:
        if resume not in RESUME_MODES:
            raise TLCoreError(f"resume must be one of {', '.join(RESUME_MODES)}; got {resume!r}.")
        self.out = Path(out)
        self.overwrite = overwrite
        self.resume = resume
        self.partial = self.out / PARTIAL
        self._lock: IO[str] | None = None

    @property
    def checkpoints(self) -> Path:
        """Where the run's best checkpoint goes while it runs."""
        return self.partial / "checkpoints"

    @property
    def state_dir(self) -> Path:
        """Where the run's resumable state goes while it runs."""
        return self.partial / "resume"

    def has_state(self) -> bool:
        """Whether an unfinished run left a resumable state here."""
        return (self.state_dir / "state.json").is_file()

    def __enter__(self) -> RunFolder:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise RunFolderError(
                f"cannot write the output folder {str(self.out)!r} ({error.strerror or error}); "
                "choose an --out in a folder you can write."
            ) from None
        self._take_lock()
        try:
            self._check_finished()
            if self.resume == "restart":
                shutil.rmtree(self.partial, ignore_errors=True)
            elif self.resume == "require" and not self.has_state():
                raise RunFolderError(f"there is no unfinished run to resume in {self.out} (no {self.state_dir}).")
            self.checkpoints.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _take_lock(self) -> None:
        stream = open(self.out / LOCK_FILE, "a+")
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            stream.seek(0)
            holder = stream.read().strip() or "another process"
            stream.close()
            raise RunFolderError(
                f"{self.out} is in use by another tlcore run ({holder}); wait for it to finish or choose another --out."
            ) from None
        stream.seek(0)
        stream.truncate()
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        stream.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {' '.join(sys.argv)}")
        stream.flush()
        self._lock = stream

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.seek(0)
                self._lock.truncate()
            self._lock.close()
            self._lock = None

    def _check_finished(self) -> None:
        result = self.out / FINISHED_MARK
        if not result.is_file() or self.overwrite:
            return
        try:
            record: dict[str, Any] = json.loads(result.read_text())
            what = f"recipe {record.get('recipe')!r} on {record.get('backend')}"
        except (OSError, ValueError):
            what = "a result.json"
        raise RunFolderError(
            f"{self.out} holds a finished run ({what}); pass --overwrite to replace it, or choose another --out."
        )

    def finish(self, written: list[Path]) -> None:
        """Move the finished run's files (written under :attr:`partial`) into ``out``, ``result.json`` last.

        A finished run already there is replaced: its ``result.json`` goes first,
        so the folder never shows one run's result beside another's model.
        """
        (self.out / FINISHED_MARK).unlink(missing_ok=True)
        names = sorted({path.relative_to(self.partial).parts[0] for path in written}, key=lambda n: n == FINISHED_MARK)
        for name in ["checkpoints", *names]:
            source = self.partial / name
            if not source.exists():
                continue
            target = self.out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(source, target)
        shutil.rmtree(self.partial, ignore_errors=True)
