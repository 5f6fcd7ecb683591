"""The Keras backend's plugin module: registers names only, imports no framework."""

from __future__ import annotations

from collections.abc import Callable

from tlcore import BackboneSpec
from tlcore.plugins import BackendInfo, BuilderInfo, hookimpl

KERAS_BACKENDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "keras-jax": ("jax", ("keras", "jax"), "Keras 3 on JAX (jit-compiled steps)"),
    "keras-tensorflow": ("tensorflow", ("keras", "tensorflow"), "Keras 3 on TensorFlow (tf.function steps)"),
    "keras-torch": ("torch", ("keras", "torch"), "Keras 3 on PyTorch"),
}


@hookimpl
def tlcore_register_backends(register: Callable[[BackendInfo], None]) -> None:
    """One backend per Keras framework; each is loaded in a process of its own."""
    for name, (framework, requires, description) in KERAS_BACKENDS.items():
        register(
            BackendInfo(
                name=name,
                loader=f"tlcore_keras.loader:{framework}_backend",
                requires=requires,
                description=description,
                install_hint=f"pip install 'tlcore[{framework if framework != 'torch' else 'keras,torch'}]'",
            )
        )


@hookimpl
def tlcore_register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """The keras.applications backbones (the portable ones are the core's)."""
    from tlcore_keras.specs import APPLICATIONS

    for spec in APPLICATIONS:
        register(spec)


@hookimpl
def tlcore_register_builders(register: Callable[[BuilderInfo], None]) -> None:
    """Every Keras backend builds the portable backbones and keras.applications, with the same builders."""
    from tlcore_keras.specs import BUILDERS

    for backend in KERAS_BACKENDS:
        for backbone, builder in BUILDERS.items():
            register(BuilderInfo(backbone, backend, builder))
