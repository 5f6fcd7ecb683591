"""Training-curve plots (matplotlib, imported lazily, drawn off-screen)."""

from __future__ import annotations

import warnings
from pathlib import Path

from tlcore._io import write_with
from tlcore.training import History


def plot_history(history: History, path: str | Path, *, title: str = "") -> Path | None:
    """Draw loss and accuracy per epoch across all phases to a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: no training-curve plot (pip install matplotlib)", stacklevel=2)
        return None
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    offset = 0
    for phase in history.phases:
        epochs = [offset + e.epoch + 1 for e in phase.epochs]
        loss_axis.plot(epochs, [e.loss for e in phase.epochs], "o-", label=f"{phase.name} train")
        accuracy_axis.plot(epochs, [e.accuracy for e in phase.epochs], "o-", label=f"{phase.name} train")
        if any(e.val_loss is not None for e in phase.epochs):
            loss_axis.plot(epochs, [e.val_loss for e in phase.epochs], "s--", label=f"{phase.name} val")
            accuracy_axis.plot(epochs, [e.val_accuracy for e in phase.epochs], "s--", label=f"{phase.name} val")
        offset += len(phase.epochs)
        loss_axis.axvline(offset + 0.5, color="grey", linewidth=0.5)
        accuracy_axis.axvline(offset + 0.5, color="grey", linewidth=0.5)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    try:
        return write_with(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    finally:
        plt.close(figure)
