"""Keras optimizers that take exactly torch's steps, with a learning-rate factor per variable.

Keras's own Adam and SGD differ from torch's in ways that change results:
Keras's Adam adds epsilon to ``sqrt(v)`` before the bias correction (torch
after), so early steps of rarely-updated weights differ; Keras's SGD folds
the learning rate into the momentum buffer, which differs from torch's
``buf = momentum * buf + g; p -= lr * buf`` whenever the rate changes; Keras
has one step counter per optimizer where torch counts steps per parameter
(it matters when gradual unfreezing adds parameters mid-phase; here the
counts are one vector variable, advanced by one operation a step, rather
than a scalar variable per parameter: 149 more arrays in and out of every
compiled step on efficientnet_lite0). tlcore pins
torch's definitions, so these classes implement them with Keras's own
optimizer machinery (``keras.optimizers.Optimizer``: its variables, its
schedules, its compiled ``apply`` on every Keras backend):

- ``TorchAdam``: torch's ``Adam`` (``weight_decay`` as L2 added to the
  gradient) and, with ``decoupled=True``, torch's ``AdamW``
  (``p *= 1 - lr * weight_decay`` before the step).
- ``TorchSGD``: torch's ``SGD`` with momentum, optional Nesterov, L2 weight
  decay, no dampening.

Each variable may have its own learning-rate factor (``scales``: variable
path to factor), which is how per-group learning rates reach Keras; like a
torch parameter group's ``lr``, the factor also scales decoupled decay.

On the torch backend the update runs as a few multi-tensor ``torch._foreach_*``
calls over all variables that share a step count and a factor, as Keras's own
optimizers and torch's ``foreach`` implementations do there: Keras's eager
per-variable path costs about 25 dispatched ops per variable per step. One Adam
step over efficientnet_lite0's 149 variables took 124 ms that way and takes
22.5 ms now, on a 2-core CPU (``benchmarks/keras_torch_optimizer_step.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from tlcore_keras import frameworks

__all__ = ["TorchAdam", "TorchOptimizer", "TorchSGD", "carry_state"]


class TorchOptimizer(keras.optimizers.Optimizer):
    """Shared part: the per-variable learning-rate factors and per-variable step counts."""

    slot_names: tuple[str, ...] = ()

    def __init__(
        self, *, learning_rate: Any, weight_decay: float = 0.0, scales: Mapping[str, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.decay = float(weight_decay)  # not Keras's ``weight_decay``, which would decay a second time
        self.scales = dict(scales or {})
        self._scales: list[float] = []
        self._step_counts: Any = None
        self._slots: dict[str, list[Any]] = {}
        self._shared: dict[str, Any] = {}

    def build(self, variables: Sequence[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self._scales = [float(self.scales.get(variable.path, 1.0)) for variable in variables]
        self._step_counts = self.add_variable((len(variables),), dtype="float32", name="step_counts")
        for slot in self.slot_names:
            self._slots[slot] = [self.add_variable_from_reference(variable, name=slot) for variable in variables]

    def step_counts(self) -> np.ndarray:
        """How many steps each variable has taken, in the order the optimizer was built with."""
        return np.asarray(ops.convert_to_numpy(self._step_counts))

    def _count_step(self, variables: Sequence[Any]) -> None:
        """Add one to the step count of each of ``variables``, in one operation."""
        indices = [self._get_variable_index(variable) for variable in variables]
        if len(indices) == len(self._scales):
            self.assign(self._step_counts, self._step_counts + 1.0)
        else:
            counted = np.zeros(len(self._scales), dtype="float32")
            counted[indices] = 1.0
            self.assign(self._step_counts, self._step_counts + counted)

    def _index_and_rate(self, variable: Any, learning_rate: Any) -> tuple[int, Any]:
        """The variable's index and its learning rate, with its factor."""
        index = self._get_variable_index(variable)
        if "rates" in self._shared:
            return index, ops.cast(self._shared["rates"][index], variable.dtype)
        return index, ops.cast(learning_rate, variable.dtype) * self._scales[index]

    def slot(self, name: str, variable: Any) -> Any:
        """The optimizer's ``name`` state for ``variable`` (``momentum``, ``velocity``)."""
        return self._slots[name][self._get_variable_index(variable)]

    def _backend_update_step(self, grads: Sequence[Any], variables: Sequence[Any], learning_rate: Any) -> None:
        self._count_step(variables)
        if frameworks.framework() == "torch":
            self._torch_update(grads, variables, learning_rate)
        else:
            self._shared = self._vectors(learning_rate)
            try:
                super()._backend_update_step(grads, variables, learning_rate)
            finally:
                self._shared = {}  # tensors of this step's trace

    def _vectors(self, learning_rate: Any) -> dict[str, Any]:
        """What the variables' ``update_step`` calls of one step need, as vectors over all variables.

        Scalars computed per variable inside ``update_step`` (the learning rate
        times the variable's factor, Adam's bias corrections at the variable's
        own step count) are not shared between variables, so XLA compiles each
        as a small kernel of its own: about 300 more kernels than Keras's Adam
        in a compiled JAX step on efficientnet_lite0, and 3 % of the step's time
        on a 2-core CPU (``benchmarks/keras_adam_on_jax.py``). Here each is one
        vector operation; a variable takes its element.
        """
        return {"rates": ops.cast(learning_rate, "float32") * np.asarray(self._scales, dtype="float32")}

    def _torch_update(self, grads: Sequence[Any], variables: Sequence[Any], learning_rate: Any) -> None:
        """Every variable's update as multi-tensor torch ops, one group per (step count, learning-rate factor).

        Step counts and the rate are read to the host once per step (as
        torch's own non-capturable ``Adam`` reads its steps), so that bias
        corrections are Python floats, computed in double precision like torch's.
        """
        import torch

        with torch.no_grad():
            indices = [self._get_variable_index(variable) for variable in variables]
            counts = self._step_counts.value[indices].tolist()
            rate = float(learning_rate)
            groups: dict[tuple[float, float], list[int]] = {}
            for position, (index, count) in enumerate(zip(indices, counts, strict=True)):
                groups.setdefault((count, self._scales[index]), []).append(position)
            for (count, scale), positions in groups.items():
                params = [variables[p].value for p in positions]
                gradients = [grads[p].to(param.dtype) for p, param in zip(positions, params, strict=True)]
                self._foreach_step(gradients, params, [indices[p] for p in positions], rate * scale, count)

    def _foreach_step(self, grads: list[Any], params: list[Any], indices: list[int], rate: float, step: float) -> None:
        """One step of the variables at ``indices`` (torch tensors), all at step number ``step``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update({"weight_decay": self.decay, "scales": self.scales})
        return config


class TorchAdam(TorchOptimizer):
    """torch's ``Adam`` (``decoupled=False``) or ``AdamW`` (``decoupled=True``), step for step."""

    slot_names = ("momentum", "velocity")

    def __init__(
        self,
        *,
        learning_rate: Any,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        decoupled: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.decoupled = float(beta_1), float(beta_2), float(epsilon), decoupled

    def _vectors(self, learning_rate: Any) -> dict[str, Any]:
        """The rates, and the step sizes ``rate / (1 - beta_1 ** step)`` and ``1 / sqrt(1 - beta_2 ** step)``."""
        vectors = super()._vectors(learning_rate)
        counts = self._step_counts.value
        vectors["step_sizes"] = vectors["rates"] / (1.0 - ops.power(self.beta_1, counts))
        vectors["inverse_corrections"] = 1.0 / ops.sqrt(1.0 - ops.power(self.beta_2, counts))
        return vectors

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index, rate = self._index_and_rate(variable, learning_rate)
        shared = self._shared or self._vectors(learning_rate)  # or called on its own, not from this step
        step_size = ops.cast(shared["step_sizes"][index], variable.dtype)
        inverse_correction = ops.cast(shared["inverse_corrections"][index], variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.decay and self.decoupled:
            self.assign(variable, variable * (1.0 - rate * self.decay))
        elif self.decay:
            gradient = gradient + self.decay * variable
        m, v = self.slot("momentum", variable), self.slot("velocity", variable)
        new_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        new_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient)
        self.assign(m, new_m)
        self.assign(v, new_v)
        denominator = ops.sqrt(new_v) * inverse_correction + self.epsilon
        self.assign_sub(variable, step_size * new_m / denominator)

    def _foreach_step(self, grads: list[Any], params: list[Any], indices: list[int], rate: float, step: float) -> None:
        import torch

        if self.decay and self.decoupled:
            torch._foreach_mul_(params, 1.0 - rate * self.decay)
        elif self.decay:
            grads = list(torch._foreach_add(grads, params, alpha=self.decay))
        m = [self._slots["momentum"][i].value for i in indices]
        v = [self._slots["velocity"][i].value for i in indices]
        torch._foreach_mul_(m, self.beta_1)
        torch._foreach_add_(m, grads, alpha=1.0 - self.beta_1)
        torch._foreach_mul_(v, self.beta_2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.beta_2)
        denominator = torch._foreach_sqrt(v)
        torch._foreach_div_(denominator, math.sqrt(1.0 - self.beta_2**step))
        torch._foreach_add_(denominator, self.epsilon)
        torch._foreach_addcdiv_(params, m, denominator, value=-rate / (1.0 - self.beta_1**step))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "decoupled": self.decoupled}
        )
        return config


