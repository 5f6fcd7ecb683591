"""Learning rates: per-group factors and schedules, as the core computes them, and the options that ask for them.

The schedules' table is checked against torch's own schedulers, which run in
a process of their own (this module imports no framework).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tlcore
from tests.processes import framework_env
from tlcore._recipe import parse_recipe
from tlcore.training import learning_rate_at, learning_rate_scales, learning_rate_table

GROUPS = ("stem", "stage1", "stage2", "top")
LAYERS = [tlcore.LayerInfo(name=f"{group}_conv", group=group, kind="conv", num_params=10) for group in GROUPS]


def test_backbone_multiplier_scales_every_backbone_layer_and_a_group_overrides_it() -> None:
    scales = learning_rate_scales("p", {"backbone": 0.1, "top": 0.5, "head": 2.0}, 1.0, LAYERS, GROUPS)
    assert scales.head == 2.0
    assert scales.layers == {"stem_conv": 0.1, "stage1_conv": 0.1, "stage2_conv": 0.1, "top_conv": 0.5}
    assert not scales.uniform


def test_layer_decay_counts_groups_down_from_the_head() -> None:
    scales = learning_rate_scales("p", {}, 0.5, LAYERS, GROUPS)
    assert scales.head == 1.0
    assert scales.layers == {"top_conv": 0.5, "stage2_conv": 0.25, "stage1_conv": 0.125, "stem_conv": 0.0625}


def test_no_option_means_every_factor_is_one() -> None:
    assert learning_rate_scales("p", {}, 1.0, LAYERS, GROUPS).uniform


def test_unknown_group_is_named_with_a_suggestion() -> None:
    with pytest.raises(tlcore.ConfigError, match=r"'stage3'.*not a group of this backbone. Did you mean 'stage2'\?"):
        learning_rate_scales("p", {"stage3": 0.1}, 1.0, LAYERS, GROUPS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lr_multipliers": {"backbone": 0.0}}, r"lr_multipliers\['backbone'\] must be a positive number; got 0.0"),
        ({"lr_multipliers": {"backbone": "x"}}, r"must be a positive number; got 'x'"),
        ({"layer_lr_decay": 1.5}, r"layer_lr_decay must be in \(0, 1\]; got 1.5"),
        ({"layer_lr_decay": 0}, r"layer_lr_decay must be in \(0, 1\]; got 0"),
    ],
)
def test_phase_refuses_bad_factors(options: dict[str, object], message: str) -> None:
    with pytest.raises(tlcore.ConfigError, match=message):
        tlcore.Phase(**options)  # type: ignore[arg-type]


def test_recipe_passes_the_options_to_the_phase() -> None:
    document = {
        "backbone": {"name": "efficientnet_lite0"},
        "data": {"dataset": "digits"},
        "phases": [{"freeze": "unfrozen", "lr_multipliers": {"backbone": 0.1}, "layer_lr_decay": 0.8}],
    }
    phase = parse_recipe(document).phases[0]
    assert dict(phase.lr_multipliers) == {"backbone": 0.1} and phase.layer_lr_decay == 0.8
    document["phases"] = [{"layer_lr_decay": 2.0}]
    with pytest.raises(tlcore.RecipeError, match=r"recipe key 'phases\[0\]'.*layer_lr_decay must be in \(0, 1\]"):
        parse_recipe(document)


# -- schedules: the rate at every optimizer step, written once in the core -------------------------------------------

# Computes, in a torch process of its own, each case's rates at every step as torch's own schedulers give them
# (CosineAnnealingLR, StepLR, OneCycleLR on two parameter groups at factors 1 and 0.1, as the torch backend built
# them before the core had schedules) and as the torch backend applies the core's table now (LambdaLR).
TORCH_RATES = r"""
import json, sys, warnings
import numpy as np
import torch
import tlcore
from tlcore_torch.trainer import make_optimizer, make_schedule

warnings.simplefilter("ignore")  # LambdaLR/OneCycleLR stepped without a backward pass
cases = json.loads(open(sys.argv[1]).read())
out = {}


def groups():
    return [{"params": [torch.nn.Parameter(torch.zeros(1))], "scale": scale} for scale in (1.0, 0.1)]


def run(optimizer, schedule, total):
    rates = [[group["lr"] for group in optimizer.param_groups]]
    for _ in range(total):
        optimizer.step()
        if schedule is not None:
            schedule.step()
        rates.append([group["lr"] for group in optimizer.param_groups])
    return rates


for name, case in cases.items():
    total = case.pop("total")
    phase = tlcore.Phase(optimizer="sgd", **case)
    steps_per_epoch = max(1, total // phase.epochs)
    optimizer = make_optimizer(phase, groups())
    lr = phase.learning_rate
    if phase.schedule == "cosine":
        reference = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total))
    elif phase.schedule == "step":
        reference = torch.optim.lr_scheduler.StepLR(optimizer, phase.step_size * steps_per_epoch, phase.gamma)
    elif phase.schedule == "onecycle":
        reference = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[lr * g["scale"] for g in optimizer.param_groups], total_steps=max(2, total),
            pct_start=phase.warmup_fraction,
        )
    else:
        reference = None
    torch_rates = run(optimizer, reference, total)
    optimizer = make_optimizer(phase, groups())
    tlcore_rates = run(optimizer, make_schedule(phase, optimizer, total), total)
    out[name] = {"torch": torch_rates, "tlcore": tlcore_rates}
