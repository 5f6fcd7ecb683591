"""The tlcore exception tree, documented in one place.

Every error a user can cause derives from :class:`TLCoreError` and says what
was expected, what was received and, where it can, how to fix it::

    TLCoreError
    ├── ConfigError                 a value given to tlcore is not allowed
    │   ├── RecipeError             a recipe key, type or value is wrong
    │   └── UnknownNameError        a name is not registered (did-you-mean)
    │       ├── UnknownBackendError
    │       ├── UnknownBackboneError
    │       ├── UnknownHeadError
    │       ├── UnknownFreezePolicyError
    │       └── UnknownDatasetError
    ├── DataError                   images or labels are unusable
    ├── WeightsError                weights cannot be found, verified or loaded
    ├── CheckpointError             a saved model cannot be written or read
    ├── BackendUnavailableError     a backend's framework is not installed
    ├── BackendConflictError        a backend would crash beside a framework already imported
    ├── RunFolderError              --out is locked by another run, holds a finished run, or is not writable
    └── PluginError                 a plugin failed to load or misbehaved
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendConflictError",
    "BackendUnavailableError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "PluginError",
    "RecipeError",
    "RunFolderError",
    "TLCoreError",
    "UnknownBackboneError",
    "UnknownBackendError",
    "UnknownDatasetError",
    "UnknownFreezePolicyError",
    "UnknownHeadError",
    "UnknownNameError",
    "WeightsError",
]


class TLCoreError(Exception):
    """Base class of every error that tlcore raises for a user mistake."""


class ConfigError(TLCoreError, ValueError):
    """A value given to tlcore is not one it accepts."""


class RecipeError(ConfigError):
    """A recipe has an unknown key, a value of the wrong type or a bad value."""


class DataError(TLCoreError, ValueError):
    """Images or labels cannot be used as given (rank, channels, range, emptiness)."""


class WeightsError(TLCoreError):
    """Pretrained weights cannot be found, verified or loaded."""


class CheckpointError(TLCoreError):
    """A saved model cannot be written or read back."""


class BackendUnavailableError(TLCoreError, ImportError):
    """A backend was asked for but its framework is not installed."""


class RunFolderError(TLCoreError):
    """The output folder cannot be used: another run holds it, a finished run is in the way, or it is not writable."""


class BackendConflictError(TLCoreError):
    """A backend cannot be loaded in this process: a framework already imported would make it crash.

    ``backend`` is the backend asked for, ``module`` the module already
    imported. The message says the order that crashes and the fix (the
    backend in a process of its own, or the safe import order).
    """

    def __init__(self, message: str, *, backend: str = "", module: str = "") -> None:
        super().__init__(message)
        self.backend = backend
        self.module = module


class PluginError(TLCoreError):
    """A plugin failed to import or registered something invalid."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""``."""
    matches = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


class UnknownNameError(ConfigError, KeyError):
    """A name (backend, backbone, head, policy, dataset) is not registered."""

    kind = "name"

    def __init__(self, name: str, available: Iterable[str], *, where: str = "") -> None:
        self.name = name
        self.available = sorted(set(available))
        place = f" on {where}" if where else ""
        listing = ", ".join(self.available) if self.available else "none"
        message = f"no {self.kind} {name!r}{place}.{did_you_mean(name, self.available)} Available{place}: {listing}."
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class UnknownBackendError(UnknownNameError):
    """No backend of that name is registered."""

    kind = "backend"


class UnknownBackboneError(UnknownNameError):
    """No backbone of that name is registered for the backend."""

    kind = "backbone"


class UnknownHeadError(UnknownNameError):
    """No head preset of that name is registered."""

    kind = "head"


class UnknownFreezePolicyError(UnknownNameError):
    """No freeze policy of that name is registered."""

    kind = "freeze policy"


class UnknownDatasetError(UnknownNameError):
    """No dataset of that name is registered."""

    kind = "dataset"
