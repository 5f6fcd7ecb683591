"""What plugins register, besides :class:`~tlcore.BackboneSpec`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackendInfo:
    """A backend: its name, the modules it needs, and where its class lives.

    ``loader`` is ``"module:Class"``; it is imported only when the backend is
    first used, so registering a backend imports no framework.
    """

    name: str
    loader: str
    requires: tuple[str, ...] = ()
    description: str = ""
    install_hint: str = ""


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
    """A named dataset: ``loader(**options) -> Dataset`` (or a ``"module:function"`` path)."""

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