open(sys.argv[2], "w").write(json.dumps(out))
"""


def _schedule_cases() -> dict[str, dict[str, object]]:
    cases: dict[str, dict[str, object]] = {}
    for total, epochs in ((0, 1), (1, 1), (2, 1), (9, 3), (10, 3), (37, 4), (320, 10), (1000, 10)):
        for lr in (3e-4, 0.01):
            base = {"total": total, "epochs": epochs, "learning_rate": lr}
            cases[f"constant-{total}-{lr}"] = {**base, "schedule": "constant"}
            cases[f"cosine-{total}-{lr}"] = {**base, "schedule": "cosine"}
            for step_size, gamma in ((1, 0.1), (2, 0.5)):
                cases[f"step-{total}-{lr}-{step_size}"] = {
                    **base, "schedule": "step", "step_size": step_size, "gamma": gamma,
                }  # fmt: skip
            for warmup in (0.0, 0.3, 0.45):
                cases[f"onecycle-{total}-{lr}-{warmup}"] = {**base, "schedule": "onecycle", "warmup_fraction": warmup}
    return cases


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_table_is_torch_schedulers_rates_and_the_torch_backend_applies_it(tmp_path: Path) -> None:
    cases = _schedule_cases()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    subprocess.run(
        [sys.executable, "-c", TORCH_RATES, str(tmp_path / "cases.json"), str(tmp_path / "rates.json")],
        env=framework_env(), check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    rates = json.loads((tmp_path / "rates.json").read_text())
    assert sorted(rates) == sorted(cases)
    for name, case in cases.items():
        case = dict(case)
        total = int(case.pop("total"))  # type: ignore[call-overload]
        table = learning_rate_table(tlcore.Phase(**case), total)  # type: ignore[arg-type]
        torch_rates = np.array(rates[name]["torch"])
        assert table.dtype == np.float64 and table.shape == (total + 1,), name
        np.testing.assert_allclose(table, torch_rates[:, 0], rtol=1e-12, atol=0, err_msg=name)
        # Each group follows the table at its factor, through torch's LambdaLR, to float64 rounding.
        np.testing.assert_allclose(np.array(rates[name]["tlcore"]), torch_rates, rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_allclose(torch_rates[:, 1], 0.1 * table, rtol=1e-12, atol=0, err_msg=name)


def test_schedules_by_their_definition() -> None:
    cosine = learning_rate_table(tlcore.Phase(schedule="cosine", learning_rate=0.1), 4)
    np.testing.assert_allclose(cosine, 0.05 * (1 + np.cos(np.pi * np.arange(5) / 4)), rtol=1e-15, atol=1e-18)
    step = learning_rate_table(tlcore.Phase(schedule="step", learning_rate=1.0, epochs=4, step_size=2, gamma=0.5), 8)
    assert step.tolist() == [1.0] * 4 + [0.5] * 4 + [0.25]  # 2 steps an epoch, halved every 2 epochs
    onecycle = learning_rate_table(tlcore.Phase(schedule="onecycle", learning_rate=1.0, warmup_fraction=0.3), 10)
    assert onecycle[0] == pytest.approx(1 / 25) and onecycle[2] == 1.0  # up to the peak at step 0.3 * 10 - 1
    assert np.all(np.diff(onecycle[:3]) > 0) and np.all(np.diff(onecycle[2:10]) < 0)
    assert onecycle[9] == pytest.approx(1 / 25e4)  # torch's last step; [10] is the rate after it
    assert learning_rate_table(tlcore.Phase(learning_rate=0.3), 3).tolist() == [0.3] * 4


def test_rate_at_a_step_is_the_tables_and_the_last_one_past_the_end() -> None:
    phase = tlcore.Phase(schedule="cosine", learning_rate=0.01)
    table = learning_rate_table(phase, 10)
    assert [learning_rate_at(phase, 10, step) for step in range(11)] == table.tolist()
    assert learning_rate_at(phase, 10, 25) == table[-1] == 0.0 and learning_rate_at(phase, 10, -1) == table[0]
    assert len(learning_rate_table(phase, 0)) == 1


def test_onecycle_where_torch_would_divide_by_zero_takes_the_phase_end() -> None:
    # warm-up of 0.25 * 4 = 1 step: torch divides 0 by 0 at step 0; warm-up 1.0: 1 by 0 at the last step
    short = learning_rate_table(tlcore.Phase(schedule="onecycle", learning_rate=1.0, warmup_fraction=0.25), 4)
    assert short[0] == 1.0 and np.all(np.isfinite(short))
    whole = learning_rate_table(tlcore.Phase(schedule="onecycle", learning_rate=1.0, warmup_fraction=1.0), 4)
    assert whole[3] == 1.0 and whole[4] == pytest.approx(1 / 25e4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"step_size": 0}, r"step_size must be a whole number of epochs, at least 1; got 0"),
        ({"step_size": 1.5}, r"step_size must be a whole number of epochs, at least 1; got 1.5"),
        ({"warmup_fraction": 1.5}, r"warmup_fraction must be in \[0, 1\]; got 1.5"),
        ({"warmup_fraction": -0.1}, r"warmup_fraction must be in \[0, 1\]; got -0.1"),
    ],
)
def test_phase_refuses_schedules_that_cannot_run(options: dict[str, object], message: str) -> None:
    with pytest.raises(tlcore.ConfigError, match=message):
        tlcore.Phase(**options)  # type: ignore[arg-type]


def test_table_refuses_a_negative_step_count() -> None:
    with pytest.raises(tlcore.ConfigError, match=r"total_steps must be a whole number >= 0; got -1"):
        learning_rate_table(tlcore.Phase(), -1)
