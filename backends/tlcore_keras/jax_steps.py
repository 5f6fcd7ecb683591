"""Training steps on Keras's JAX backend that keep the training state in JAX arrays between steps.

On JAX, Keras trains functionally: a compiled step takes the model's, the
optimizer's and the metrics' variables as arrays and returns new ones.
``train_on_batch`` reads every variable into that state before each step and
writes every one back after it; on efficientnet_lite0 that is about 770
``Variable.assign`` calls a step, and 2 to 5 % of a fine-tuning step on a
2-core CPU (``benchmarks/overhead_alone.py keras-jax`` under ``cProfile``).
``keras.Model.fit`` reads the state once an epoch and writes it back once an
epoch; :class:`JaxSteps` does the same under tlcore's loop, and the trainer
writes the state back (:meth:`JaxSteps.sync`) before anything reads the
model: at the end of every epoch, and before predicting, snapshotting,
compiling again or ending the phase.

It calls what ``fit`` calls in Keras's JAX trainer: ``_get_jax_state``,
``train_function``, ``_jax_state`` and ``jax_state_sync``.
:func:`supports_kept_state` checks that they are there; without them (another
Keras, another backend, a distribution) the trainer uses ``train_on_batch``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from tlcore_keras import frameworks

__all__ = ["JaxSteps", "supports_kept_state"]

_INTERNALS = ("_get_jax_state", "make_train_function", "jax_state_sync", "reset_metrics", "metrics_variables")


def supports_kept_state(model: keras.Model) -> bool:
    """Whether ``model`` trains on Keras's JAX backend, undistributed, with the trainer internals ``fit`` uses."""
    if frameworks.framework() != "jax" or not all(hasattr(model, name) for name in _INTERNALS):
        return False
    from keras import distribution

    return distribution.distribution() is None


class JaxSteps:
    """Compiled training steps on one compiled JAX model, its state held between steps until :meth:`sync`.

    Every step starts from fresh metric variables, so each step's logs are of
    its own batch, as ``train_on_batch``'s are.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.state: tuple[Any, ...] | None = None
        self.fresh_metrics: list[np.ndarray] | None = None

    def step(self, inputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """One optimizer step on a batch; returns the batch's loss and metrics, as JAX arrays still computing."""
        model = self.model
        if self.fresh_metrics is None:
            # The first step builds the model's metrics and compiled step; train_on_batch does both.
            logs: dict[str, Any] = model.train_on_batch(inputs, targets, return_dict=True)
            model.reset_metrics()
            self.fresh_metrics = [np.array(variable.value) for variable in model.metrics_variables]
            return logs
        if self.state is None:
            model.make_train_function()
            self.state = model._get_jax_state(
                trainable_variables=True, non_trainable_variables=True, optimizer_variables=True
            )
        import jax

        state = (*self.state, [np.copy(value) for value in self.fresh_metrics])
        batch = (jax.device_put(inputs), jax.device_put(targets), None)
        outputs, new_state = model.train_function(state, iter([batch]))
        trainable, non_trainable, optimizer, _ = new_state
        self.state = (trainable, non_trainable, optimizer)
        model._jax_state = {
            "trainable_variables": trainable,
            "non_trainable_variables": non_trainable,
            "optimizer_variables": optimizer,
        }
        model._jax_state_synced = False
        return dict(outputs)

    def sync(self) -> None:
        """Write the held state back into the model's and optimizer's variables."""
        if self.state is not None:
            self.model.jax_state_sync()
            self.state = None
