"""Exports of a Keras model for serving: ONNX and TensorFlow SavedModel, through ``keras.Model.export``.

What is exported is :class:`ServingNet`: the model's :class:`KerasNet` in
inference mode plus the head's output activation, so the artifact computes
what :meth:`tlcore.Model.predict` returns, from the same input (NHWC float32
images, preprocessed as the backbone's spec says, any batch size, the image
size the model was built for). Keras converts with what each framework
offers: tf2onnx on TensorFlow, jax2onnx on JAX, torch's exporter on torch;
a SavedModel is TensorFlow's format, written on TensorFlow directly and on
JAX through ``jax2tf`` (both need TensorFlow installed); Keras on torch
needs ``torch_xla`` for it, so keras-torch refuses without it.

Two things are fixed on the way, so that every Keras backend exports the
same graph: depthwise convolutions use Keras's own operation while tracing
(:func:`tlcore_keras.layers.keras_depthwise`; on JAX's CPU tlcore computes
them as shifted products, which convert into thousands of ONNX nodes), and
jax2onnx's max pooling, which it writes as a 4-d ``MaxPool`` over the NHWC
tensor that ONNX Runtime refuses ("Unsupported pooling size"), is rewritten
as the 2-d ``MaxPool`` it means (:func:`fix_jax2onnx_max_pool`).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import keras

from tlcore import ConfigError
from tlcore.extend import ONNX_OPSET
from tlcore_keras import frameworks
from tlcore_keras.layers import keras_depthwise
from tlcore_keras.model import KerasNet

__all__ = ["ServingNet", "export_requirements", "fix_jax2onnx_max_pool", "write_onnx", "write_saved_model"]

INPUT_NAME = "images"


class ServingNet(keras.Model):
    """``activation(net(images, training=False))``: what :meth:`tlcore.Model.predict` computes, as a Keras model."""

    def __init__(self, net: KerasNet, output_activation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = net
        self.output_activation = output_activation

    def call(self, images: Any) -> Any:
        logits = self.net(images, training=False)
        if self.output_activation == "softmax":
            return keras.ops.softmax(logits, axis=-1)
        if self.output_activation == "sigmoid":
            return keras.ops.sigmoid(logits)
        return logits


def export_requirements(format: str) -> dict[str, str]:
    """``{module: pip name}`` that :func:`write_onnx` (``"onnx"``) or :func:`write_saved_model` needs here."""
    framework = frameworks.framework()
    if format == "onnx":
        converter = {"tensorflow": {"tf2onnx": "tf2onnx"}, "jax": {"jax2onnx": "jax2onnx"}}.get(framework, {})
        torch_needs = {"onnxscript": "onnxscript"} if framework == "torch" else {}
        return {"onnx": "onnx", **converter, **torch_needs}
    if format == "saved_model":
        return {"tensorflow": "tensorflow"}
    raise ConfigError(f"unknown export format {format!r}; expected 'onnx' or 'saved_model'.")


def _serving(net: KerasNet, output_activation: str, image_size: tuple[int, int], channels: int) -> ServingNet:
    frameworks.sync_state(net)
    serving = ServingNet(net, output_activation, name=f"{net.name}_serving")
    serving(keras.ops.zeros((1, *image_size, channels), dtype="float32"))
    return serving


def _signature(image_size: tuple[int, int], channels: int) -> list[Any]:
    return [keras.InputSpec(shape=(None, *image_size, channels), dtype="float32", name=INPUT_NAME)]


def write_onnx(net: KerasNet, output_activation: str, image_size: tuple[int, int], channels: int, path: Path) -> None:
    """Write ``net`` (plus ``output_activation``) to ``path`` as ONNX, with Keras's exporter for this framework."""
    serving = _serving(net, output_activation, image_size, channels)
    with keras_depthwise(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converters' notes about tracing are not the user's concern
        serving.export(
            str(path),
            format="onnx",
            input_signature=_signature(image_size, channels),
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    if frameworks.framework() == "jax":
        fix_jax2onnx_max_pool(path)


def write_saved_model(
    net: KerasNet, output_activation: str, image_size: tuple[int, int], channels: int, path: Path
) -> None:
    """Write ``net`` (plus ``output_activation``) to the folder ``path`` as a TensorFlow SavedModel.

    Its ``serve`` signature takes ``images``. Keras on torch writes one only
    through ``torch_xla``; without it, ConfigError, pointing to ONNX and to
    the other Keras backends. (tlcore is not tested with ``torch_xla``.)
    """
    framework = frameworks.framework()
    if framework == "torch" and importlib.util.find_spec("torch_xla") is None:
        raise ConfigError(
            "a TensorFlow SavedModel cannot be written from keras-torch here: Keras converts torch models to one "
            "only through torch_xla (StableHLO), which is not installed. Export with format 'onnx', or load the "
            "model on keras-tensorflow or keras-jax (Backend.load_model reads what any backend saved) and write the "
            "SavedModel there."
        )
    serving = _serving(net, output_activation, image_size, channels)
    with keras_depthwise(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serving.export(
            str(path), format="tf_saved_model", input_signature=_signature(image_size, channels), verbose=False
        )


def fix_jax2onnx_max_pool(path: Path) -> int:
    """Rewrite jax2onnx's 4-d ``MaxPool`` nodes over NHWC data as 2-d ones over NCHW; return how many.

    jax2onnx lowers ``reduce_window_max`` to ``MaxPool`` with one window entry
    per dimension of the NHWC tensor (``kernel_shape`` ``[1, kh, kw, 1]``),
    after unsqueezing two leading axes. ONNX Runtime pools only over 1-3
    spatial axes. Each such node becomes squeeze, transpose to NCHW, a 2-d
    ``MaxPool`` with the same window, strides, padding and dilation,
    transpose back and unsqueeze: the same values in the same shape. Nodes
    of any other form are left alone.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)  # weights jax2onnx wrote beside it stay there
    nodes: list[Any] = []
    fixed = 0
    for node in model.graph.node:
        attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
        kernel = list(attributes.get("kernel_shape", []))
        strides = list(attributes.get("strides", [1, 1, 1, 1]))
        pads = list(attributes.get("pads", [0] * 8))
        over_nhwc = len(kernel) == 4 and kernel[0] == kernel[3] == strides[0] == strides[3] == 1
        if node.op_type != "MaxPool" or not over_nhwc or pads[0] or pads[3] or pads[4] or pads[7]:
            nodes.append(node)
            continue
        fixed += 1
        name = node.name or f"maxpool_{fixed}"
        axes = helper.make_tensor(f"{name}_axes", onnx.TensorProto.INT64, [2], [0, 1])
        model.graph.initializer.append(axes)
        squeezed, nchw, pooled, nhwc = (f"{name}_{part}" for part in ("nhwc_in", "nchw_in", "nchw_out", "nhwc_out"))
        two_d: dict[str, Any] = {"kernel_shape": kernel[1:3], "strides": strides[1:3]}
        if "pads" in attributes:
            two_d["pads"] = [pads[1], pads[2], pads[5], pads[6]]
        if "dilations" in attributes:
            two_d["dilations"] = list(attributes["dilations"])[1:3]
        for key in ("ceil_mode", "auto_pad"):
            if key in attributes:
                two_d[key] = attributes[key]
        nodes += [
            helper.make_node("Squeeze", [node.input[0], axes.name], [squeezed], name=f"{name}_squeeze"),
            helper.make_node("Transpose", [squeezed], [nchw], perm=[0, 3, 1, 2], name=f"{name}_to_nchw"),
            helper.make_node("MaxPool", [nchw], [pooled], name=f"{name}_2d", **two_d),
            helper.make_node("Transpose", [pooled], [nhwc], perm=[0, 2, 3, 1], name=f"{name}_to_nhwc"),
            helper.make_node("Unsqueeze", [nhwc, axes.name], [node.output[0]], name=f"{name}_unsqueeze"),
        ]
    if fixed:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        onnx.save(model, str(path))
    return fixed