class TorchSGD(TorchOptimizer):
    """torch's ``SGD``: ``buf = momentum * buf + g``; ``p -= lr * (g + momentum * buf if nesterov else buf)``."""

    slot_names = ("momentum",)

    def __init__(self, *, learning_rate: Any, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        _, rate = self._index_and_rate(variable, learning_rate)
        gradient = ops.cast(gradient, variable.dtype)
        if self.decay:
            gradient = gradient + self.decay * variable
        if self.momentum:
            buffer = self.slot("momentum", variable)
            new_buffer = self.momentum * buffer + gradient
            self.assign(buffer, new_buffer)
            gradient = gradient + self.momentum * new_buffer if self.nesterov else new_buffer
        self.assign_sub(variable, rate * gradient)

    def _foreach_step(self, grads: list[Any], params: list[Any], indices: list[int], rate: float, step: float) -> None:
        import torch

        if self.decay:
            grads = list(torch._foreach_add(grads, params, alpha=self.decay))
        if self.momentum:
            buffers = [self._slots["momentum"][i].value for i in indices]
            torch._foreach_mul_(buffers, self.momentum)
            torch._foreach_add_(buffers, grads)
            grads = list(torch._foreach_add(grads, buffers, alpha=self.momentum)) if self.nesterov else buffers
        torch._foreach_add_(params, grads, alpha=-rate)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


def carry_state(old: TorchOptimizer, new: TorchOptimizer, variables: Sequence[Any]) -> None:
    """Build ``new`` on ``variables`` and give it ``old``'s state for the variables both optimise.

    What torch does when gradual unfreezing adds parameters to a running
    optimizer: the others keep their moments and step counts, the new ones
    start from zero.
    """
    new.build(list(variables))
    if not old.built:
        return
    old_index = {variable.path: i for i, variable in enumerate(old._trainable_variables)}
    old_counts, counts = old.step_counts(), new.step_counts().copy()
    for i, variable in enumerate(new._trainable_variables):
        j = old_index.get(variable.path)
        if j is None:
            continue
        counts[i] = old_counts[j]
        for slot in new.slot_names:
            new._slots[slot][i].assign(old._slots[slot][j])
    new._step_counts.assign(counts)
    new.iterations.assign(old.iterations)
