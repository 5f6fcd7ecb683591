"""Per-group learning rates take effect natively on every backend.

Plain SGD (no momentum, no decay) moves each weight by its learning rate times
its gradient, so with the backbone at a factor of 1e-3 the backbone must move
about a thousandth as far as at factor 1 (three steps: the gradients change a
little in between); with ``layer_lr_decay`` the stem must move far less than
the top.
"""

from __future__ import annotations

import numpy as np

import tlcore

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
