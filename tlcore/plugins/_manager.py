"""The plugin manager and the registry it fills.

Plugins come from the ``tlcore`` entry-point group (the built-in backends
too) plus the core's own built-in plugin. Loading is idempotent; the
``TLCORE_LOAD_PLUGINS`` variable (comma-separated entry-point names)
restricts which entry points load. A plugin that fails to import, or that
implements an unknown hook (a misspelt ``tlcore_register_...``), is reported
by name (a warning, and :attr:`Registry.failures`, which ``tlcore plugins``
shows), is not loaded, and the others keep working.

Names are never replaced: of two registrations of one name (of any kind),
the first stays and the second is reported as a failure naming both plugins.
"First" does not depend on pluggy's ``tryfirst``/``trylast`` nor on the order
in which packages were installed: the core's built-in plugin comes first,
then the entry points of tlcore's own distribution, then the other entry
points by name, then plugins registered in-process, in the order registered.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pluggy

from tlcore._errors import (
    PluginError,
    UnknownBackboneError,
    UnknownBackendError,
    UnknownDatasetError,
    UnknownFreezePolicyError,
    UnknownHeadError,
    UnknownNameError,
    did_you_mean,
)
from tlcore._specs import BackboneSpec
from tlcore.plugins import _hookspecs
from tlcore.plugins._infos import BackendInfo, BuilderInfo, CommandInfo, DatasetInfo, FreezePolicyInfo, HeadInfo

if TYPE_CHECKING:
    from tlcore.data import DatasetSource

ENTRY_POINT_GROUP = "tlcore"
ALLOW_LIST_VARIABLE = "TLCORE_LOAD_PLUGINS"
BUILTIN_PLUGIN = "tlcore.builtin"
PROJECT_DISTRIBUTION = "tlcore"

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A registered thing and the plugin that provided it."""

    item: T
    plugin: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded (an import error, an unknown hook), or a registration refused, and why."""

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

    def open_dataset(self, name: str, **options: Any) -> DatasetSource:
        """Load dataset ``name`` with ``options``, checked against its loader's parameters first.

        A bad option is a ConfigError naming it, its value and what the
        loader takes; a loader returning anything but a
        :class:`tlcore.data.DatasetSource` is a PluginError naming its plugin.
        """
        from tlcore.plugins._datasets import open_registered_dataset

        info = self.dataset(name)
        return open_registered_dataset(info, self.datasets[name].plugin, options)


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


def _distribution(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return str(dist.name) if dist is not None else ""


def _load_order(entry_point: importlib.metadata.EntryPoint) -> tuple[int, str]:
    """tlcore's own entry points (the built-in backends) first, then the others by name."""
    return (0 if _distribution(entry_point) == PROJECT_DISTRIBUTION else 1, entry_point.name)


def _hook_names() -> list[str]:
    return sorted(name for name in vars(_hookspecs) if name.startswith("tlcore_register_"))


def _unknown_hooks_error(manager: pluggy.PluginManager, plugin: object) -> str | None:
    """What is wrong if ``plugin`` (registered) implements hooks tlcore does not have; None if nothing is."""
    unknown = sorted(
        caller.name
        for caller in manager.get_hookcallers(plugin) or []
        if not caller.has_spec() and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
    )
    if not unknown:
        return None
    known = _hook_names()
    problems = "; ".join(f"{name!r} is not a tlcore hook.{did_you_mean(name, known)}" for name in unknown)
    return (
        f"unknown hook: {problems} The plugin is not loaded (none of its hooks count); fix the hook's name. "
        f"tlcore's hooks: {', '.join(known)}."
    )


