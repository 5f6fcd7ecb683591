"""The layer table: every backbone layer with its index, group, kind, parameters, and what a policy makes of it.

It is the table the transfer-learning tutorials print to choose where to
fine-tune (``for i, layer in enumerate(base_model.layers): print(i,
layer.name, layer.trainable)``), with tlcore's columns added: the index a
freeze policy counts, the group, the kind, the parameters, whether the layer
trains and the mode of its BatchNorm. ``tlcore layers`` and ``tlcore run
--dry-run`` print it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlcore._backend import Model
from tlcore._errors import ConfigError
from tlcore._freeze import FreezePolicy, Unfrozen
from tlcore._specs import LayerInfo

__all__ = ["LayerRow", "LayerTable", "freeze_from_text", "indexing_rule", "layer_table"]

NATIVE_INDEXING = (
    "indices count the framework's own layer list, weightless layers (input, activations, paddings, adds) "
    "included, as base_model.layers does in the Keras tutorials: fine_tune_at = 100 freezes base_model.layers[:100]"
)
NEUTRAL_INDEXING = (
    "indices count tlcore's neutral list of the layers with weights, the same on every backend that builds "
    "this backbone"
)
OWN_INDEXING = "indices count tlcore's list of the layers with weights (the framework modules that own parameters)"


def indexing_rule(model: Model) -> str:
    """What a layer index means for ``model``'s backbone, in a sentence."""
    if any(not layer.has_weights for layer in model.layers()):
        return NATIVE_INDEXING
    return NEUTRAL_INDEXING if model.backbone.portable else OWN_INDEXING


@dataclass(frozen=True)
class LayerRow:
    """One row: a layer and what the policy makes of it.

    ``trainable`` is the layer's trainable flag as the framework would set it
    (a weightless layer at or after ``fine_tune_at`` is flagged, as in Keras,
    though it has nothing to train); ``bn_mode`` is ``"train"`` or
    ``"inference"`` for BatchNorm layers and ``""`` for the others.
    """

    index: int
    name: str
    layer_type: str
    group: str
    kind: str
    parameters: int
    has_weights: bool
    trainable: bool
    bn_mode: str


@dataclass(frozen=True)
class LayerTable:
    """The backbone's layers under one policy, with the parameter totals."""

    backbone: str
    backend: str
    policy: str
    indexing: str
    rows: tuple[LayerRow, ...]
    head_parameters: int

    @property
    def trainable_parameters(self) -> int:
        """Backbone parameters that train under the policy."""
        return sum(row.parameters for row in self.rows if row.trainable and row.has_weights)

    @property
    def frozen_parameters(self) -> int:
        """Backbone parameters that the policy freezes."""
        return sum(row.parameters for row in self.rows) - self.trainable_parameters

    def to_dict(self) -> dict[str, Any]:
        """The table as plain values (``tlcore layers --json``)."""
        return {
            "backbone": self.backbone,
            "backend": self.backend,
            "policy": self.policy,
            "indexing": self.indexing,
            "layers": [row.__dict__ for row in self.rows],
            "trainable_parameters": self.trainable_parameters,
            "frozen_parameters": self.frozen_parameters,
            "head_parameters": self.head_parameters,
        }

    def format(self) -> str:
        """The table as text, one line per layer, then the totals."""
        header = ("index", "name", "type", "group", "kind", "parameters", "trainable", "batchnorm")
        cells = [
            (
                str(row.index),
                row.name,
                row.layer_type or "-",
                row.group,
                row.kind,
                f"{row.parameters:,}",
                ("yes" if row.trainable else "no") if row.has_weights else ("(yes)" if row.trainable else "(no)"),
                row.bn_mode or "-",
            )
            for row in self.rows
        ]
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
        right = {0, 5}

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )

        lines = [
            f"{self.backbone} on {self.backend}, freeze policy {self.policy}",
            f"Layer indices: {self.indexing}.",
            "",
            line(header).rstrip(),
            *(line(c).rstrip() for c in cells),
            "",
            f"backbone: {self.trainable_parameters:,} trainable parameters, {self.frozen_parameters:,} frozen "
            f"({len(self.rows)} layers); head: {self.head_parameters:,} trainable parameters",
        ]
        if any(not row.has_weights for row in self.rows):
            lines.append("(yes)/(no): a weightless layer's flag, set as the framework sets it; it trains nothing.")
        return "\n".join(lines)


