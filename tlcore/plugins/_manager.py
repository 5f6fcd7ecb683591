"""The plugin manager and the registry it fills.

Plugins come from the ``tlcore`` entry-point group (the built-in backends
too) plus the core's own built-in plugin. Loading is idempotent; the
``TLCORE_LOAD_PLUGINS`` variable (comma-separated entry-point names)
restricts which entry points load; a plugin that fails to import is reported
by name and the others keep working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import pluggy

from tlcore._errors import (
    PluginError,
    UnknownBackboneError,
    UnknownBackendError,
    UnknownDatasetError,
    UnknownFreezePolicyError,
    UnknownHeadError,
    UnknownNameError,
)
from tlcore._specs import BackboneSpec
from tlcore.plugins import _hookspecs
from tlcore.plugins._infos import BackendInfo, BuilderInfo, CommandInfo, DatasetInfo, FreezePolicyInfo, HeadInfo

ENTRY_POINT_GROUP = "tlcore"
ALLOW_LIST_VARIABLE = "TLCORE_LOAD_PLUGINS"

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A registered thing and the plugin that provided it."""

    item: T
    plugin: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    plugin: str
    error: str


class Registry:
    """Everything the loaded plugins registered, with lookups that fail helpfully."""

    def __init__(self) -> None:
        self.backends: dict[str, Registered[BackendInfo]] = {}
        self.backbones: dict[str, Registered[BackboneSpec]] = {}
        self.builders: dict[tuple[str, str], Registered[BuilderInfo]] = {}
        self.heads: dict[str, Registered[HeadInfo]] = {}
        self.freeze_policies: dict[str, Registered[FreezePolicyInfo]] = {}
        self.datasets: dict[str, Registered[DatasetInfo]] = {}
        self.commands: dict[str, Registered[CommandInfo]] = {}
        self.failures: list[PluginFailure] = []

    def backend(self, name: str) -> BackendInfo:
        """The backend registered under ``name``."""
        if name not in self.backends:
            raise UnknownBackendError(name, self.backends)
        return self.backends[name].item

    def backbones_on(self, backend: str) -> list[str]:
        """The names of the backbones that ``backend`` can build (a spec and a builder), sorted."""
        return sorted(name for (name, on) in self.builders if on == backend and name in self.backbones)

    def backends_of(self, backbone: str) -> list[str]:
        """The backends that have a builder for ``backbone``, sorted."""
        return sorted(on for (name, on) in self.builders if name == backbone)

    def backbone(self, name: str, backend: str | None = None) -> BackboneSpec:
        """The neutral spec of backbone ``name``; with ``backend``, only if that backend can build it."""
        if backend is None:
            if name not in self.backbones:
                raise UnknownBackboneError(name, self.backbones)
            return self.backbones[name].item
        self.backend(backend)
        if name not in self.backbones or (name, backend) not in self.builders:
            elsewhere = [b for b in self.backends_of(name) if name in self.backbones]
            error = UnknownBackboneError(name, self.backbones_on(backend), where=backend)
            if elsewhere:
                error.args = (f"{error.args[0]} {name!r} is built by: {', '.join(elsewhere)}.",)
            raise error
        return self.backbones[name].item

    def builder(self, name: str, backend: str) -> BuilderInfo:
        """How ``backend`` builds backbone ``name``."""
        self.backbone(name, backend)
        return self.builders[(name, backend)].item

    def command(self, name: str) -> CommandInfo:
        """The ``tlcore`` subcommand registered under ``name``."""
        if name not in self.commands:
            raise UnknownNameError(name, self.commands, where="the tlcore command line")
        return self.commands[name].item

    def head(self, name: str) -> HeadInfo:
        """The head preset registered under ``name``."""
        if name not in self.heads:
            raise UnknownHeadError(name, self.heads)
        return self.heads[name].item

    def freeze_policy(self, name: str) -> FreezePolicyInfo:
        """The freeze policy registered under ``name``."""
        if name not in self.freeze_policies:
            raise UnknownFreezePolicyError(name, self.freeze_policies)
        return self.freeze_policies[name].item

    def dataset(self, name: str) -> DatasetInfo:
        """The dataset registered under ``name``."""
        if name not in self.datasets:
            raise UnknownDatasetError(name, self.datasets)
        return self.datasets[name].item


