"""Converting weights between Keras's layout and PyTorch's, under canonical names.

tlcore's neutral state is PyTorch's: ``<layer>.<tensor>`` keys with torch's
tensor names and layouts (``weight`` OIHW for convolutions, ``running_var``
for BatchNorm). Keras keeps the same numbers under other names and layouts:

=================  ==========================  ===========================
kind               Keras variable              torch tensor
=================  ==========================  ===========================
conv               kernel (kh, kw, in, out)    weight (out, in, kh, kw)
depthwise_conv     kernel (kh, kw, C, m);      weight (C*m, 1, kh, kw)
                   Keras 2: depthwise_kernel
dense              kernel (in, out)            weight (out, in)
batchnorm          gamma, beta, moving_mean,   weight, bias, running_mean,
                   moving_variance             running_var
conv (separable)   depthwise_kernel,           conv_dw.weight, conv_pw.weight
                   pointwise_kernel            (timm's SeparableConv2d names)
any                bias                        bias
other              <name>                      <name> (unchanged)
=================  ==========================  ===========================

BatchNorm's ``num_batches_tracked`` counter has no Keras counterpart: it is
never produced, and ignored when loading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from tlcore import LayerInfo, WeightsError
from tlcore.weights import mismatch_problems

__all__ = [
    "keras_layer_state",
    "keras_to_torch",
    "load_torch_layout_state",
    "torch_tensor_name",
    "torch_to_keras",
]

_TORCH_NAMES: dict[str, dict[str, str]] = {
    "conv": {"kernel": "weight", "depthwise_kernel": "conv_dw.weight", "pointwise_kernel": "conv_pw.weight"},
    "depthwise_conv": {"kernel": "weight", "depthwise_kernel": "weight"},
    "dense": {"kernel": "weight"},
    "batchnorm": {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"},
}
_IGNORED = ("num_batches_tracked",)


def torch_tensor_name(kind: str, keras_name: str) -> str:
    """The torch tensor name of a Keras variable (``kernel`` of a ``conv`` is ``weight``)."""
    return _TORCH_NAMES.get(kind, {}).get(keras_name, keras_name)


def _conversion(kind: str, tensor_name: str) -> str:
    """``conv``, ``depthwise``, ``dense`` or ``same`` for one torch tensor of a layer of ``kind``."""
    if tensor_name == "conv_dw.weight" or (kind == "depthwise_conv" and tensor_name == "weight"):
        return "depthwise"
    if tensor_name == "conv_pw.weight" or (kind == "conv" and tensor_name == "weight"):
        return "conv"
    if kind == "dense" and tensor_name == "weight":
        return "dense"
    return "same"


def _check_rank(array: np.ndarray, rank: int, kind: str, tensor_name: str, layout: str) -> None:
    if array.ndim != rank:
        raise WeightsError(
            f"{kind} tensor {tensor_name!r} has shape {tuple(array.shape)}; expected {rank} dimensions ({layout})."
        )


def torch_to_keras(
    kind: str, tensor_name: str, array: np.ndarray, *, keras_shape: Sequence[int] | None = None
) -> np.ndarray:
    """One torch-layout tensor of a layer of ``kind`` in Keras's layout (a new C-contiguous array).

    ``keras_shape`` (the Keras variable's shape) is needed only for depthwise
    kernels with a depth multiplier above 1, where torch's ``C * m`` output
    channels cannot be split without it.
    """
    array = np.asarray(array)
    how = _conversion(kind, tensor_name)
    if how == "conv":
        _check_rank(array, 4, kind, tensor_name, "torch conv weight: out, in, kh, kw")
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if how == "depthwise":
        _check_rank(array, 4, kind, tensor_name, "torch depthwise weight: C * multiplier, 1, kh, kw")
        total, one, kh, kw = array.shape
        multiplier = int(keras_shape[3]) if keras_shape is not None else 1
        if one != 1 or total % multiplier:
            raise WeightsError(
                f"{kind} tensor {tensor_name!r} has shape {tuple(array.shape)}; expected (C * {multiplier}, 1, kh, kw)."
            )
        return np.ascontiguousarray(array.reshape(total // multiplier, multiplier, kh, kw).transpose(2, 3, 0, 1))
    if how == "dense":
        _check_rank(array, 2, kind, tensor_name, "torch linear weight: out, in")
        return np.ascontiguousarray(array.T)
    return np.array(array, copy=True, order="C")


def keras_to_torch(kind: str, tensor_name: str, array: np.ndarray) -> np.ndarray:
    """One Keras-layout tensor, destined for torch's ``tensor_name``, in torch's layout (a new array)."""
    array = np.asarray(array)
    how = _conversion(kind, tensor_name)
    if how == "conv":
        _check_rank(array, 4, kind, tensor_name, "Keras conv kernel: kh, kw, in, out")
        return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
    if how == "depthwise":
        _check_rank(array, 4, kind, tensor_name, "Keras depthwise kernel: kh, kw, C, multiplier")
        kh, kw, channels, multiplier = array.shape
        return np.ascontiguousarray(array.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))
    if how == "dense":
        _check_rank(array, 2, kind, tensor_name, "Keras dense kernel: in, out")
        return np.ascontiguousarray(array.T)
    return np.array(array, copy=True, order="C")


def _variables(layer: keras.layers.Layer, info: LayerInfo) -> dict[str, Any]:
    """``{torch tensor name: Keras variable}`` of one layer."""
    named: dict[str, Any] = {}
    for variable in layer.weights:
        key = torch_tensor_name(info.kind, variable.name)
        if key in named:
            raise WeightsError(f"layer {info.name!r} has two variables that map to {key!r}; cannot name them.")
        named[key] = variable
    return named


def keras_layer_state(layer: keras.layers.Layer, info: LayerInfo) -> dict[str, np.ndarray]:
    """Every variable of ``layer`` as ``{"<layer>.<torch tensor name>": array in torch layout}``."""
    return {
        f"{info.name}.{key}": keras_to_torch(info.kind, key, keras.ops.convert_to_numpy(variable))
        for key, variable in _variables(layer, info).items()
    }


def load_torch_layout_state(
    layers: Sequence[tuple[LayerInfo, keras.layers.Layer]],
    state: Mapping[str, np.ndarray],
    *,
    what: str = "the given state",
) -> None:
    """Assign a torch-layout state with canonical names (``<layer>.<tensor>``) to the Keras layers.

    Strict: missing, unexpected and mis-shaped tensors raise WeightsError
    (listing up to five of each) before any variable is changed. BatchNorm
    ``num_batches_tracked`` counters are ignored. Layers that cache values
    derived from their variables (``Normalization``) are refreshed.
    """
    targets: dict[str, tuple[LayerInfo, str, Any]] = {}
    for info, layer in layers:
        for key, variable in _variables(layer, info).items():
            targets[f"{info.name}.{key}"] = (info, key, variable)
    given = {k: v for k, v in state.items() if not k.endswith(_IGNORED)}
    missing = [k for k in targets if k not in given]
    unexpected = [k for k in given if k not in targets]
    converted: dict[str, np.ndarray] = {}
    mismatched: list[str] = []
    for key in targets.keys() & given.keys():
        info, tensor_name, variable = targets[key]
        shape = tuple(int(d) for d in variable.shape)
        try:
            value = torch_to_keras(info.kind, tensor_name, given[key], keras_shape=shape)
        except WeightsError:
            value = None
        if value is None or value.shape != shape:
            expected = keras_to_torch(info.kind, tensor_name, np.zeros(shape, dtype=np.float32)).shape
            mismatched.append(f"{key!r} is {tuple(expected)} in the model but {tuple(np.shape(given[key]))} given")
        else:
            converted[key] = value
    problems = mismatch_problems(list(missing), list(unexpected), list(mismatched))
    if problems:
        raise WeightsError(
            f"weights from {what} do not fit this backbone: {'; '.join(problems)}. Expected torch-layout tensors "
            "named '<layer>.<tensor>' after this backbone's layers (what backbone_state() returns)."
        )
    for key, value in converted.items():
        variable = targets[key][2]
        variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype), copy=False))
    for _, layer in layers:  # layers that cache values computed from their variables (Normalization)
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize):
            finalize()
