"""What plugins register, besides :class:`~tlcore.BackboneSpec`."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImportConflict:
    """A module which, imported before a backend's framework, makes that backend crash the process.

    While ``module`` is in ``sys.modules`` and none of ``unless_loaded`` is,
    :func:`tlcore.get_backend` refuses the backend with a
    :class:`tlcore.BackendConflictError` instead of letting it load and
    crash. ``unless_loaded`` names the backend's own modules that make it
    safe once they are loaded (loaded before ``module``, or the process
    would not be alive); the first is the one the error tells the user to
    import first. ``reason`` says what crashes, for the error message.
    Only ``sys.modules`` is read: nothing is imported to find out.
    """

    module: str
    reason: str
    unless_loaded: tuple[str, ...] = ()

    def applies(self, loaded: Container[str]) -> bool:
        """Whether loading the backend now would crash, given the names of the ``loaded`` modules."""
        return self.module in loaded and not any(name in loaded for name in self.unless_loaded)


@dataclass(frozen=True)
class BackendInfo:
    """A backend: its name, the modules it needs, and where its class lives.

    ``loader`` is ``"module:Class"``; it is imported only when the backend is
    first used, so registering a backend imports no framework. ``conflicts``
    lists the modules that, already imported, make loading this backend crash
    the process (see :class:`ImportConflict`).
    """

    name: str
    loader: str
    requires: tuple[str, ...] = ()
    description: str = ""
    install_hint: str = ""
    conflicts: tuple[ImportConflict, ...] = ()


@dataclass(frozen=True)
class HeadInfo:
    """A named head preset: ``factory(num_outputs=..., **options) -> HeadSpec``."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class FreezePolicyInfo:
    """A named freeze policy: ``factory(**options) -> FreezePolicy``."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: ``loader(**options) -> DatasetSource``, or its ``"module:function"`` path.

    The loader returns a :class:`tlcore.data.DatasetSource` (its data and
    any official test split), never a bare ``Dataset``. The options a recipe
    gives (``[data] options``) are checked against the loader's keyword
    parameters and their annotations before it is called, so annotate them
    (``path: str | Path``). ``requires`` lists the modules it imports; when
    one is missing the user is told to run ``install_hint``.
    """

    name: str
    loader: Callable[..., Any] | str
    description: str = ""
    requires: tuple[str, ...] = ()
    install_hint: str = ""


@dataclass(frozen=True)
class BuilderInfo:
    """How one backend builds one backbone: ``builder`` is ``"module:function"``.

    The function is imported only when the backbone is first built on that
    backend, and is called as ``builder(request)`` with a
    :class:`tlcore.extend.BuildRequest`; it returns a
    :class:`tlcore.extend.BuiltBackbone` (see :mod:`tlcore.extend`).
    """

    backbone: str
    backend: str
    builder: str
    description: str = ""


@dataclass(frozen=True)
class CommandInfo:
    """A ``tlcore`` subcommand.

    ``configure(parser)`` adds the command's arguments to its
    ``argparse.ArgumentParser``; ``run(args)`` runs it and returns the exit
    code. Either may be a ``"module:function"`` path, imported only when the
    command is used (``tlcore --help`` then imports nothing heavy).
    """

    name: str
    help: str
    configure: Callable[[Any], None] | str
    run: Callable[[Any], int] | str
