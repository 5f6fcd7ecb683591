"""Hand-written training loops: what a user of each framework would write without tlcore.

The library-overhead benchmark times tlcore's training step against these,
on the same model object (the same layers frozen, BatchNorm in the same
mode), the same batches already in memory, the same batch size and float32.
Each returns the training throughput of every epoch, in images per second.
Frameworks are imported inside the functions: only the worker of that
backend calls them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["HandLoop", "hand_loop", "keras_fit", "torch_loop"]

Batch = tuple[np.ndarray, np.ndarray]
HandLoop = Callable[[Any, Sequence[Batch], float, int], list[float]]


def torch_loop(net: Any, batches: Sequence[Batch], learning_rate: float, epochs: int) -> list[float]:
    """A plain PyTorch loop: tensors prepared once, Adam, cross-entropy, backward, step.

    The images are the NHWC arrays seen as NCHW (``permute``, the channels-last
    memory layout), as tlcore hands them to torch, so that the ratio measures
    the training loop, not the memory layout. Measured here: the same loop on
    ``.contiguous()`` NCHW tensors runs at about half the speed on the CPU.
    """
    import torch
    import torch.nn.functional as F

    device = next(net.parameters()).device
    data = [(torch.from_numpy(x).to(device).permute(0, 3, 1, 2), torch.from_numpy(y).to(device)) for x, y in batches]
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=learning_rate, eps=1e-7)
    rates: list[float] = []
    for _ in range(epochs):
        net.train()
        started, seen = time.perf_counter(), 0
        for images, labels in data:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(images), labels)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            seen += len(labels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(seen / (time.perf_counter() - started))
    return rates


def keras_fit(
    net: Any, batches: Sequence[Batch], learning_rate: float, epochs: int, optimizer: Any = None
) -> list[float]:
    """Plain ``keras.Model.fit`` on numpy arrays with Keras's Adam (or ``optimizer``), one epoch timed per callback."""
    import keras

    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    batch_size = len(batches[0][1])
    net.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-7),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile="auto",
    )

    class Timer(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.rates: list[float] = []
            self.started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.rates.append(len(labels) / (time.perf_counter() - self.started))

    timer = Timer()
    net.fit(images, labels, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])
    return timer.rates


def hand_loop(backend: str) -> HandLoop:
    """The hand-written loop for ``backend``: a plain torch loop, or ``keras.Model.fit``."""
    return torch_loop if backend == "torch" else keras_fit
