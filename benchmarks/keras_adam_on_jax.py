"""A compiled keras-jax training step of efficientnet_lite0 with tlcore's ``TorchAdam`` and with Keras's Adam.

Prints, for each optimizer, the XLA kernels (fusions) of the compiled step,
its flops and bytes from XLA's cost analysis, and the median milliseconds of
a step over alternating rounds, on the benchmark's overhead setting (mnist-5k
images at its size and batch, fine-tuning from its ``fine_tune_at``)::

    .venv/bin/python benchmarks/keras_adam_on_jax.py [ROUNDS]

Both optimizers do the same arithmetic per weight; what can differ is how
many small kernels XLA makes of the per-variable scalars (learning rate,
bias corrections), which on a CPU cost time each. These are the figures
behind :meth:`tlcore_keras.optimizers.TorchOptimizer._vectors`.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported

import jax
import keras
import numpy as np
from tlcore_bench.run import WEIGHTS_NAME
from tlcore_bench.tasks import FULL, parity_recipe
from tlcore_keras.jax_steps import JaxSteps
from tlcore_keras.optimizers import TorchAdam

from tlcore import FineTuneAt, get_backend, make_head
from tlcore.checkpoints import convert_checkpoint
from tlcore.plugins import load_plugins

STEPS = 15


def compile_with(net: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile="auto",
    )


def kernels(net: keras.Model, x: np.ndarray, y: np.ndarray) -> str:
    """The compiled step's fusion count, flops and bytes accessed."""
    net.train_on_batch(x, y)
    state = net._get_jax_state(
        trainable_variables=True, non_trainable_variables=True, optimizer_variables=True, metrics_variables=True
    )
    compiled = jax.jit(net.train_step).lower(state, (x, y, None)).compile()
    fusions = len(re.findall(r"^\s*\S+ = .* fusion\(", compiled.as_text() or "", re.MULTILINE))
    cost = compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, list) else cost) or {}
    return f"{fusions:,} fusions, {cost.get('flops', 0):.3g} flops, {cost.get('bytes accessed', 0):.3g} bytes"


def step_ms(net: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """The mean milliseconds of a step over ``STEPS`` steps, after three warm-up steps, the state kept between."""
    steps = JaxSteps(net)
    for _ in range(3):
        float(steps.step(x, y)["loss"])
    started = time.perf_counter()
    losses = [steps.step(x, y)["loss"] for _ in range(STEPS)]
    [float(loss) for loss in losses]
    elapsed = time.perf_counter() - started
    steps.sync()
    return 1000 * elapsed / STEPS


def main(rounds: int) -> None:
    task = FULL.task(FULL.parity_tasks[0])
    size = (task.image_size, task.image_size)
    with tempfile.TemporaryDirectory() as folder:
        convert_checkpoint(FULL.weights, Path(folder) / WEIGHTS_NAME)
        weights = str(Path(folder) / f"{WEIGHTS_NAME}.json")
        model = get_backend("keras-jax").build_model(
            load_plugins().backbone("efficientnet_lite0", "keras-jax"),
            make_head(parity_recipe(task, weights, 0), 10),
            weights=weights,
            seed=0,
            image_size=size,
        )
    model.apply_freeze(FineTuneAt(task.fine_tune_at).plan(model.layers(), 0))
    net = model.native
    rng = np.random.default_rng(0)
    x = rng.random((task.batch_size, *size, 3), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, task.batch_size)]
    optimizers: dict[str, Callable[[], Any]] = {
        "tlcore TorchAdam": lambda: TorchAdam(learning_rate=1e-4, epsilon=1e-7),
        "keras.optimizers.Adam": lambda: keras.optimizers.Adam(learning_rate=1e-4, epsilon=1e-7),
    }
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for name, make in optimizers.items():
        compile_with(net, make())
        print(f"{name:22s} {kernels(net, x, y)}", flush=True)
    for _ in range(rounds):
        for name, make in optimizers.items():
            compile_with(net, make())
            times[name].append(step_ms(net, x, y))
    for name, values in times.items():
        rounds_ms = ", ".join(f"{value:.1f}" for value in values)
        print(f"{name:22s} median {statistics.median(values):.1f} ms a step (rounds: {rounds_ms})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
