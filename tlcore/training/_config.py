"""Neutral training configuration: phases, optimizers, schedules, early stopping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tlcore._errors import ConfigError
from tlcore._freeze import FreezePolicy, Frozen
from tlcore.training._rates import check_lr_options

__all__ = ["OPTIMIZERS", "SCHEDULES", "EarlyStopping", "Phase", "TrainerOptions"]

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "step", "onecycle")
MONITORS: tuple[str, ...] = ("val_accuracy", "val_loss", "accuracy", "loss")


@dataclass(frozen=True)
class EarlyStopping:
    """Stop a phase when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_accuracy"
    patience: int = 3
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            raise ConfigError(f"early_stopping.monitor must be one of {', '.join(MONITORS)}; got {self.monitor!r}.")
        if self.patience < 1:
            raise ConfigError(f"early_stopping.patience must be at least 1; got {self.patience!r}.")

    @property
    def mode(self) -> str:
        """``max`` for accuracies, ``min`` for losses."""
        return "max" if self.monitor.endswith("accuracy") else "min"


@dataclass(frozen=True)
class Phase:
    """One training phase: a freeze policy, a number of epochs, an optimizer and a schedule.

    Every numeric default that frameworks disagree on (Adam epsilon, SGD
    momentum, weight decay) is set here and passed to the framework explicitly.
    ``keep_best`` restores the weights of the best epoch (by the early-stopping
    monitor, else validation accuracy) at the end of the phase.
    ``cache_features`` computes a fully frozen backbone's features once.
    ``augment=False`` turns the recipe's augmentation off for this phase.
    ``lr_multipliers`` and ``layer_lr_decay`` scale the learning rate per
    group (see :mod:`tlcore.training._rates`): ``{"backbone": 0.1}`` trains
    the backbone at a tenth of the head's rate.
    """

    name: str = "phase"
    freeze: FreezePolicy = field(default_factory=Frozen)
    epochs: int = 1
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    adam_epsilon: float = 1e-7
    adam_betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"
    step_size: int = 1
    gamma: float = 0.1
    warmup_fraction: float = 0.3
    label_smoothing: float = 0.0
    early_stopping: EarlyStopping | None = None
    keep_best: bool = True
    cache_features: bool = True
    augment: bool = True
    lr_multipliers: Mapping[str, float] = field(default_factory=dict)
    layer_lr_decay: float = 1.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"phase {self.name!r}: optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}."
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"phase {self.name!r}: schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}."
            )
        if self.epochs < 1:
            raise ConfigError(f"phase {self.name!r}: epochs must be at least 1; got {self.epochs!r}.")
        if isinstance(self.step_size, bool) or not isinstance(self.step_size, int) or self.step_size < 1:
            raise ConfigError(
                f"phase {self.name!r}: step_size must be a whole number of epochs, at least 1; got {self.step_size!r}."
            )
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ConfigError(f"phase {self.name!r}: warmup_fraction must be in [0, 1]; got {self.warmup_fraction!r}.")
        if not self.learning_rate > 0:
            raise ConfigError(f"phase {self.name!r}: learning_rate must be positive; got {self.learning_rate!r}.")
        if self.weight_decay < 0:
            raise ConfigError(f"phase {self.name!r}: weight_decay must be >= 0; got {self.weight_decay!r}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"phase {self.name!r}: label_smoothing must be in [0, 1); got {self.label_smoothing!r}.")
        if not isinstance(self.freeze, FreezePolicy):
            raise ConfigError(f"phase {self.name!r}: freeze must be a FreezePolicy; got {self.freeze!r}.")
        if not isinstance(self.lr_multipliers, Mapping):
            raise ConfigError(
                f"phase {self.name!r}: lr_multipliers must map group names to factors; got {self.lr_multipliers!r}."
            )
        check_lr_options(self.name, self.lr_multipliers, self.layer_lr_decay)


@dataclass(frozen=True)
class TrainerOptions:
    """Options of a trainer that do not change between phases.

    ``device`` is ``"auto"`` (a GPU when there is one), ``"cpu"`` or a
    framework device string; ``mixed_precision`` is used only on a GPU.
    ``checkpoint_dir``, when set, receives ``best.safetensors`` whenever the
    monitored metric improves (written atomically). ``state_dir``, when set,
    receives the resumable state at the end of every epoch; with ``resume``,
    :meth:`~tlcore.training.Trainer.fit` continues from the state found there
    if its ``fingerprint`` (what identifies the run: recipe, weights, data,
    versions) matches, and refuses one that does not.
    """

    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = False
    progress: bool = True
    checkpoint_dir: str | None = None
    state_dir: str | None = None
    resume: bool = False
    fingerprint: str = ""
    eval_batch_size: int = 128
