"""Plugins cannot hijack a name or take the core down: collisions refused, unknown hooks reported by name."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tlcore
from tlcore import _cli
from tlcore.architectures import BACKBONES
from tlcore.plugins import (
    BackendInfo,
    BuilderInfo,
    CommandInfo,
    DatasetInfo,
    FreezePolicyInfo,
    HeadInfo,
    hookimpl,
    load_plugins,
    register_plugin,
)

pytestmark = pytest.mark.usefixtures("fresh_plugins")

Install = Callable[[str, types.ModuleType], None]

HOOKS = (
    "tlcore_register_backbones, tlcore_register_backends, tlcore_register_builders, tlcore_register_commands, "
    "tlcore_register_datasets, tlcore_register_freeze_policies, tlcore_register_heads"
)
LITE0 = next(spec for spec in BACKBONES if spec.name == "efficientnet_lite0")


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Publish a module as an installed plugin: importable by name, listed in the ``tlcore`` entry-point group."""
    extra: list[importlib.metadata.EntryPoint] = []
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: Any) -> list[Any]:
        found: list[Any] = list(real(**kwargs))
        return [*found, *extra] if kwargs.get("group") == "tlcore" else found

    def add(name: str, module: types.ModuleType) -> None:
        monkeypatch.setitem(sys.modules, module.__name__, module)
        extra.append(importlib.metadata.EntryPoint(name, module.__name__, "tlcore"))

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    yield add


def plugin_module(name: str, **hooks: Callable[..., None]) -> types.ModuleType:
    """A plugin module whose attributes are the given functions, marked as hook implementations."""
    module = types.ModuleType(name)
    for attribute, function in hooks.items():
        setattr(module, attribute, function)
    return module


def registering(*items: object, tryfirst: bool = False, trylast: bool = False) -> Callable[..., None]:
    """A hook implementation that registers ``items``, with pluggy's ``tryfirst``/``trylast`` as given."""

    def hook(register: Callable[[object], None]) -> None:
        for item in items:
            register(item)

    return hookimpl(tryfirst=tryfirst, trylast=trylast)(hook)


def collision(plugin: str, what: str, first: str) -> str:
    return (
        f"plugin {plugin!r} registered {what}, which plugin {first!r} registered already: the first registration "
        "stays and this one is ignored (tlcore never replaces a registered name, and has no override). Register "
        "yours under a name of its own."
    )


KINDS = [
    pytest.param(
        "tlcore_register_backends",
        BackendInfo(name="torch", loader="copycat:Torch"),
        BackendInfo(name="copycat-backend", loader="copycat:Backend"),
        "backends",
        "torch",
        "backend 'torch'",
        "torch",
        id="backend",
    ),
    pytest.param(
        "tlcore_register_backbones",
        dataclasses.replace(LITE0, description="a look-alike"),
        dataclasses.replace(LITE0, name="copycat_lite0"),
        "backbones",
        "efficientnet_lite0",
        "backbone 'efficientnet_lite0'",
        "tlcore.builtin",
        id="backbone",
    ),
    pytest.param(
        "tlcore_register_builders",
        BuilderInfo("efficientnet_lite0", "torch", "copycat:build"),
        BuilderInfo("vgg16", "keras-jax", "copycat:build_vgg16"),
        "builders",
        ("efficientnet_lite0", "torch"),
        "a builder of backbone 'efficientnet_lite0' for backend 'torch'",
        "torch",
        id="builder",
    ),
    pytest.param(
        "tlcore_register_heads",
        HeadInfo("linear", lambda **_: None),
        HeadInfo("copycat_head", lambda **_: None),
        "heads",
        "linear",
        "head 'linear'",
        "tlcore.builtin",
        id="head",
    ),
    pytest.param(
        "tlcore_register_freeze_policies",
        FreezePolicyInfo("frozen", tlcore.Unfrozen, "trains everything"),
        FreezePolicyInfo("copycat_policy", tlcore.Frozen),
        "freeze_policies",
        "frozen",
        "freeze policy 'frozen'",
        "tlcore.builtin",
        id="freeze-policy",
    ),
    pytest.param(
        "tlcore_register_datasets",
        DatasetInfo("digits", "copycat:load_digits"),
        DatasetInfo("copycat-data", "copycat:load"),
        "datasets",
        "digits",
        "dataset 'digits'",
        "tlcore.builtin",
        id="dataset",
    ),
    pytest.param(
        "tlcore_register_commands",
        CommandInfo("run", "not tlcore's run", "copycat:configure", "copycat:run"),
        CommandInfo("copycat", "a command of its own", "copycat:configure", "copycat:run"),
        "commands",
        "run",
        "command 'run'",
        "tlcore.builtin",
        id="command",
    ),
]


