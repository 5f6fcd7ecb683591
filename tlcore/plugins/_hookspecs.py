"""The hook specifications: one ``tlcore_register_<things>(register)`` per registry.

The host passes a ``register`` callback; an implementation calls it once per
thing it provides and returns nothing. Hooks are always called by keyword.

Names are unique, and never replaced. Within each kind (backends, backbones,
builders, heads, freeze policies, datasets, commands; a builder's name is its
``(backbone, backend)`` pair) the first registration of a name stays and a
later one is refused: a :class:`~tlcore.PluginError` naming the name and both
plugins, recorded in ``Registry.failures`` and warned about, while that
plugin's other registrations still count. There is no override flag, on
purpose: a recipe and its ``result.json`` name policies, heads and backbones,
and a name must mean the same thing whichever plugins are installed (a
plugin's ``frozen`` that trained every layer would be recorded as
``frozen``). A plugin that wants other behaviour registers it under a new
name. The core's built-in plugin registers first, so its names always stay;
``tryfirst``/``trylast`` do not change the order, and wrappers are refused.

A plugin implementing a hook that is not specified here (a misspelt
``tlcore_register_freez_policies``) is reported by name and not loaded at
all; the other plugins keep working.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from tlcore._specs import BackboneSpec
from tlcore.plugins._infos import BackendInfo, BuilderInfo, CommandInfo, DatasetInfo, FreezePolicyInfo, HeadInfo

PROJECT = "tlcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
    """Register backends (a name, the modules it needs, a lazy loader path)."""


@hookspec
def tlcore_register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Register neutral backbone specs (one per architecture and name, whichever backends build it)."""


@hookspec
def tlcore_register_builders(register: Callable[[BuilderInfo], None]) -> None:
    """Register builders: how one backend builds one backbone (a lazy ``"module:function"`` path)."""


@hookspec
def tlcore_register_heads(register: Callable[[HeadInfo], None]) -> None:
    """Register head presets (named factories of :class:`~tlcore.HeadSpec`)."""


@hookspec
def tlcore_register_freeze_policies(register: Callable[[FreezePolicyInfo], None]) -> None:
    """Register freeze policies (named factories of :class:`~tlcore.FreezePolicy`)."""


@hookspec
def tlcore_register_datasets(register: Callable[[DatasetInfo], None]) -> None:
    """Register datasets: named loaders, ``loader(**options)``, returning a :class:`~tlcore.data.DatasetSource`.

    A :class:`~tlcore.data.DatasetSource` holds the training data and, if the
    source has one, its official test split; a loader with one
    :class:`~tlcore.data.Dataset` returns ``DatasetSource(train=dataset)``.
    Anything else is refused with a :class:`~tlcore.PluginError` naming the
    plugin and the dataset.
    """


@hookspec
def tlcore_register_commands(register: Callable[[CommandInfo], None]) -> None:
    """Register ``tlcore`` subcommands (a name, its arguments and what it runs)."""
