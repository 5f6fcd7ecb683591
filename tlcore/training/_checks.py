"""Checks of a run's phases against the built model, before the first training step."""

from __future__ import annotations

from collections.abc import Sequence

from tlcore._backend import Model
from tlcore._errors import ConfigError
from tlcore.training._config import Phase
from tlcore.training._rates import learning_rate_scales

__all__ = ["check_phases"]


def check_phases(model: Model, phases: Sequence[Phase]) -> None:
    """Refuse, before any step, a phase whose freeze policy or learning-rate groups do not fit the model.

    Each phase's policy is planned against the built backbone's layers for
    every epoch it will use (gradual policies change with the epoch), and
    its ``lr_multipliers`` are resolved against the backbone's groups, so
    that a mistake in the last phase is reported before the first one
    trains. A ``ConfigError`` names the phase as a recipe does
    (``phases[1].freeze``), the bad value and what is allowed.
    """
    from tlcore._freeze import RegexPolicy

    layers = model.layers()
    names = {layer.name for layer in layers}
    backbone = model.backbone
    samples = (
        ", ".join(repr(layers[i].name) for i in sorted({0, len(layers) // 2, len(layers) - 1})) if layers else "none"
    )
    for index, phase in enumerate(phases):
        where = f"phases[{index}]"
        about = f"(phase {phase.name!r}, backbone {backbone.name} with {len(layers)} layers)"
        trainable: set[str] = set()
        try:
            for epoch in range(phase.epochs if phase.freeze.varies_by_epoch else 1):
                plan = phase.freeze.plan(layers, epoch)
                unknown = sorted(plan.trainable - names)
                if unknown:
                    raise ConfigError(
                        f"{phase.freeze.describe()} names layers this backbone lacks: {', '.join(unknown[:5])}."
                        f" Its layer names look like {samples}; groups: {', '.join(backbone.groups)}."
                    )
                trainable |= plan.trainable
        except ConfigError as exc:
            raise ConfigError(f"{where}.freeze {about}: {exc}") from None
        if isinstance(phase.freeze, RegexPolicy) and not trainable:
            raise ConfigError(
                f"{where}.freeze {about}: {phase.freeze.describe()} matches no layer; layer names look like "
                f'{samples}. Fix the pattern, or use freeze = "frozen" to train only the head.'
            )
        try:
            learning_rate_scales(phase.name, phase.lr_multipliers, phase.layer_lr_decay, layers, backbone.groups)
        except ConfigError as exc:
            raise ConfigError(f"{where}.lr_multipliers (backbone {backbone.name}): {exc}") from None