@pytest.mark.parametrize(("hook", "duplicate", "own", "table", "name", "what", "first"), KINDS)
@pytest.mark.parametrize("order", [{}, {"tryfirst": True}, {"trylast": True}], ids=["plain", "tryfirst", "trylast"])
def test_a_name_of_any_kind_is_never_replaced(
    install: Install,
    hook: str,
    duplicate: object,
    own: object,
    table: str,
    name: object,
    what: str,
    first: str,
    order: dict[str, bool],
) -> None:
    install("copycat", plugin_module("tlcore_test_copycat", **{hook: registering(duplicate, own, **order)}))
    with pytest.warns(RuntimeWarning, match=f"tlcore plugin 'copycat' failed in {hook}: plugin 'copycat' registered"):
        registry = load_plugins()
    entries = getattr(registry, table)
    assert entries[name].plugin == first, "the first registration stays, whatever tryfirst/trylast say"
    assert entries[name].item is not duplicate
    own_name = next(key for key, entry in entries.items() if entry.item is own)
    assert entries[own_name].plugin == "copycat", "the plugin's other names still count"
    (failure,) = [f for f in registry.failures if f.plugin == "copycat"]
    assert failure.error == f"{hook}: {collision('copycat', what, first)}"


def test_of_two_third_party_plugins_the_first_registered_stays() -> None:
    for plugin in ("early", "late"):
        register_plugin(
            types.SimpleNamespace(tlcore_register_heads=registering(HeadInfo("shared", lambda **_: None, plugin))),
            name=plugin,
        )
    with pytest.warns(RuntimeWarning, match="plugin 'late' registered head 'shared'"):
        registry = load_plugins()
    assert registry.heads["shared"].plugin == "early"
    (failure,) = [f for f in registry.failures if f.plugin == "late"]
    assert failure.error == "tlcore_register_heads: " + collision("late", "head 'shared'", "early")


def test_an_entry_point_named_like_a_loaded_plugin_is_refused(install: Install) -> None:
    install("torch", plugin_module("tlcore_test_fake_torch"))
    with pytest.warns(RuntimeWarning, match=r"tlcore plugin 'torch' \(tlcore_test_fake_torch\) failed to load"):
        registry = load_plugins()
    assert registry.backends["torch"].plugin == "torch"
    assert registry.backend("torch").loader == "tlcore_torch.backend:TorchBackend", "tlcore's own torch stays"
    (failure,) = [f for f in registry.failures if f.plugin == "torch"]
    assert failure.error == (
        "its entry-point name is that of plugin 'torch' (tlcore_torch.plugin), which is loaded already; this one "
        "is not loaded. Publish it under an entry-point name of its own."
    )


LAYERS = [tlcore.LayerInfo(f"layer{i}", "stage1", "conv") for i in range(98)]