def layer_table(model: Model, policy: FreezePolicy | None = None, *, epoch: int = 0) -> LayerTable:
    """The layer table of ``model``'s backbone under ``policy`` (default: nothing frozen) at ``epoch`` of its phase."""
    policy = policy or Unfrozen()
    layers: list[LayerInfo] = model.layers()
    plan = policy.plan(layers, epoch)
    rows = tuple(
        LayerRow(
            index=index,
            name=layer.name,
            layer_type=layer.layer_type,
            group=layer.group,
            kind=layer.kind,
            parameters=layer.num_params,
            has_weights=layer.has_weights,
            trainable=layer.name in plan.flagged,
            bn_mode=("train" if layer.name in plan.bn_training else "inference") if layer.is_batchnorm else "",
        )
        for index, layer in enumerate(layers)
    )
    head = sum(int(value.size) for value in model.head_state().values())
    return LayerTable(
        backbone=model.backbone.name,
        backend=model.backend_name,
        policy=policy.describe() + (f" at epoch {epoch}" if policy.varies_by_epoch else ""),
        indexing=indexing_rule(model),
        rows=rows,
        head_parameters=head,
    )


_MAIN_OPTION = {"fine_tune_at": "at", "last_n": "n", "regex": "pattern", "groups": "groups"}


def _value(text: str) -> Any:
    """A TOML value (``100``, ``"stage6"``, ``[1, 2]``), else the text itself."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def freeze_from_text(text: str) -> FreezePolicy:
    """A freeze policy from the command line: ``frozen``, ``fine_tune_at=100``, ``last_n=20``, ``groups=stage7,top``.

    ``NAME=VALUE`` sets the policy's main option (``at``, ``n``, ``pattern``,
    ``groups``); a TOML inline table (``{ policy = "gradual", every = 2 }``)
    gives every option, as a recipe's ``freeze`` key does.
    """
    from tlcore._recipe import _freeze

    text = text.strip()
    if text.startswith("{"):
        try:
            table = tomllib.loads(f"freeze = {text}")["freeze"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--freeze {text!r} is not a valid TOML inline table ({exc}).") from None
        return _freeze(table, "--freeze")
    name, _, raw = text.partition("=")
    name = name.strip()
    if not raw:
        return _freeze(name, "--freeze")
    option = _MAIN_OPTION.get(name)
    if option is None:
        raise ConfigError(
            f"--freeze {text!r}: policy {name!r} takes no NAME=VALUE form; use one of "
            f"{', '.join(f'{k}=...' for k in _MAIN_OPTION)}, a policy name (frozen, unfrozen, gradual), or a TOML "
            f"table such as '{{ policy = \"{name}\", ... }}'."
        )
    value: Any = [part.strip() for part in raw.split(",")] if option == "groups" else _value(raw.strip())
    return _freeze({"policy": name, option: value}, "--freeze")


def recipe_phase_policies(text: str) -> list[tuple[str, FreezePolicy]] | None:
    """``RECIPE.toml`` (every phase) or ``RECIPE.toml:PHASE`` (a 1-based number or a name): ``(phase, policy)``.

    None when ``text`` names no recipe file.
    """
    from tlcore._recipe import load_recipe

    path, _, phase = text.rpartition(":") if not text.endswith(".toml") else (text, "", "")
    if not path.endswith(".toml") or not Path(path).exists():
        return None
    recipe = load_recipe(path)
    phases = [(p.name, p.freeze) for p in recipe.phases]
    if not phase:
        return phases
    names = [name for name, _ in phases]
    if phase.isdigit() and 1 <= int(phase) <= len(phases):
        return [phases[int(phase) - 1]]
    if phase in names:
        return [phases[names.index(phase)]]
    raise ConfigError(
        f"--freeze {text!r}: the recipe has no phase {phase!r}; give a number 1..{len(phases)} or a name: "
        f"{', '.join(names)}."
    )
