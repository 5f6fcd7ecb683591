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
)
from tlcore._specs import BackboneSpec
from tlcore.plugins import _hookspecs
from tlcore.plugins._infos import BackendInfo, DatasetInfo, FreezePolicyInfo, HeadInfo

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
        self.backbones: dict[tuple[str, str], Registered[BackboneSpec]] = {}
        self.heads: dict[str, Registered[HeadInfo]] = {}
        self.freeze_policies: dict[str, Registered[FreezePolicyInfo]] = {}
        self.datasets: dict[str, Registered[DatasetInfo]] = {}
        self.failures: list[PluginFailure] = []

    def backend(self, name: str) -> BackendInfo:
        """The backend registered under ``name``."""
        if name not in self.backends:
            raise UnknownBackendError(name, self.backends)
        return self.backends[name].item

    def backbone(self, name: str, backend: str) -> BackboneSpec:
        """The backbone ``name`` as built by ``backend``."""
        self.backend(backend)
        if (backend, name) not in self.backbones:
            available = [n for (b, n) in self.backbones if b == backend]
            raise UnknownBackboneError(name, available, where=backend)
        return self.backbones[(backend, name)].item

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
            for item in accepted:
                sink(item, impl.plugin_name)
        except Exception as exc:  # a broken plugin must not take the others down
            error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            failures.append(PluginFailure(impl.plugin_name, f"{hook_name}: {error}"))
            warnings.warn(
                f"tlcore plugin {impl.plugin_name!r} failed in {hook_name}: {error}", RuntimeWarning, stacklevel=3
            )


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

    def add_backend(item: BackendInfo, plugin: str) -> None:
        _expect(BackendInfo, item, plugin, "tlcore_register_backends")
        registry.backends[item.name] = Registered(item, plugin)

    def add_backbone(item: BackboneSpec, plugin: str) -> None:
        _expect(BackboneSpec, item, plugin, "tlcore_register_backbones")
        registry.backbones[(item.backend, item.name)] = Registered(item, plugin)

    def add_head(item: HeadInfo, plugin: str) -> None:
        _expect(HeadInfo, item, plugin, "tlcore_register_heads")
        registry.heads[item.name] = Registered(item, plugin)

    def add_policy(item: FreezePolicyInfo, plugin: str) -> None:
        _expect(FreezePolicyInfo, item, plugin, "tlcore_register_freeze_policies")
        registry.freeze_policies[item.name] = Registered(item, plugin)

    def add_dataset(item: DatasetInfo, plugin: str) -> None:
        _expect(DatasetInfo, item, plugin, "tlcore_register_datasets")
        registry.datasets[item.name] = Registered(item, plugin)

    _collect(manager, "tlcore_register_backends", add_backend, registry.failures)
    _collect(manager, "tlcore_register_backbones", add_backbone, registry.failures)
    _collect(manager, "tlcore_register_heads", add_head, registry.failures)
    _collect(manager, "tlcore_register_freeze_policies", add_policy, registry.failures)
    _collect(manager, "tlcore_register_datasets", add_dataset, registry.failures)
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
