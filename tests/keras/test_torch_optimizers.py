"""On keras-torch, tlcore's optimizers update with multi-tensor torch ops and take torch.optim's steps exactly.

Runs in a keras-torch process of its own (``python test_torch_optimizers.py
FILE``). Each case updates three variables with fixed gradients: two from the
start with different learning-rate factors, the third added after two steps
(what gradual unfreezing does, so step counts differ between variables). The
same updates run through ``torch.optim`` with one parameter group per factor
and ``add_param_group``. Keras's per-variable ``update_step`` is made to
fail, so the test also checks that the multi-tensor path is the one taken.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import run_keras_script

CASES: dict[str, dict[str, Any]] = {
    "adam": {"kind": "adam", "weight_decay": 1e-2},
    "adamw": {"kind": "adam", "weight_decay": 1e-2, "decoupled": True},
    "sgd-nesterov": {"kind": "sgd", "weight_decay": 1e-3, "momentum": 0.9, "nesterov": True},
    "sgd-plain": {"kind": "sgd"},
}
LEARNING_RATE = 0.01
SCALES = (1.0, 0.5, 2.0)
TOLERANCE = 1e-6  # largest absolute difference; updates are about 1e-2


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("keras", "torch")), reason="needs keras, torch")
def test_multi_tensor_steps_match_torch_optim(tmp_path: Path) -> None:
    report = run_keras_script(__file__, "torch", tmp_path, timeout=300)
    assert sorted(report) == sorted(CASES)
    for case, difference in report.items():
        assert difference < TOLERANCE, (case, difference)


def _torch_optimizer(case: dict[str, Any], groups: list[dict[str, Any]]) -> Any:
    import torch

    if case["kind"] == "sgd":
        return torch.optim.SGD(
            groups, lr=LEARNING_RATE, momentum=case.get("momentum", 0.0), nesterov=case.get("nesterov", False),
            weight_decay=case.get("weight_decay", 0.0), foreach=False,
        )  # fmt: skip
    kind = torch.optim.AdamW if case.get("decoupled") else torch.optim.Adam
    return kind(groups, lr=LEARNING_RATE, eps=1e-7, weight_decay=case.get("weight_decay", 0.0), foreach=False)


def _tlcore_optimizer(case: dict[str, Any], scales: dict[str, float]) -> Any:
    from tlcore_keras.optimizers import TorchAdam, TorchSGD

    decay = case.get("weight_decay", 0.0)
    if case["kind"] == "sgd":
        return TorchSGD(
            learning_rate=LEARNING_RATE, momentum=case.get("momentum", 0.0), nesterov=case.get("nesterov", False),
            weight_decay=decay, scales=scales,
        )  # fmt: skip
    return TorchAdam(
        learning_rate=LEARNING_RATE, epsilon=1e-7, weight_decay=decay, decoupled=case.get("decoupled", False),
        scales=scales,
    )  # fmt: skip


def run_case(case: dict[str, Any]) -> float:
    """The largest difference between tlcore's and torch.optim's variables after four steps."""
    import keras
    import numpy as np
    import torch
    from tlcore_keras.optimizers import carry_state

    rng = np.random.default_rng(0)
    starts = [rng.standard_normal(shape).astype("float32") for shape in ((4, 3), (3,), (2, 2))]
    grads = [[rng.standard_normal(s.shape).astype("float32") for s in starts] for _ in range(4)]
    variables = [keras.Variable(s, name=f"v{i}") for i, s in enumerate(starts)]
    scales = {v.path: factor for v, factor in zip(variables, SCALES, strict=True)}
    params = [torch.nn.Parameter(torch.from_numpy(s.copy())) for s in starts]
    groups = [{"params": [p], "lr": LEARNING_RATE * f} for p, f in zip(params[:2], SCALES[:2], strict=True)]
    reference = _torch_optimizer(case, groups)

    optimizer = _tlcore_optimizer(case, scales)
    optimizer.build(variables[:2])
    for step, step_grads in enumerate(grads):
        if step == 2:  # the third variable starts training: a new optimizer carries the others' state
            grown = _tlcore_optimizer(case, scales)
            carry_state(optimizer, grown, variables)
            optimizer = grown
            reference.add_param_group({"params": [params[2]], "lr": LEARNING_RATE * SCALES[2]})
        count = 2 if step < 2 else 3
        optimizer.apply([torch.from_numpy(g) for g in step_grads[:count]], variables[:count])
        for param, g in zip(params[:count], step_grads[:count], strict=False):
            param.grad = torch.from_numpy(g.copy())
        reference.step()
    return max(
        float(np.abs(keras.ops.convert_to_numpy(v) - p.detach().numpy()).max())
        for v, p in zip(variables, params, strict=True)
    )


def main(out: str) -> None:
    from tlcore_keras.optimizers import TorchAdam, TorchSGD

    def per_variable(*args: Any) -> None:
        raise AssertionError("keras-torch took the per-variable update_step path")

    TorchAdam.update_step = TorchSGD.update_step = per_variable  # type: ignore[method-assign]
    Path(out).write_text(json.dumps({name: run_case(case) for name, case in CASES.items()}))


if __name__ == "__main__":
    main(sys.argv[1])
