"""Keras layers the portable backbones are built from, where Keras's own need help on some backend.

:class:`DepthwiseConv2D` is Keras's layer, same weights, names, config and
results, computed differently where that is much faster: XLA on the CPU
runs a depthwise (grouped) convolution and its gradient as slow generic
loops. Measured on this project's 2-core CPU, efficientnet_lite0 at 48 px,
batch 32, keras-jax (``KERAS_BACKEND=jax .venv/bin/python
benchmarks/depthwise_on_jax.py``): training 22 img/s with
``ops.depthwise_conv`` against 111 img/s as a sum of shifted products;
inference 128 against 958 img/s. TensorFlow and torch run their own
depthwise kernels on the CPU, and every backend's GPU convolution is fast, so
everywhere else the layer is Keras's.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from functools import cache
from typing import Any

import keras
from keras import ops

from tlcore_keras import frameworks

__all__ = ["DepthwiseConv2D", "depthwise_as_taps", "keras_depthwise"]


@cache
def _jax_on_cpu() -> bool:
    return frameworks.jax_on_cpu()


_KERAS_DEPTHWISE = contextvars.ContextVar("tlcore_keras_depthwise", default=False)


def depthwise_as_taps() -> bool:
    """True where depthwise convolutions are computed as shifted products: JAX running on the CPU.

    False inside :func:`keras_depthwise`.
    """
    return _jax_on_cpu() and not _KERAS_DEPTHWISE.get()


@contextlib.contextmanager
def keras_depthwise() -> Iterator[None]:
    """Compute depthwise convolutions with Keras's own operation while inside, on every backend.

    For exports traced inside it (ONNX, SavedModel): one grouped convolution
    per layer instead of ``kernel_h * kernel_w`` shifted products, which
    converts faster and serves faster wherever the model is run next.
    """
    token = _KERAS_DEPTHWISE.set(True)
    try:
        yield
    finally:
        _KERAS_DEPTHWISE.reset(token)


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (the odd pixel after), which Keras uses on every backend."""
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="tlcore")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D``, as a sum of ``kernel_h * kernel_w`` shifted products on JAX's CPU.

    Each output is ``sum over (i, j) of x[stride * y + i * dilation, stride * x + j * dilation] * w[i, j]``,
    which is the convolution itself, in elementwise operations that XLA fuses
    and differentiates cheaply. Channels-first inputs use Keras's path.
    Registered as ``tlcore>DepthwiseConv2D``: a saved model loads with
    ``keras.models.load_model`` once this module is imported, on every backend.
    """

    def call(self, inputs: Any) -> Any:
        if not depthwise_as_taps() or self.data_format != "channels_last":
            return super().call(inputs)
        outputs = self._taps(inputs)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def _taps(self, x: Any) -> Any:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        height, width = x.shape[1], x.shape[2]
        if self.padding == "same":
            x = ops.pad(x, ((0, 0), _same_padding(height, kh, sh, dh), _same_padding(width, kw, sw, dw), (0, 0)))
            height, width = x.shape[1], x.shape[2]
        out_h = (height - (kh - 1) * dh - 1) // sh + 1
        out_w = (width - (kw - 1) * dw - 1) // sw + 1
        channels, multiplier = x.shape[-1], self.depth_multiplier
        if multiplier != 1:  # output channel c * multiplier + m, as Keras orders them
            x = ops.repeat(x, multiplier, axis=-1)
        kernel = ops.reshape(self.kernel, (kh, kw, channels * multiplier))
        outputs = None
        for i in range(kh):
            for j in range(kw):
                top, left = i * dh, j * dw
                window = x[:, top : top + sh * (out_h - 1) + 1 : sh, left : left + sw * (out_w - 1) + 1 : sw, :]
                term = window * kernel[i, j]
                outputs = term if outputs is None else outputs + term
        return outputs