def test_a_plugin_frozen_cannot_hijack_the_builtin_frozen(install: Install) -> None:
    """The user report: a plugin's `frozen` trained all 98 layers while result.json said "frozen"."""
    hijack = registering(FreezePolicyInfo("frozen", tlcore.Unfrozen, "everything trains"), trylast=True)
    install("hijack", plugin_module("tlcore_test_hijack", tlcore_register_freeze_policies=hijack))
    document = {
        "backbone": {"name": "efficientnet_lite0"},
        "data": {"dataset": "digits"},
        "phases": [{"name": "head", "freeze": "frozen", "epochs": 1}],
    }
    with pytest.warns(RuntimeWarning, match="plugin 'hijack' registered freeze policy 'frozen'"):
        recipe = tlcore.parse_recipe(document)
    policy = recipe.phases[0].freeze
    assert type(policy) is tlcore.Frozen
    assert policy.trainable_layers(LAYERS) == set(), "the head phase trains no backbone layer"
    registry = load_plugins()
    assert registry.freeze_policies["frozen"].plugin == "tlcore.builtin"
    (failure,) = [f for f in registry.failures if f.plugin == "hijack"]
    assert "'hijack'" in failure.error and "'tlcore.builtin'" in failure.error and "'frozen'" in failure.error


def test_wrapper_hooks_are_refused_by_name() -> None:
    def wrapper(register: Callable[[object], None]) -> Iterator[None]:
        register(FreezePolicyInfo("wrapped", tlcore.Frozen))
        yield

    register_plugin(
        types.SimpleNamespace(tlcore_register_freeze_policies=hookimpl(wrapper=True)(wrapper)), name="wrapping"
    )
    with pytest.warns(RuntimeWarning, match="tlcore plugin 'wrapping' failed in tlcore_register_freeze_policies"):
        registry = load_plugins()
    assert "wrapped" not in registry.freeze_policies
    (failure,) = [f for f in registry.failures if f.plugin == "wrapping"]
    assert failure.error == (
        "tlcore_register_freeze_policies: a registration hook must be a plain function (hookwrapper=True and "
        "wrapper=True are not supported); nothing it registers counts."
    )


UNKNOWN_HOOK = (
    "unknown hook: 'tlcore_register_freez_policies' is not a tlcore hook. Did you mean "
    "'tlcore_register_freeze_policies'? The plugin is not loaded (none of its hooks count); fix the hook's name. "
    f"tlcore's hooks: {HOOKS}."
)


def typo_plugin() -> types.ModuleType:
    return plugin_module(
        "tlcore_test_typo",
        tlcore_register_freez_policies=registering(FreezePolicyInfo("typo_policy", tlcore.Frozen)),
        tlcore_register_heads=registering(HeadInfo("typo_head", lambda **_: None)),
    )


def test_an_unknown_hook_is_reported_by_name_and_the_rest_works(
    install: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    install("typo", typo_plugin())
    with pytest.warns(RuntimeWarning) as caught:
        registry = load_plugins()
    assert [str(w.message) for w in caught] == [
        f"tlcore plugin 'typo' (tlcore_test_typo) failed to load: {UNKNOWN_HOOK}"
    ]
    assert [(f.plugin, f.error) for f in registry.failures] == [("typo", UNKNOWN_HOOK)]
    assert "typo_head" not in registry.heads, "none of the plugin's hooks count"
    assert registry.backbone("efficientnet_lite0").name == "efficientnet_lite0"
    recipe = tlcore.parse_recipe(
        {"backbone": {"name": "efficientnet_lite0"}, "data": {"dataset": "digits"}, "phases": [{"freeze": "frozen"}]}
    )
    assert type(recipe.phases[0].freeze) is tlcore.Frozen
    assert _cli.main(["plugins"]) == 0
    shown = capsys.readouterr().out
    assert f"Plugins that failed to load\n  typo: {UNKNOWN_HOOK}\n" in shown


def test_register_plugin_with_an_unknown_hook_raises_and_leaves_nothing_behind() -> None:
    with pytest.raises(tlcore.PluginError) as caught:
        register_plugin(typo_plugin(), name="typo")
    assert str(caught.value) == f"cannot register plugin 'typo': {UNKNOWN_HOOK}"
    manager = tlcore.plugins.get_plugin_manager()
    assert not manager.has_plugin("typo")
    register_plugin(types.SimpleNamespace(tlcore_register_heads=registering(HeadInfo("fine", lambda **_: None))))
    registry = load_plugins()
    assert "typo_head" not in registry.heads and "fine" in registry.heads
    assert not registry.failures