class _State:
    lock = threading.Lock()
    manager: pluggy.PluginManager | None = None
    registry: Registry | None = None
    failures: ClassVar[list[PluginFailure]] = []


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ALLOW_LIST_VARIABLE)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _new_manager() -> tuple[pluggy.PluginManager, list[PluginFailure]]:
    manager = pluggy.PluginManager(_hookspecs.PROJECT)
    manager.add_hookspecs(_hookspecs)
    from tlcore import _builtin

    manager.register(_builtin, name="tlcore.builtin")
    failures: list[PluginFailure] = []
    allowed = _allow_list()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry_point.name not in allowed:
            continue
        if manager.has_plugin(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
        except Exception as exc:  # a broken plugin must not take the others down
            failures.append(PluginFailure(entry_point.name, f"{type(exc).__name__}: {exc}"))
            warnings.warn(
                f"tlcore plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a tlcore plugin implements an unknown hook: {exc}") from None
    return manager, failures


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first call."""
    with _State.lock:
        if _State.manager is None:
            _State.manager, _State.failures = _new_manager()
        return _State.manager


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object (module or instance) in this process, then refresh."""
    manager = get_plugin_manager()
    try:
        manager.register(plugin, name=name)
        manager.check_pending()
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from None
    with _State.lock:
        _State.registry = None


def reset_plugins() -> None:
    """Forget loaded plugins; the next call loads them again (for tests)."""
    with _State.lock:
        _State.manager = None
        _State.registry = None
        _State.failures = []


def _collect(
    manager: pluggy.PluginManager, hook_name: str, sink: Callable[[Any, str], None], failures: list[PluginFailure]
) -> None:
    """Call each plugin's implementation of ``hook_name``; a failing plugin is reported, the rest go on."""
    hook = getattr(manager.hook, hook_name)
    for impl in hook.get_hookimpls():
        accepted: list[Any] = []
        try:
            impl.function(register=accepted.append)
        except Exception as exc:  # a broken plugin must not take the others down
            _report(failures, impl.plugin_name, hook_name, exc)
            continue
        for item in accepted:
            try:
                sink(item, impl.plugin_name)
            except PluginError as exc:  # one bad item: the plugin's other items still count
                _report(failures, impl.plugin_name, hook_name, exc)


def _report(failures: list[PluginFailure], plugin: str, hook_name: str, exc: Exception) -> None:
    error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
    failures.append(PluginFailure(plugin, f"{hook_name}: {error}"))
    warnings.warn(f"tlcore plugin {plugin!r} failed in {hook_name}: {error}", RuntimeWarning, stacklevel=4)


def _expect(kind: type, item: object, plugin: str, hook: str) -> None:
    if not isinstance(item, kind):
        raise PluginError(f"plugin {plugin!r} registered {item!r} in {hook}; expected a {kind.__name__}.")


def load_plugins() -> Registry:
    """Load every plugin (once) and return the registry they filled.

    Importing a plugin module never imports a framework, so this is cheap.
    """
    manager = get_plugin_manager()
    with _State.lock:
        if _State.registry is not None:
            return _State.registry
    registry = Registry()
    registry.failures = list(_State.failures)

    def adder(
        kind: type, hook: str, table: dict[Any, Registered[Any]], key: Callable[[Any], Any]
    ) -> Callable[..., None]:
        def add(item: object, plugin: str) -> None:
            _expect(kind, item, plugin, hook)
            name = key(item)
            if name in table:  # never a silent replacement: the first registration stays
                first = table[name].plugin
                raise PluginError(
                    f"plugin {plugin!r} registered {kind.__name__} {name!r} in {hook}, which plugin {first!r} "
                    f"registered already; the second registration is ignored. Rename one of them."
                )
            table[name] = Registered(item, plugin)

        return add

    hooks: list[tuple[str, type, dict[Any, Registered[Any]], Callable[[Any], Any]]] = [
        ("tlcore_register_backends", BackendInfo, registry.backends, lambda i: i.name),
        ("tlcore_register_backbones", BackboneSpec, registry.backbones, lambda i: i.name),
        ("tlcore_register_builders", BuilderInfo, registry.builders, lambda i: (i.backbone, i.backend)),
        ("tlcore_register_heads", HeadInfo, registry.heads, lambda i: i.name),
        ("tlcore_register_freeze_policies", FreezePolicyInfo, registry.freeze_policies, lambda i: i.name),
        ("tlcore_register_datasets", DatasetInfo, registry.datasets, lambda i: i.name),
        ("tlcore_register_commands", CommandInfo, registry.commands, lambda i: i.name),
    ]
    for hook, kind, table, key in hooks:
        _collect(manager, hook, adder(kind, hook, table, key), registry.failures)
    with _State.lock:
        _State.registry = registry
    return registry


def import_object(path: str, *, what: str) -> Any:
    """Import ``"module:attribute"``; raise a PluginError naming ``what`` if it fails."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot import {path!r} for {what}: {exc}") from exc
