"""The Keras model: a backbone plus a head, with freeze plans applied through ``trainable``."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlcore import BackboneSpec, CheckpointError, FreezePlan, HeadSpec, LayerInfo, Model
from tlcore.extend import initial_head_weights
from tlcore_keras.backbones import KerasBackbone
from tlcore_keras.frameworks import sync_state
from tlcore_keras.layout import keras_layer_state, load_torch_layout_state

# tlcore's serializable Keras classes (layers, initializers) are registered when their modules are imported: with
# this module, so that whatever builds or loads a KerasNet can also load a saved one (keras.models.load_model).
importlib.import_module("tlcore_keras.layers")
importlib.import_module("tlcore_keras.torchvision_models")


@keras.saving.register_keras_serializable(package="tlcore")
class KerasHead(keras.Model):
    """Pooling, optional hidden dense layers, dropout and the output layer.

    ``flatten`` flattens NHWC feature maps, the order the torch head uses too.
    """

    def __init__(self, spec: HeadSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        if spec.pooling == "avg":
            self.pool: keras.layers.Layer = keras.layers.GlobalAveragePooling2D()
        elif spec.pooling == "max":
            self.pool = keras.layers.GlobalMaxPooling2D()
        else:
            self.pool = keras.layers.Flatten()
        self.dropout = keras.layers.Dropout(spec.dropout)
        self.hidden = [keras.layers.Dense(width, name=f"hidden_{i}") for i, width in enumerate(spec.hidden)]
        self.activation = keras.layers.Activation(spec.activation if spec.activation != "linear" else "linear")
        self.out = keras.layers.Dense(spec.num_outputs, name="out")

    def call(self, features: Any, training: bool = False) -> Any:
        x = self.dropout(self.pool(features), training=training)
        for layer in self.hidden:
            x = self.dropout(self.activation(layer(x)), training=training)
        return self.out(x)

    def dense_layers(self) -> list[keras.layers.Dense]:
        """The head's dense layers in order, output last."""
        return [*self.hidden, self.out]

    def get_config(self) -> dict[str, Any]:
        """The head spec as plain values (``spec``), for ``save("x.keras")`` and :meth:`from_config`."""
        config: dict[str, Any] = super().get_config()
        config["spec"] = {field.name: getattr(self.spec, field.name) for field in dataclasses.fields(self.spec)}
        config["spec"]["hidden"] = list(self.spec.hidden)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KerasHead:
        """The head :meth:`get_config` describes (its weights are loaded by Keras afterwards)."""
        config = dict(config)
        spec = dict(config.pop("spec"))
        spec["hidden"] = tuple(spec.get("hidden", ()))
        return cls(HeadSpec(**spec), **config)


