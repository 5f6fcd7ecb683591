"""tlcore_keras's DepthwiseConv2D gives Keras's results, values and gradients, when it computes shifted products.

Runs in a keras-jax process of its own (``python test_depthwise_layer.py
FOLDER``): on JAX's CPU the layer takes the shifted-products path by itself,
which this checks too, against ``ops.depthwise_conv`` with the same weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import framework_env

# kernel, strides, padding, dilation, depth multiplier, bias, input height x width
CASES = [
    (3, 1, "same", 1, 1, False, (9, 9)),
    (5, 2, "valid", 1, 1, False, (11, 10)),
    (3, 2, "same", 1, 1, True, (8, 7)),
    (5, 1, "same", 1, 1, False, (6, 6)),
    (3, 1, "valid", 2, 2, True, (9, 8)),
    ((3, 1), (2, 1), "same", 1, 3, False, (7, 5)),
]
TOLERANCE = 1e-5  # largest difference over the largest value (sums of up to ~500 float32 products)


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("keras", "jax")), reason="needs keras and jax")
def test_shifted_products_match_keras_depthwise_conv(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, __file__, str(out)], env=framework_env(tmp_path / "keras_home"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["as_taps"] is True  # JAX on the CPU takes the fast path by itself
    for case, errors in zip(CASES, report["errors"], strict=True):
        assert errors["shape"] == errors["keras_shape"], case
        for what in ("output", "input_grad", "kernel_grad"):
            assert errors[what] < TOLERANCE, (case, what, errors[what])


def _outputs_and_grads(layer: Any, x: Any) -> tuple[Any, ...]:
    """The layer's output on ``x``, and the gradients of its sum of squares with respect to ``x`` and the kernel."""
    import jax
    import numpy as np

    def loss(inputs: Any, kernel: Any) -> Any:
        values = [kernel if v is layer.kernel else v.value for v in layer.trainable_variables]
        result, _ = layer.stateless_call(values, [], inputs)
        return (result**2).sum()

    grad_x, grad_k = jax.grad(loss, argnums=(0, 1))(x, layer.kernel.value)
    return np.asarray(layer(x)), np.asarray(grad_x), np.asarray(grad_k)


def _relative(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))


def _main(out: Path) -> None:
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import numpy as np
    from tlcore_keras.layers import DepthwiseConv2D, depthwise_as_taps

    rng = np.random.default_rng(0)
    errors = []
    for kernel, strides, padding, dilation, multiplier, bias, (height, width) in CASES:
        x = rng.normal(size=(2, height, width, 4)).astype("float32")
        options = dict(
            kernel_size=kernel, strides=strides, padding=padding, dilation_rate=dilation,
            depth_multiplier=multiplier, use_bias=bias, bias_initializer="random_normal",
        )  # fmt: skip
        ours, theirs = DepthwiseConv2D(**options), keras.layers.DepthwiseConv2D(**options)
        ours.build(x.shape)
        theirs.build(x.shape)
        theirs.set_weights(ours.get_weights())
        mine, reference = _outputs_and_grads(ours, x), _outputs_and_grads(theirs, x)
        names = ("output", "input_grad", "kernel_grad")
        report = {what: _relative(a, b) for what, a, b in zip(names, mine, reference, strict=True)}
        errors.append({"shape": list(mine[0].shape), "keras_shape": list(reference[0].shape), **report})
    out.write_text(json.dumps({"as_taps": depthwise_as_taps(), "errors": errors}))


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[2] / "backends")]
    _main(Path(sys.argv[1]))
