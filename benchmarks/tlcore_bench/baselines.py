"""Hand-written training loops: what a user of each framework would write without tlcore.

The library-overhead benchmark times tlcore's training step against these,
on a twin of tlcore's model (built from the same weights, the same layers
frozen, BatchNorm in the same mode), the same batches already in memory, the
same batch size and float32. A loop is prepared once, with one untimed
epoch (compiling its step where the framework compiles), and then runs one
timed epoch at each call, so that its epochs can alternate with tlcore's.
Frameworks are imported inside the functions: only the worker of that
backend calls them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["EpochRunner", "HandLoop", "hand_loop", "keras_fit", "torch_loop"]

Batch = tuple[np.ndarray, np.ndarray]
# One timed epoch over the prepared batches; returns its training throughput in images per second.
EpochRunner = Callable[[], float]
# Prepares a loop on a framework model, its batches and learning rate (one untimed epoch included).
HandLoop = Callable[[Any, Sequence[Batch], float], EpochRunner]


def torch_loop(net: Any, batches: Sequence[Batch], learning_rate: float) -> EpochRunner:
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

    def epoch() -> float:
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
        return seen / (time.perf_counter() - started)

    epoch()  # untimed: the first optimizer step loads code and allocates the optimizer's state
    return epoch


def keras_fit(net: Any, batches: Sequence[Batch], learning_rate: float, optimizer: Any = None) -> EpochRunner:
    """Plain ``keras.Model.fit`` on numpy arrays with Keras's Adam (or ``optimizer``), one epoch a call.

    ``compile`` runs once, and the first ``fit`` epoch (which traces and
    compiles the step) is untimed; later calls reuse the compiled step.
    """
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

    def epoch() -> float:
        timer = Timer()
        net.fit(images, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
        return float(timer.rates[-1])

    epoch()  # untimed: traces and compiles the step
    return epoch


def hand_loop(backend: str) -> HandLoop:
    """The hand-written loop for ``backend``: a plain torch loop, or ``keras.Model.fit``."""
    return torch_loop if backend == "torch" else keras_fit