@keras.saving.register_keras_serializable(package="tlcore")
class KerasNet(keras.Model):
    """Backbone then head: NHWC float32 images, preprocessed as the backbone's spec says, to logits.

    The backbone runs in training mode (BatchNorm statistics updating) only
    when ``update_bn_statistics`` is set and the model itself is training;
    frozen BatchNorm layers (``trainable=False``) always run in inference mode.

    It saves the Keras way (``net.save("x.keras")``) and loads with
    ``keras.models.load_model`` once tlcore's layers are registered (importing
    :mod:`tlcore_keras.model`, or ``tlcore.get_backend("keras-jax")``, does
    that). The config holds the backbone as a serialized functional model and
    the head spec as plain values; ``update_bn_statistics`` is not saved, so a
    loaded model starts with it off (it is for inference, or for a fresh
    freeze plan).
    """

    def __init__(self, backbone: keras.Model, head: KerasHead, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        self.update_bn_statistics = False

    def call(self, images: Any, training: bool = False) -> Any:
        features = self.backbone(images, training=bool(training) and self.update_bn_statistics)
        return self.head(features, training=training)

    def get_config(self) -> dict[str, Any]:
        """The backbone and head as serialized Keras objects, for ``save("x.keras")`` and :meth:`from_config`."""
        config: dict[str, Any] = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        config["head"] = keras.saving.serialize_keras_object(self.head)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> KerasNet:
        """The model :meth:`get_config` describes, built (Keras loads the saved weights into it next)."""
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"), custom_objects=custom_objects)
        head = keras.saving.deserialize_keras_object(config.pop("head"), custom_objects=custom_objects)
        net = cls(backbone, head, **config)
        shape = (1, *backbone.input_shape[1:])
        net(np.zeros(shape, dtype="float32"), training=False)  # creates the head's weights before they are loaded
        return net


def to_numpy(value: Any) -> np.ndarray:
    """A Keras tensor or variable as a numpy array."""
    return np.asarray(keras.ops.convert_to_numpy(value))


class KerasModel(Model):
    """A :class:`tlcore.Model` holding a :class:`KerasNet`."""

    def __init__(
        self,
        backend_name: str,
        backbone_spec: BackboneSpec,
        head_spec: HeadSpec,
        native_backbone: KerasBackbone,
        *,
        seed: int,
        image_size: tuple[int, int],
        weights: str | None,
        weights_sha256: str | None,
    ) -> None:
        self.backend_name = backend_name
        self._describe(backbone_spec, head_spec, image_size=image_size, weights=weights, weights_sha256=weights_sha256)
        self._layers = native_backbone.layers
        backbone = native_backbone.model
        head = KerasHead(head_spec, name="head")
        self._net = KerasNet(backbone, head, name=f"tlcore_{backbone_spec.name}")
        self._net(np.zeros((1, *image_size, backbone_spec.input.channels), dtype="float32"), training=False)
        in_features = int(head.dense_layers()[0].kernel.shape[0])
        for layer, (kernel, bias) in zip(
            head.dense_layers(), initial_head_weights(head_spec, in_features, seed), strict=True
        ):
            layer.kernel.assign(kernel)
            layer.bias.assign(bias)
        everything = frozenset(i.name for i, _ in self._layers)
        weighted = frozenset(i.name for i, _ in self._layers if i.has_weights)
        self._plan = FreezePlan(trainable=weighted, bn_training=frozenset(), selected=everything)
        self.apply_freeze(self._plan)

    @property
    def native(self) -> KerasNet:
        return self._net

    def layers(self) -> list[LayerInfo]:
        return [info for info, _ in self._layers]

    def named_layers(self) -> list[tuple[LayerInfo, keras.layers.Layer]]:
        """Each backbone layer's description with its Keras layer, in forward order."""
        return list(self._layers)

    def apply_freeze(self, plan: FreezePlan) -> None:
        self.check_plan(plan)
        self._net.backbone.trainable = True  # this sets every sublayer; the flags below decide
        for info, layer in self._layers:
            layer.trainable = info.name in plan.flagged
        self._net.update_bn_statistics = bool(plan.bn_training)
        self._plan = plan

    def trainable_layers(self) -> set[str]:
        return {info.name for info, layer in self._layers if layer.trainable and layer.trainable_weights}

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """The variables up to date first (a JAX trainer may hold newer values)."""
        sync_state(self._net)
        yield

    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        return to_numpy(self._net(images, training=False))

    def _features_batch(self, images: np.ndarray) -> np.ndarray:
        return to_numpy(self._net.backbone(images, training=False))

    def backbone_state(self) -> dict[str, np.ndarray]:
        sync_state(self._net)
        state: dict[str, np.ndarray] = {}
        for info, layer in self._layers:
            state.update(keras_layer_state(layer, info))
        return state

    def head_state(self) -> dict[str, np.ndarray]:
        """The head's dense layers in torch layout under torch's names (``head.out.weight``)."""
        sync_state(self._net)
        state: dict[str, np.ndarray] = {}
        layers = self._net.head.dense_layers()
        for index, layer in enumerate(layers):
            prefix = "head.out" if index == len(layers) - 1 else f"head.hidden.{index}"
            state[f"{prefix}.weight"] = np.ascontiguousarray(to_numpy(layer.kernel).T)
            state[f"{prefix}.bias"] = to_numpy(layer.bias)
        return state

    def load_head_state(self, state: dict[str, np.ndarray]) -> None:
        """Assign a head state written by :meth:`head_state` (or by the torch backend)."""
        layers = self._net.head.dense_layers()
        for index, layer in enumerate(layers):
            prefix = "head.out" if index == len(layers) - 1 else f"head.hidden.{index}"
            try:
                layer.kernel.assign(np.ascontiguousarray(state[f"{prefix}.weight"].T))
                layer.bias.assign(state[f"{prefix}.bias"])
            except (KeyError, ValueError) as exc:
                raise CheckpointError(f"head tensor {prefix} is missing or has the wrong shape: {exc}") from None

    def export_requirements(self, format: str) -> dict[str, str]:
        from tlcore_keras.export import export_requirements

        return export_requirements(format)

    def _write_onnx(self, path: Path) -> None:
        from tlcore_keras.export import write_onnx

        write_onnx(self._net, self.head.output_activation, self.image_size, self.backbone.input.channels, path)

    def _write_saved_model(self, path: Path) -> None:
        from tlcore_keras.export import write_saved_model

        write_saved_model(self._net, self.head.output_activation, self.image_size, self.backbone.input.channels, path)

    def _assign_state(self, tensors: dict[str, np.ndarray]) -> None:
        """Assign a checked state (torch layout, canonical names) to backbone and head."""
        backbone = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
        backbone = {k: v for k, v in backbone.items() if not k.endswith("num_batches_tracked")}
        load_torch_layout_state(self._layers, backbone)
        self.load_head_state({k: v for k, v in tensors.items() if k.startswith("head.")})
