"""Learning-rate schedules and per-group learning rates take effect natively on every backend.

Every optimizer step takes the core's schedule (``learning_rate_table``) on
every backend, for every schedule kind, also when gradual unfreezing builds a
new optimizer mid-phase.

Plain SGD (no momentum, no decay) moves each weight by its learning rate times
its gradient, so with the backbone at a factor of 1e-3 the backbone must move
about a thousandth as far as at factor 1 (three steps: the gradients change a
little in between); with ``layer_lr_decay`` the stem must move far less than
the top.
"""

from __future__ import annotations

from typing import SupportsFloat

import numpy as np
import pytest

import tlcore
from tlcore.training import learning_rate_table

from .conftest import Tiny, build, options


def _moves(backend: tlcore.Backend, tiny: Tiny, **rates: object) -> dict[str, float]:
    model = build(backend, tiny)
    before = model.backbone_state()
    phase = tlcore.Phase(freeze=tlcore.Unfrozen(), optimizer="sgd", momentum=0.0, learning_rate=0.01, **rates)  # type: ignore[arg-type]
    backend.make_trainer(model, options()).fit(tiny.train, [phase])
    after = model.backbone_state()
    layers = {layer.name: layer.group for layer in model.layers()}

    def moved(group: str) -> float:
        keys = [k for k in before if layers.get(k.rsplit(".", 1)[0]) == group and not k.endswith("tracked")]
        return float(sum(np.abs(after[k] - before[k]).sum() for k in keys))

    return {"stem": moved("stem"), "top": moved("top")}


def test_backbone_factor_and_layer_decay_scale_the_steps(backend: tlcore.Backend, tiny: Tiny) -> None:
    plain = _moves(backend, tiny)
    slow = _moves(backend, tiny, lr_multipliers={"backbone": 1e-3})
    assert plain["top"] > 0 and plain["stem"] > 0
    assert 0.5e-3 < slow["top"] / plain["top"] < 2e-3
    assert 0.5e-3 < slow["stem"] / plain["stem"] < 2e-3
    decayed = _moves(backend, tiny, layer_lr_decay=0.1)
    # stem is 9 groups below the head: 1e-9 against the top's 1e-1
    assert decayed["stem"] / plain["stem"] < 1e-6 < 1e-2 < decayed["top"] / plain["top"]


def _rates_taken(backend: tlcore.Backend, tiny: Tiny, phase: tlcore.Phase) -> tuple[list[float], tlcore.History]:
    """The phase's learning rate as the backend's optimizer has it before each training step, and the history."""
    trainer = backend.make_trainer(build(backend, tiny), options())
    taken: list[float] = []
    step = trainer._train_step

    def recorded(inputs: np.ndarray, labels: np.ndarray, cached: bool) -> tuple[SupportsFloat, SupportsFloat]:
        taken.append(trainer._learning_rate())
        return step(inputs, labels, cached)

    trainer._train_step = recorded  # type: ignore[method-assign]
    return taken, trainer.fit(tiny.train, [phase])


def _check_rates(phase: tlcore.Phase, tiny: Tiny, taken: list[float], history: tlcore.History) -> None:
    per_epoch = tiny.train.steps_per_epoch
    total = phase.epochs * per_epoch
    table = learning_rate_table(phase, total)
    assert len(taken) == total
    np.testing.assert_allclose(taken, table[:total], rtol=1e-6, atol=0)  # Keras holds the rate in float32
    reported = [record.learning_rate for record in history.phases[0].epochs]
    np.testing.assert_allclose(reported, table[per_epoch::per_epoch], rtol=1e-6, atol=0)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step", "onecycle"])
def test_every_step_takes_the_cores_schedule(backend: tlcore.Backend, tiny: Tiny, schedule: str) -> None:
    phase = tlcore.Phase(
        freeze=tlcore.Frozen(), epochs=3, optimizer="sgd", momentum=0.0, learning_rate=0.01, schedule=schedule,
        step_size=1, gamma=0.5, warmup_fraction=0.4, lr_multipliers={"head": 2.0},
    )  # fmt: skip
    _check_rates(phase, tiny, *_rates_taken(backend, tiny, phase))


def test_gradual_unfreezing_keeps_the_schedules_position(backend: tlcore.Backend, tiny: Tiny) -> None:
    """Unfreezing mid-phase (a new optimizer on Keras, carrying the old one's state) goes on along the schedule."""
    phase = tlcore.Phase(
        freeze=tlcore.GradualUnfreezing(every=1, start=1), epochs=3, optimizer="adam", learning_rate=1e-3,
        schedule="cosine", lr_multipliers={"backbone": 0.1},
    )  # fmt: skip
    taken, history = _rates_taken(backend, tiny, phase)
    trainable = [record.trainable_layers for record in history.phases[0].epochs]
    assert trainable[0] < trainable[1] < trainable[2], "one more group trains every epoch"
    _check_rates(phase, tiny, taken, history)
