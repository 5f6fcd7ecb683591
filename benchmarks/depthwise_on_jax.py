"""Prints keras-jax's training and inference throughput of efficientnet_lite0 on the CPU, with depthwise
convolutions as Keras computes them (``ops.depthwise_conv``) and as tlcore computes them there (shifted products).

    KERAS_BACKEND=jax .venv/bin/python benchmarks/depthwise_on_jax.py [IMAGE_SIZE]

The figures behind ``backends/tlcore_keras/layers.py``: batch 32, random images, a dense head, Keras's Adam.
"""

from __future__ import annotations

import functools
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
import tlcore_keras.layers
from tlcore_keras.efficientnet_lite import efficientnet_lite

from tlcore.architectures.efficientnet_lite import SPEC


def _rates(size: int, batches: int = 8) -> tuple[float, float]:
    backbone = efficientnet_lite(SPEC, (size, size))
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.SparseCategoricalCrossentropy(True))
    images = np.random.default_rng(0).random((32 * batches, size, size, 3), dtype=np.float32)
    labels = np.arange(len(images)) % 10
    model.fit(images, labels, batch_size=32, epochs=1, verbose=0)  # compiles
    started = time.perf_counter()
    model.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    train = len(images) / (time.perf_counter() - started)
    backbone.predict_on_batch(images[:32])  # compiles
    started = time.perf_counter()
    for start in range(0, len(images), 32):
        backbone.predict_on_batch(images[start : start + 32])
    return train, len(images) / (time.perf_counter() - started)


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 48
    print(f"keras {keras.version()} on {keras.backend.backend()}, efficientnet_lite0 at {size} px, batch 32")
    for name, taps in (("ops.depthwise_conv", False), ("shifted products", True)):
        tlcore_keras.layers.depthwise_as_taps = functools.partial(bool, taps)
        train, infer = _rates(size)
        print(f"{name:>20}: training {train:7.1f} img/s, inference {infer:7.1f} img/s")


if __name__ == "__main__":
    main()
