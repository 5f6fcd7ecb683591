"""One optimizer step on keras-torch over efficientnet_lite0's trainable variables, three ways.

Prints the median milliseconds of ``optimizer.apply`` for tlcore's ``TorchAdam``
(its multi-tensor torch path), the same optimizer through Keras's
per-variable ``update_step`` loop (the path it took before), and Keras's own
Adam (multi-tensor on torch too)::

    .venv/bin/python benchmarks/keras_torch_optimizer_step.py [STEPS]

The optimizer step alone, without the forward and backward passes: the
benchmark's overhead check (``tlcore bench --only speed``) measures whole
training steps.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

os.environ["KERAS_BACKEND"] = "torch"  # before Keras is imported

import keras
import torch
from tlcore_keras.optimizers import TorchAdam, TorchOptimizer

import tlcore


class PerVariableAdam(TorchAdam):
    """``TorchAdam`` through Keras's generic loop: one ``update_step`` per variable."""

    def _backend_update_step(self, grads: Any, variables: Any, learning_rate: Any) -> None:
        super(TorchOptimizer, self)._backend_update_step(grads, variables, learning_rate)


def median_ms(optimizer: keras.optimizers.Optimizer, variables: list[Any], grads: list[Any], steps: int) -> float:
    optimizer.build(variables)
    optimizer.apply(grads, variables)  # the first step builds state and schedules
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        optimizer.apply(grads, variables)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main(steps: int) -> None:
    backend = tlcore.get_backend("keras-torch")
    spec = tlcore.load_plugins().backbone("efficientnet_lite0", "keras-torch")
    model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=10), weights=None, seed=0, image_size=(48, 48))
    variables = list(model.native.trainable_variables)
    generator = torch.Generator().manual_seed(0)
    grads = [1e-3 * torch.randn(v.value.shape, generator=generator) for v in variables]
    print(f"{len(variables)} variables, {sum(v.value.numel() for v in variables):,} values; median of {steps} steps")
    variants = {
        "tlcore TorchAdam (multi-tensor)": TorchAdam(learning_rate=3e-4, epsilon=1e-7),
        "tlcore TorchAdam (per-variable)": PerVariableAdam(learning_rate=3e-4, epsilon=1e-7),
        "keras.optimizers.Adam": keras.optimizers.Adam(learning_rate=3e-4, epsilon=1e-7),
    }
    for name, optimizer in variants.items():
        print(f"{name:34s} {median_ms(optimizer, variables, grads, steps):7.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
