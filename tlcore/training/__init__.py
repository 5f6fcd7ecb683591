"""Training: phases, the shared trainer loop, learning-rate schedules and rates, and the neutral history format."""

from tlcore.training._config import OPTIMIZERS, SCHEDULES, EarlyStopping, Phase, TrainerOptions
from tlcore.training._history import EpochRecord, Evaluation, History, PhaseHistory, evaluate_logits
from tlcore.training._rates import LearningRateScales, learning_rate_scales
from tlcore.training._schedules import learning_rate_at, learning_rate_table, steps_per_epoch
from tlcore.training._trainer import BatchSource, Trainer, default_threads

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "BatchSource",
    "EarlyStopping",
    "EpochRecord",
    "Evaluation",
    "History",
    "LearningRateScales",
    "Phase",
    "PhaseHistory",
    "Trainer",
    "TrainerOptions",
    "default_threads",
    "evaluate_logits",
    "learning_rate_at",
    "learning_rate_scales",
    "learning_rate_table",
    "steps_per_epoch",
]
