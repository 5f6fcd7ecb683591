"""Per-group learning rates: discriminative fine-tuning and layer-wise decay, decided once in the core.

A phase may scale the learning rate of parts of the model:

- ``lr_multipliers``: ``{"backbone": 0.1}`` trains every backbone layer at a
  tenth of the phase's rate; a group name (``"stage5"``, ``"layer4"``) scales
  that group and wins over ``"backbone"``; ``"head"`` scales the head.
- ``layer_lr_decay``: layer-wise learning-rate decay by group. The head keeps
  its rate, the backbone's last group gets ``decay``, the one before it
  ``decay ** 2`` and so on down to the stem (ULMFiT's discriminative
  fine-tuning; BEiT's layer decay with the spec's groups as the layers).

Both multiply. The result, :class:`LearningRateScales`, names a factor for the
head and for every backbone layer; each backend applies it with its own
mechanism (torch parameter groups, a per-variable factor in the Keras
optimizers), scaling weight decay with the rate as torch does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tlcore._errors import ConfigError, did_you_mean
from tlcore._specs import LayerInfo

__all__ = ["BACKBONE", "HEAD", "LearningRateScales", "check_lr_options", "learning_rate_scales"]

HEAD = "head"
BACKBONE = "backbone"


@dataclass(frozen=True)
class LearningRateScales:
    """The factor on the phase's learning rate for the head and for each backbone layer (by name)."""

    head: float = 1.0
    layers: Mapping[str, float] = field(default_factory=dict)

    def of(self, layer: str) -> float:
        """The factor of backbone layer ``layer`` (1.0 when it is not listed)."""
        return self.layers.get(layer, 1.0)

    @property
    def uniform(self) -> bool:
        """Whether every part trains at the phase's own rate."""
        return self.head == 1.0 and all(value == 1.0 for value in self.layers.values())


def check_lr_options(phase: str, multipliers: Mapping[str, float], decay: float) -> None:
    """Refuse non-positive factors and a decay outside (0, 1] (names are checked against a backbone later)."""
    for key, value in multipliers.items():
        if not isinstance(key, str):
            raise ConfigError(f"phase {phase!r}: lr_multipliers keys must be group names; got {key!r}.")
        if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
            raise ConfigError(f"phase {phase!r}: lr_multipliers[{key!r}] must be a positive number; got {value!r}.")
    if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0.0 < decay <= 1.0:
        raise ConfigError(f"phase {phase!r}: layer_lr_decay must be in (0, 1]; got {decay!r}.")


def learning_rate_scales(
    phase: str,
    multipliers: Mapping[str, float],
    decay: float,
    layers: Sequence[LayerInfo],
    groups: Sequence[str],
) -> LearningRateScales:
    """The factors for a backbone with ``layers`` in ordered ``groups``.

    ``multipliers`` keys must be ``"head"``, ``"backbone"`` or one of ``groups``
    (ConfigError otherwise, with a suggestion).
    """
    check_lr_options(phase, multipliers, decay)
    known = (HEAD, BACKBONE, *groups)
    for key in multipliers:
        if key not in known:
            raise ConfigError(
                f"phase {phase!r}: lr_multipliers names {key!r}, which is not a group of this backbone."
                f"{did_you_mean(key, known)} Expected one of: {', '.join(known)}."
            )
    depth = {group: len(groups) - index for index, group in enumerate(groups)}
    backbone = float(multipliers.get(BACKBONE, 1.0))

    def factor(group: str) -> float:
        return float(multipliers.get(group, backbone)) * decay ** depth.get(group, len(groups))

    return LearningRateScales(
        head=float(multipliers.get(HEAD, 1.0)),
        layers={layer.name: factor(layer.group) for layer in layers},
    )
