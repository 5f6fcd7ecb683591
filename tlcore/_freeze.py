"""Freeze policies: which backbone layers train, decided from names alone.

A policy sees the backbone's ordered :class:`~tlcore.LayerInfo` list (names,
groups, kinds) and returns a :class:`FreezePlan`. The backend applies the plan
natively, so the same policy freezes the same layers in every framework.

BatchNorm mode is explicit: a frozen BatchNorm layer is always in inference
mode (its running statistics never change). ``train_bn`` says whether an
*unfrozen* BatchNorm layer updates its statistics; the default ``False`` keeps
every BatchNorm in inference mode, as Keras's transfer-learning guide does.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tlcore._errors import ConfigError, did_you_mean
from tlcore._specs import LayerInfo

__all__ = [
    "FineTuneAt",
    "FreezePlan",
    "FreezePolicy",
    "Frozen",
    "GradualUnfreezing",
    "LastN",
    "RegexPolicy",
    "TrainGroups",
    "Unfrozen",
]


@dataclass(frozen=True)
class FreezePlan:
    """The outcome of a policy: which layers train, which BatchNorms update stats.

    ``trainable`` holds layers with weights only. ``selected`` is everything
    the policy chose, weightless layers included (``None``: the same as
    ``trainable``): a framework-native layer list (``keras.applications``)
    sets those layers' ``trainable`` flags from it, exactly as the tutorials'
    ``for layer in base_model.layers[:fine_tune_at]`` loop does.
    """

    trainable: frozenset[str]
    bn_training: frozenset[str]
    selected: frozenset[str] | None = None

    @property
    def flagged(self) -> frozenset[str]:
        """The layers whose framework ``trainable`` flag is set: :attr:`selected`, else :attr:`trainable`."""
        return self.trainable if self.selected is None else self.selected

    @property
    def backbone_frozen(self) -> bool:
        """True when no backbone layer trains (a pure feature-extraction phase)."""
        return not self.trainable


class FreezePolicy(ABC):
    """Decides what is trainable from layer names and groups.

    Subclasses implement :meth:`trainable_layers`. ``varies_by_epoch`` tells the
    trainer to ask again at every epoch (gradual unfreezing).
    """

    varies_by_epoch: bool = False

    def __init__(self, *, train_bn: bool = False) -> None:
        if not isinstance(train_bn, bool):
            raise ConfigError(f"train_bn must be true or false, got {train_bn!r}.")
        self.train_bn = train_bn

    @abstractmethod
    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        """Names of the layers that train at ``epoch`` (0-based, within the phase)."""

    def plan(self, layers: Sequence[LayerInfo], epoch: int = 0) -> FreezePlan:
        """The full plan: trainable layers and BatchNorm layers in training mode."""
        selected = frozenset(self.trainable_layers(layers, epoch))
        weightless = {layer.name for layer in layers if not layer.has_weights}
        trainable = selected - weightless
        bn_training = frozenset(
            layer.name for layer in layers if layer.is_batchnorm and layer.name in trainable and self.train_bn
        )
        return FreezePlan(trainable=trainable, bn_training=bn_training, selected=selected if weightless else None)

    def describe(self) -> str:
        """A one-line human description, used in histories and reports."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class Frozen(FreezePolicy):
    """Feature extraction: every backbone layer is frozen."""

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        return set()

    def describe(self) -> str:
        return "frozen"


class Unfrozen(FreezePolicy):
    """Full fine-tuning: nothing is frozen."""

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        return {layer.name for layer in layers}

    def describe(self) -> str:
        return "unfrozen"


def _group_order(layers: Sequence[LayerInfo]) -> list[str]:
    order: list[str] = []
    for layer in layers:
        if layer.group not in order:
            order.append(layer.group)
    return order


def _span(layers: Sequence[LayerInfo]) -> str:
    return f"{layers[0].name} ... {layers[-1].name}" if layers else "none"


def resolve_start(layers: Sequence[LayerInfo], at: int | str) -> int:
    """Index of the first layer at or after ``at`` (an index, layer name or group)."""
    if isinstance(at, bool) or not isinstance(at, (int, str)):
        raise ConfigError(f"fine_tune_at must be a layer index, layer name or group name; got {at!r}.")
    if isinstance(at, int):
        if not -len(layers) <= at <= len(layers):
            raise ConfigError(
                f"fine_tune_at={at} is out of range: this backbone has {len(layers)} layers (0..{len(layers)}, "
                f"or -{len(layers)}..-1 from the end). Give an index in that range, a layer name or one of the groups: "
                f"{', '.join(_group_order(layers))}."
            )
        return at % len(layers) if at < 0 else at
    for index, layer in enumerate(layers):
        if layer.name == at or layer.group == at:
            return index
    names = [layer.name for layer in layers] + _group_order(layers)
    raise ConfigError(
        f"fine_tune_at={at!r} names no layer or group of this backbone.{did_you_mean(at, names)}"
        f" Groups: {', '.join(_group_order(layers))}; layers: {_span(layers)} (or an index 0..{len(layers)})."
    )


