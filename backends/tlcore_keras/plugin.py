"""The Keras backend's plugin module: registers names only, imports no framework."""

from __future__ import annotations

from collections.abc import Callable

from tlcore import BackboneSpec
from tlcore.plugins import BackendInfo, hookimpl

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
    """The portable backbones (torchvision ResNets and MobileNetV2, EfficientNet-Lite0) and keras.applications."""
    from tlcore_keras.specs import keras_backbones

    for name in KERAS_BACKENDS:
        for spec in keras_backbones(name):
            register(spec)
