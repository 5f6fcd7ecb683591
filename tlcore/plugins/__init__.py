"""The plugin system: hook specifications, what plugins register, and the registry.

A plugin is a module (or object) with ``@hookimpl`` functions named
``tlcore_register_<things>(register)``, published in the ``tlcore``
entry-point group::

    [project.entry-points.tlcore]
    my_plugin = "my_package.plugin"

A name is registered once: a second registration of it (by any plugin, of
any kind) is refused and reported, naming both plugins. A plugin that
implements an unknown hook is reported by name and not loaded.
"""

from tlcore._specs import BackboneSpec
from tlcore.plugins._hookspecs import hookimpl, hookspec
from tlcore.plugins._infos import (
    BackendInfo,
    BuilderInfo,
    CommandInfo,
    DatasetInfo,
    FreezePolicyInfo,
    HeadInfo,
    ImportConflict,
)
from tlcore.plugins._manager import (
    ALLOW_LIST_VARIABLE,
    ENTRY_POINT_GROUP,
    PluginFailure,
    Registered,
    Registry,
    get_plugin_manager,
    import_object,
    load_plugins,
    register_plugin,
    reset_plugins,
)

__all__ = [
    "ALLOW_LIST_VARIABLE",
    "ENTRY_POINT_GROUP",
    "BackboneSpec",
    "BackendInfo",
    "BuilderInfo",
    "CommandInfo",
    "DatasetInfo",
    "FreezePolicyInfo",
    "HeadInfo",
    "ImportConflict",
    "PluginFailure",
    "Registered",
    "Registry",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "import_object",
    "load_plugins",
    "register_plugin",
    "reset_plugins",
]
