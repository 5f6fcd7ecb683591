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