def _register_checked(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin`` as ``name``; unregister it and raise PluginError if it implements an unknown hook."""
    manager.register(plugin, name=name)
    problem = _unknown_hooks_error(manager, plugin)
    if problem is not None:
        manager.unregister(plugin, name=name)
        raise PluginError(problem)


def _new_manager() -> tuple[pluggy.PluginManager, list[PluginFailure]]:
    manager = pluggy.PluginManager(_hookspecs.PROJECT)
    manager.add_hookspecs(_hookspecs)
    from tlcore import _builtin

    manager.register(_builtin, name=BUILTIN_PLUGIN)
    failures: list[PluginFailure] = []
    loaded: dict[str, str] = {BUILTIN_PLUGIN: _builtin.__name__}
    allowed = _allow_list()
    entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=_load_order)
    for entry_point in entry_points:
        if allowed is not None and entry_point.name not in allowed:
            continue
        try:
            if entry_point.name in loaded:
                if loaded[entry_point.name] == entry_point.value:
                    continue  # the same plugin listed twice
                raise PluginError(
                    f"its entry-point name is that of plugin {entry_point.name!r} ({loaded[entry_point.name]}), "
                    "which is loaded already; this one is not loaded. Publish it under an entry-point name of "
                    "its own."
                )
            _register_checked(manager, entry_point.load(), entry_point.name)
            loaded[entry_point.name] = entry_point.value
        except Exception as exc:  # a broken plugin must not take the others down
            error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            failures.append(PluginFailure(entry_point.name, error))
            warnings.warn(
                f"tlcore plugin {entry_point.name!r} ({entry_point.value}) failed to load: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
    return manager, failures


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first call."""
    with _State.lock:
        if _State.manager is None:
            _State.manager, _State.failures = _new_manager()
        return _State.manager


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object (module or instance) in this process, then refresh.

    Raises PluginError (and registers nothing) if the name is taken or the
    plugin implements a hook tlcore does not have.
    """
    manager = get_plugin_manager()
    plugin_name = name or manager.get_canonical_name(plugin)
    try:
        _register_checked(manager, plugin, plugin_name)
    except (ValueError, pluggy.PluginValidationError, PluginError) as exc:
        raise PluginError(f"cannot register plugin {plugin_name!r}: {exc}") from None
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
    """Call each plugin's implementation of ``hook_name``; a failing plugin is reported, the rest go on.

    Plugins are called in the order they were registered, whatever their
    ``tryfirst``/``trylast``, so that the first registration of a name is
    always the same plugin's.
    """
    rank = {name: index for index, (name, _) in enumerate(manager.list_name_plugin())}
    hook = getattr(manager.hook, hook_name)
    for impl in sorted(hook.get_hookimpls(), key=lambda impl: rank.get(impl.plugin_name, len(rank))):
        if impl.hookwrapper or impl.wrapper:
            wrapper = PluginError(
                "a registration hook must be a plain function (hookwrapper=True and wrapper=True are not "
                "supported); nothing it registers counts."
            )
            _report(failures, impl.plugin_name, hook_name, wrapper)
            continue
        accepted: list[Any] = []
        try:
            impl.function(**{"register": accepted.append} if "register" in impl.argnames else {})
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
        kind: type, hook: str, table: dict[Any, Registered[Any]], key: Callable[[Any], Any], what: Callable[[Any], str]
    ) -> Callable[..., None]:
        def add(item: object, plugin: str) -> None:
            _expect(kind, item, plugin, hook)
            name = key(item)
            if name in table:  # never a silent replacement: the first registration stays
                first = table[name].plugin
                raise PluginError(
                    f"plugin {plugin!r} registered {what(name)}, which plugin {first!r} registered already: "
                    "the first registration stays and this one is ignored (tlcore never replaces a registered name, "
                    "and has no override). Register yours under a name of its own."
                )
            table[name] = Registered(item, plugin)

        return add

    hooks: list[tuple[str, type, dict[Any, Registered[Any]], Callable[[Any], Any], Callable[[Any], str]]] = [
        ("tlcore_register_backends", BackendInfo, registry.backends, lambda i: i.name, lambda n: f"backend {n!r}"),
        ("tlcore_register_backbones", BackboneSpec, registry.backbones, lambda i: i.name, lambda n: f"backbone {n!r}"),
        (
            "tlcore_register_builders",
            BuilderInfo,
            registry.builders,
            lambda i: (i.backbone, i.backend),
            lambda n: f"a builder of backbone {n[0]!r} for backend {n[1]!r}",
        ),
        ("tlcore_register_heads", HeadInfo, registry.heads, lambda i: i.name, lambda n: f"head {n!r}"),
        (
            "tlcore_register_freeze_policies",
            FreezePolicyInfo,
            registry.freeze_policies,
            lambda i: i.name,
            lambda n: f"freeze policy {n!r}",
        ),
        ("tlcore_register_datasets", DatasetInfo, registry.datasets, lambda i: i.name, lambda n: f"dataset {n!r}"),
        ("tlcore_register_commands", CommandInfo, registry.commands, lambda i: i.name, lambda n: f"command {n!r}"),
    ]
    for hook, kind, table, key, what in hooks:
        _collect(manager, hook, adder(kind, hook, table, key, what), registry.failures)
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
