"""The neutral record of training and evaluation, the same for every backend."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tlcore._errors import DataError

__all__ = ["EpochRecord", "Evaluation", "History", "PhaseHistory", "evaluate_logits"]


@dataclass
class EpochRecord:
    """Metrics of one epoch.

    ``seconds`` is the time of its training steps (validation left out) and
    ``images_per_second`` is ``images`` (the training images it stepped
    through) over ``seconds``.
    """

    epoch: int
    loss: float
    accuracy: float
    learning_rate: float
    seconds: float
    images_per_second: float
    trainable_layers: int
    val_loss: float | None = None
    val_accuracy: float | None = None
    images: int = 0

    @property
    def images_trained(self) -> int:
        """``images``; for a record written before it was kept, as its rate and time imply."""
        return self.images or round(self.images_per_second * self.seconds)


@dataclass
class PhaseHistory:
    """Everything that happened in one phase."""

    name: str
    freeze: str
    optimizer: str
    learning_rate: float
    epochs_planned: int
    cached_features: bool = False
    epochs: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    seconds: float = 0.0
    feature_seconds: float = 0.0

    @property
    def images(self) -> int:
        """The training images the phase stepped through, all epochs together."""
        return sum(e.images_trained for e in self.epochs)

    @property
    def images_per_second(self) -> float:
        """The phase's training images over its wall time, ``seconds``.

        The same time the phase's summary shows beside it: feature caching
        and validation included. Each epoch's own rate (training steps only)
        is in its :class:`EpochRecord`.
        """
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class History:
    """The history of every phase, in order."""

    phases: list[PhaseHistory] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total wall time of all phases."""
        return sum(p.seconds for p in self.phases)

    def to_dict(self) -> list[dict[str, Any]]:
        """A JSON-ready list of phases."""
        return [asdict(p) | {"images_per_second": p.images_per_second} for p in self.phases]


@dataclass
class Evaluation:
    """Accuracy, loss, per-class accuracy and confusion matrix on one split."""

    loss: float
    accuracy: float
    num_examples: int
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example cross-entropy of integer ``labels`` under ``logits`` (float64)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return np.asarray(-log_probs[np.arange(len(labels)), labels])


def evaluate_logits(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> Evaluation:
    """Compute an :class:`Evaluation` from logits and integer labels."""
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise DataError(f"expected logits of shape (N, {num_classes}); got {logits.shape}.")
    if len(labels) == 0:
        raise DataError("cannot evaluate on an empty split.")
    predictions = logits.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return Evaluation(
        loss=float(cross_entropy(logits, labels).mean()),
        accuracy=float((predictions == labels).mean()),
        num_examples=len(labels),
        per_class_accuracy=[float(v) for v in per_class],
        confusion_matrix=confusion.tolist(),
    )
