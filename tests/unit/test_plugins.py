"""The plugin manager: entry points, allow-list, failures reported by name."""

from __future__ import annotations

import importlib.metadata
import types
from collections.abc import Callable

import pytest

import tlcore
from tlcore.plugins import BackendInfo, FreezePolicyInfo, hookimpl, load_plugins, register_plugin

pytestmark = pytest.mark.usefixtures("fresh_plugins")


def test_builtin_registrations_name_their_plugin() -> None:
    registry = load_plugins()
    assert registry.freeze_policies["frozen"].plugin == "tlcore.builtin"
    assert {"mnist-5k", "digits", "fashion-mnist", "image-folder"} <= set(registry.datasets)
    assert registry.backends["torch"].plugin == "torch"
    assert registry.backbones["efficientnet_lite0"].plugin == "tlcore.builtin"
    assert registry.builders[("efficientnet_lite0", "torch")].plugin == "torch"


def test_loading_is_idempotent() -> None:
    assert load_plugins() is load_plugins()


def test_unknown_backbone_suggests_and_lists() -> None:
    with pytest.raises(tlcore.UnknownBackboneError) as info:
        load_plugins().backbone("resnet5", "torch")
    message = str(info.value)
    assert message.startswith("no backbone 'resnet5' on torch. Did you mean 'resnet50'?")
    assert "Available on torch: efficientnet_b0, efficientnet_lite0" in message


def test_unknown_backend() -> None:
    with pytest.raises(tlcore.UnknownBackendError, match=r"no backend 'troch'\. Did you mean 'torch'\?"):
        tlcore.get_backend("troch")


def test_allow_list_restricts_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLCORE_LOAD_PLUGINS", "normfreeze")
    registry = load_plugins()
    assert "torch" not in registry.backends
    assert "frozen" in registry.freeze_policies  # the core's own plugin always loads


def test_broken_plugin_is_reported_and_others_work(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = importlib.metadata.EntryPoint("broken", "tlcore_no_such_module_xyz", "tlcore")
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: str) -> list[importlib.metadata.EntryPoint]:
        return [*real(**kwargs), broken] if kwargs.get("group") == "tlcore" else list(real(**kwargs))

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    with pytest.warns(RuntimeWarning, match="tlcore plugin 'broken'"):
        registry = load_plugins()
    broken_failures = [f for f in registry.failures if f.plugin == "broken"]
    assert len(broken_failures) == 1
    assert "No module named 'tlcore_no_such_module_xyz'" in broken_failures[0].error
    assert "torch" in registry.backends


def test_registering_a_plugin_object() -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
        register(BackendInfo(name="fake", loader="nowhere:Fake", requires=("tlcore_no_such_framework",)))

    plugin.tlcore_register_backends = tlcore_register_backends
    register_plugin(plugin, name="fake-plugin")
    registry = load_plugins()
    assert registry.backends["fake"].plugin == "fake-plugin"
    with pytest.raises(tlcore.BackendUnavailableError, match="needs tlcore_no_such_framework, which is not installed"):
        tlcore.get_backend("fake")


def test_unknown_hook_fails_at_load() -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_widgets(register: Callable[[object], None]) -> None:
        """Not a tlcore hook."""

    plugin.tlcore_register_widgets = tlcore_register_widgets
    with pytest.raises(tlcore.PluginError, match="tlcore_register_widgets"):
        register_plugin(plugin, name="typo-plugin")


def test_plugin_registering_wrong_type_is_named() -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_freeze_policies(register: Callable[[object], None]) -> None:
        register("not an info")

    plugin.tlcore_register_freeze_policies = tlcore_register_freeze_policies
    register_plugin(plugin, name="sloppy")
    with pytest.warns(RuntimeWarning, match=r"plugin 'sloppy' registered 'not an info'.*FreezePolicyInfo"):
        registry = load_plugins()
    assert [f.plugin for f in registry.failures if f.plugin == "sloppy"] == ["sloppy"]
    assert "frozen" in registry.freeze_policies, "the other plugins keep working"


def test_plugin_whose_hook_raises_is_reported_and_others_work() -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
        register(BackendInfo(name="half", loader="nowhere:Half"))
        raise RuntimeError("boom")

    plugin.tlcore_register_backends = tlcore_register_backends
    register_plugin(plugin, name="crashing")
    with pytest.warns(RuntimeWarning, match="tlcore plugin 'crashing' failed in tlcore_register_backends"):
        registry = load_plugins()
    assert "half" not in registry.backends, "nothing of a failing hook call is kept"
    crashed = [f for f in registry.failures if f.plugin == "crashing"]
    assert len(crashed) == 1 and "RuntimeError: boom" in crashed[0].error
    assert "torch" in registry.backends


def test_third_party_plugin_installed_through_entry_point() -> None:
    """plugins/tlcore-normfreeze is pip-installed; it must arrive through the entry point."""
    registry = load_plugins()
    assert "norm_only" in registry.freeze_policies, "install it with: pip install -e plugins/tlcore-normfreeze"
    entry = registry.freeze_policies["norm_only"]
    assert entry.plugin == "normfreeze"
    assert isinstance(entry.item, FreezePolicyInfo)
    layers = [tlcore.LayerInfo("c", "stem", "conv"), tlcore.LayerInfo("b", "stem", "batchnorm")]
    assert entry.item.factory().trainable_layers(layers) == {"b"}


def test_commands_are_registered_by_their_plugins() -> None:
    """The core's commands come from its built-in plugin; `tlcore bench` from the benchmark's entry point."""
    registry = load_plugins()
    assert {name: entry.plugin for name, entry in registry.commands.items()}.items() >= {
        "plugins": "tlcore.builtin",
        "run": "tlcore.builtin",
        "convert": "tlcore.builtin",
        "bench": "bench",
    }.items()
    assert registry.command("bench").run == "tlcore_bench.command:run"
    with pytest.raises(tlcore.UnknownNameError, match="Did you mean 'bench'"):
        registry.command("bnech")
