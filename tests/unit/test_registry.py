"""Neutral specs and per-backend builders: one spec serves every backend, names are never silently replaced."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest

import tlcore
from tlcore.architectures import BACKBONES
from tlcore.plugins import BuilderInfo, FreezePolicyInfo, hookimpl, load_plugins, register_plugin

pytestmark = pytest.mark.usefixtures("fresh_plugins")


def test_one_spec_is_built_by_every_backend() -> None:
    registry = load_plugins()
    for name in ("efficientnet_lite0", "resnet18", "resnet50", "mobilenet_v2"):
        assert registry.backends_of(name) == ["keras-jax", "keras-tensorflow", "keras-torch", "torch"], name
        spec = registry.backbone(name)
        assert spec.portable
        assert all(registry.backbone(name, backend) is spec for backend in registry.backends_of(name))


def test_specs_name_no_backend_and_sources_say_what_they_are() -> None:
    for spec in BACKBONES:
        assert not hasattr(spec, "backend") and not hasattr(spec, "builder")
        for source in spec.weights:
            assert source.provider in ("torchvision", "package")
            assert source.reference


def test_a_backbone_on_the_wrong_backend_names_where_it_is_built() -> None:
    with pytest.raises(tlcore.UnknownBackboneError) as caught:
        load_plugins().backbone("keras_vgg16", "torch")
    assert "'keras_vgg16' is built by: keras-jax, keras-tensorflow, keras-torch." in str(caught.value)
    with pytest.raises(tlcore.UnknownBackboneError, match="'vgg16' is built by: torch"):
        load_plugins().backbone("vgg16", "keras-jax")


def test_a_plugin_adds_a_builder_for_an_existing_architecture() -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_builders(register: Callable[[BuilderInfo], None]) -> None:
        register(BuilderInfo("vgg16", "keras-jax", "my_plugin.keras:build_vgg16"))

    plugin.tlcore_register_builders = tlcore_register_builders
    register_plugin(plugin, name="my-builders")
    registry = load_plugins()
    assert registry.backbone("vgg16", "keras-jax").name == "vgg16"
    assert registry.builders[("vgg16", "keras-jax")].plugin == "my-builders"


def test_a_name_registered_twice_is_refused_and_names_both_plugins() -> None:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_freeze_policies(register: Callable[[FreezePolicyInfo], None]) -> None:
        register(FreezePolicyInfo("frozen", lambda **_: None, "a look-alike"))
        register(FreezePolicyInfo("my_policy", tlcore.Frozen, "a fine one"))

    plugin.tlcore_register_freeze_policies = tlcore_register_freeze_policies
    with pytest.warns(RuntimeWarning, match="registered already"):
        register_plugin(plugin, name="lookalike")
        registry = load_plugins()
    assert registry.freeze_policies["frozen"].plugin == "tlcore.builtin", "the first registration stays"
    assert registry.freeze_policies["my_policy"].plugin == "lookalike", "the plugin's other names still count"
    (failure,) = [f for f in registry.failures if f.plugin == "lookalike"]
    assert "'frozen'" in failure.error and "'tlcore.builtin'" in failure.error and "'lookalike'" in failure.error
