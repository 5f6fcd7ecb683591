"""How training reports itself: progress labels and the phase rate (images over wall time, not a mean of rates)."""

from __future__ import annotations

import pytest

from tlcore.training import EpochRecord, History, PhaseHistory
from tlcore.training._resume import _history_from
from tlcore.training._trainer import progress_label


def test_progress_label_names_the_phase_and_the_epoch() -> None:
    assert progress_label("fine-tune", 1, 3, 0, 5) == "phase 2/3 fine-tune: epoch 1/5"
    assert progress_label("phase", 0, 2, 4, 5) == "phase 1/2: epoch 5/5"
    assert progress_label("phase2", 1, 2, 0, 5) == "phase 2/2: epoch 1/5"


def _epoch(index: int, images: int, seconds: float, *, keep_images: bool = True) -> EpochRecord:
    return EpochRecord(
        epoch=index,
        loss=1.0,
        accuracy=0.5,
        learning_rate=1e-3,
        seconds=seconds,
        images_per_second=images / seconds,
        trainable_layers=2,
        images=images if keep_images else 0,
    )


def _phase(keep_images: bool = True) -> PhaseHistory:
    # the case: 4 epochs of 110 images, each epoch's steps about 1 s, 18 s in all
    epochs = [_epoch(i, 110, s, keep_images=keep_images) for i, s in enumerate((1.2, 0.9, 1.0, 0.95))]
    return PhaseHistory("head", "frozen", "adam", 1e-3, 4, epochs=epochs, seconds=18.0)


def test_the_phase_rate_is_its_images_over_its_time() -> None:
    phase = _phase()
    assert phase.images == 440
    assert phase.images_per_second == pytest.approx(440 / 18.0)  # 24 img/s, not the epochs' mean of ~110
    assert [round(e.images_per_second) for e in phase.epochs] == [92, 122, 110, 116]  # each epoch's own, kept
    assert PhaseHistory("empty", "frozen", "adam", 1e-3, 1).images_per_second == 0.0


def test_a_record_written_without_images_counts_them_from_its_rates() -> None:
    assert _phase(keep_images=False).images_per_second == pytest.approx(440 / 18.0)


def test_history_to_dict_reports_the_phase_rate_and_reads_back() -> None:
    history = History([_phase()])
    data = history.to_dict()
    assert data[0]["images_per_second"] == pytest.approx(440 / 18.0)
    assert [e["images"] for e in data[0]["epochs"]] == [110] * 4
    assert _history_from(data) == history