class FineTuneAt(FreezePolicy):
    """Train from a layer onwards: ``at`` is an index (``100``), a layer name or a group name."""

    def __init__(self, at: int | str, *, train_bn: bool = False) -> None:
        super().__init__(train_bn=train_bn)
        if isinstance(at, bool) or not isinstance(at, (int, str)):
            raise ConfigError(f"fine_tune_at: 'at' must be an integer index or a name, got {at!r}.")
        self.at = at

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        start = resolve_start(layers, self.at)
        return {layer.name for layer in layers[start:]}

    def describe(self) -> str:
        return f"fine_tune_at={self.at!r}"


class LastN(FreezePolicy):
    """Train only the last ``n`` layers."""

    def __init__(self, n: int, *, train_bn: bool = False) -> None:
        super().__init__(train_bn=train_bn)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"last_n: 'n' must be a non-negative integer, got {n!r}.")
        self.n = n

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        return {layer.name for layer in layers[len(layers) - min(self.n, len(layers)) :]}

    def describe(self) -> str:
        return f"last_n={self.n}"


class RegexPolicy(FreezePolicy):
    """Train the layers whose name matches ``pattern`` (``re.search``)."""

    def __init__(self, pattern: str, *, train_bn: bool = False) -> None:
        super().__init__(train_bn=train_bn)
        try:
            self.pattern = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(f"regex: {pattern!r} is not a valid regular expression ({exc}).") from None

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        return {layer.name for layer in layers if self.pattern.search(layer.name)}

    def describe(self) -> str:
        return f"regex={self.pattern.pattern!r}"


def _check_groups(layers: Sequence[LayerInfo], groups: Sequence[str]) -> None:
    known = _group_order(layers)
    for group in groups:
        if group not in known:
            raise ConfigError(
                f"group {group!r} is not a group of this backbone.{did_you_mean(group, known)}"
                f" Groups: {', '.join(known)}."
            )


class TrainGroups(FreezePolicy):
    """Train whole named groups (``["stage7", "top"]``); the rest stay frozen."""

    def __init__(self, groups: Sequence[str], *, train_bn: bool = False) -> None:
        super().__init__(train_bn=train_bn)
        if isinstance(groups, str) or not all(isinstance(g, str) for g in groups):
            raise ConfigError(f"groups: expected a list of group names, got {groups!r}.")
        self.groups = tuple(groups)

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        _check_groups(layers, self.groups)
        return {layer.name for layer in layers if layer.group in self.groups}

    def describe(self) -> str:
        return f"groups={list(self.groups)}"


class GradualUnfreezing(FreezePolicy):
    """Unfreeze one more group, from the top down, every ``every`` epochs.

    With ``schedule`` (epoch -> layer index, layer or group name) the
    trainable part starts at the latest scheduled point reached instead.
    ``start`` groups are trainable from epoch 0 (default: the last group).
    """

    varies_by_epoch = True

    def __init__(
        self,
        *,
        every: int = 1,
        start: int = 1,
        schedule: Mapping[int, int | str] | None = None,
        train_bn: bool = False,
    ) -> None:
        super().__init__(train_bn=train_bn)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"gradual: 'every' must be a positive integer of epochs, got {every!r}.")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ConfigError(f"gradual: 'start' must be a non-negative number of groups, got {start!r}.")
        self.every = every
        self.start = start
        self.schedule = {int(k): v for k, v in (schedule or {}).items()}
        if any(k < 0 for k in self.schedule):
            raise ConfigError(f"gradual: schedule epochs must be >= 0, got {sorted(self.schedule)}.")

    def trainable_layers(self, layers: Sequence[LayerInfo], epoch: int = 0) -> set[str]:
        if self.schedule:
            reached = [k for k in self.schedule if k <= epoch]
            if not reached:
                return set()
            start = resolve_start(layers, self.schedule[max(reached)])
            return {layer.name for layer in layers[start:]}
        groups = _group_order(layers)
        count = min(len(groups), self.start + epoch // self.every)
        open_groups = set(groups[len(groups) - count :]) if count else set()
        return {layer.name for layer in layers if layer.group in open_groups}

    def describe(self) -> str:
        if self.schedule:
            return f"gradual schedule={self.schedule}"
        return f"gradual every={self.every} start={self.start}"
