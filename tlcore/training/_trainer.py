"""The shared trainer: phases, epochs, early stopping, best weights, feature caching.

Backends subclass :class:`Trainer` and implement a handful of small steps
(build the optimizer for a phase, take one training step, predict a batch)
with their framework's own mechanisms. Everything else, including the order
of batches and the meaning of every option, lives here once.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, SupportsFloat

import numpy as np

from tlcore._backend import Model
from tlcore._errors import ConfigError
from tlcore._freeze import FreezePlan
from tlcore.training._checks import check_phases
from tlcore.training._config import Phase, TrainerOptions
from tlcore.training._history import EpochRecord, Evaluation, History, PhaseHistory, evaluate_logits
from tlcore.training._rates import LearningRateScales, learning_rate_scales
from tlcore.training._resume import ResumePoint, read_state, write_state

__all__ = ["BatchSource", "Trainer"]

EpochCallback = Callable[[PhaseHistory, EpochRecord], None]


class BatchSource(Protocol):
    """What a trainer reads batches from (:class:`tlcore.data.Batches` implements it)."""

    batch_size: int
    augment: bool

    @property
    def num_examples(self) -> int: ...

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def order(self, epoch: int) -> np.ndarray: ...

    def ordered(self) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def without_augmentation(self) -> BatchSource: ...


class _FeatureBatches:
    """Cached backbone features served in the same order the images would be."""

    def __init__(self, source: BatchSource, compute: Callable[[np.ndarray], np.ndarray]) -> None:
        started = time.perf_counter()
        features: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for images, batch_labels in source.ordered():
            count = len(images)
            if features and count < len(images_seen := features[0]):
                # A short last batch is padded to the full batch's shape, so that compiled backends (JAX,
                # TensorFlow) trace the feature step once; BatchNorm is in inference mode, so each image's
                # features do not depend on the rest of its batch.
                images = np.concatenate([images, np.repeat(images[-1:], len(images_seen) - count, axis=0)])
            features.append(np.asarray(compute(images))[:count])
            labels.append(batch_labels)
        self.features = np.concatenate(features)
        self.labels = np.concatenate(labels)
        self.source = source
        self.seconds = time.perf_counter() - started

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.source.order(epoch)
        size = self.source.batch_size
        for start in range(0, len(order), size):
            index = order[start : start + size]
            yield self.features[index], self.labels[index]

    def ordered(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        size = self.source.batch_size
        for start in range(0, len(self.labels), size):
            yield self.features[start : start + size], self.labels[start : start + size]


def numpy_single_threaded() -> contextlib.AbstractContextManager[object]:
    """Numpy's BLAS on one thread while a framework trains.

    The core prepares batches with numpy (resizing is a matrix product) while
    the framework computes on every core. OpenBLAS's threads and the
    framework's then contend for the cores: measured on this 2-core CPU,
    fine-tuning efficientnet_lite0 on torch ran at 200 images/s instead of
    400, and preparation alone is faster on one thread too (30,000 against
    18,000 images/s). Uses threadpoolctl; a no-op without it.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


def progress_label(phase: str, index: int, count: int, epoch: int, epochs: int) -> str:
    """A progress bar's label: ``phase 2/3 fine-tune: epoch 1/5`` (``index`` and ``epoch`` from 0).

    A phase left with the default name (``phase``, ``phase2``) is not named twice: ``phase 2/3: epoch 1/5``.
    """
    unnamed = phase == "phase" or (phase.startswith("phase") and phase[5:].isdigit())
    return f"phase {index + 1}/{count}{'' if unnamed else ' ' + phase}: epoch {epoch + 1}/{epochs}"


def _progress(iterable: Iterable[Any], *, total: int, description: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    bar: Iterable[Any] = tqdm(iterable, total=total, desc=description, leave=False, file=sys.stderr, dynamic_ncols=True)
    return bar


class Trainer(ABC):
    """Runs a list of :class:`Phase` on one model; backends implement the steps.

    Subclasses implement ``_begin_phase``, ``_train_step``, ``_predict_step``,
    ``_features_step``, ``_learning_rate``, ``_snapshot`` and ``_restore``.
    ``lr_scales`` holds the current phase's per-layer learning-rate factors
    when ``_begin_phase`` is called; backends apply them natively.
    """

    def __init__(self, model: Model, options: TrainerOptions) -> None:
        self.model = model
        self.options = options
        self.history = History()
        self._plan: FreezePlan | None = None
        self._phase_count = 1
        self.lr_scales = LearningRateScales()
        self.resumed_from: ResumePoint | None = None

    # -- steps each backend implements -------------------------------------------------
    @abstractmethod
    def _begin_phase(self, phase: Phase, total_steps: int, cached: bool) -> None:
        """Create the optimizer and schedule for ``phase`` (``total_steps`` optimizer steps)."""

    @abstractmethod
    def _train_step(self, inputs: np.ndarray, labels: np.ndarray, cached: bool) -> tuple[SupportsFloat, SupportsFloat]:
        """One optimizer step; return (summed loss over the batch, number correct).

        Either may be a scalar the framework is still computing (a JAX array,
        a CUDA tensor): the loop reads them with ``float()`` only after the
        epoch's last step, so that the next step is queued while one computes,
        as in the frameworks' own ``fit`` loops.
        """

    @abstractmethod
    def _predict_step(self, inputs: np.ndarray, cached: bool) -> np.ndarray:
        """Logits for one batch in inference mode (``inputs`` are features when ``cached``)."""

    @abstractmethod
    def _features_step(self, images: np.ndarray) -> np.ndarray:
        """The frozen backbone's output for one batch, in the backend's layout."""

    @abstractmethod
    def _learning_rate(self) -> float:
        """The optimizer's current learning rate."""

    @abstractmethod
    def _snapshot(self, head_only: bool = False) -> Any:
        """A copy of all model weights and statistics, held in memory.

        ``head_only``: only the head can change in this phase (the backbone is
        frozen with BatchNorm in inference mode), so copying the head is enough.
        """

    @abstractmethod
    def _restore(self, snapshot: Any) -> None:
        """Put back weights taken by :meth:`_snapshot`."""

    def _plan_changed(self) -> None:  # noqa: B027  (optional hook)
        """Called when a policy that varies by epoch changed what trains, mid-phase."""

    def _end_epoch(self) -> None:  # noqa: B027  (optional hook)
        """Called after an epoch's last training step, inside its timing and before anything reads the model.

        A backend that holds training state outside the model between steps
        (Keras on JAX, as ``keras.Model.fit`` does) writes it back here.
        """

    def _end_phase(self) -> None:  # noqa: B027  (optional hook)
        """Release per-phase state (optimizer); override when needed."""

    # -- resumable state (a backend that supports it overrides both) --------------------
    state_suffix = ".state"

    def _save_training_state(self, path: Path, snapshot: Any) -> None:
        """Write everything the next epoch depends on to ``path`` atomically, with the framework's own serialization.

        That is the model's tensors, the optimizer's state and schedule
        position (when a phase is running), the framework's random generators,
        and ``snapshot`` (from :meth:`_snapshot`, or None).
        """
        raise ConfigError(f"the {self.model.backend_name} backend cannot save a resumable training state.")

    def _load_training_state(self, path: Path, has_snapshot: bool) -> Any:
        """Put back what :meth:`_save_training_state` wrote (after ``_begin_phase`` when a phase is running).

        Returns the snapshot it held, or None.
        """
        raise ConfigError(f"the {self.model.backend_name} backend cannot resume a training state.")

    # -- the shared loop ---------------------------------------------------------------
    def check_phases(self, phases: Sequence[Phase]) -> None:
        """Refuse, before any step, a phase whose freeze policy or learning-rate groups do not fit the model.

        See :func:`tlcore.training._checks.check_phases`; :meth:`fit` calls it first.
        """
        check_phases(self.model, phases)

    def fit(
        self,
        train: BatchSource,
        phases: Sequence[Phase],
        *,
        validation: BatchSource | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> History:
        """Run ``phases`` in order on ``train``; return the history of all of them."""
        if not phases:
            raise ConfigError("fit() needs at least one phase.")
        self.check_phases(phases)
        with numpy_single_threaded():
            point = self._resume_point(len(phases))
            self.resumed_from = point
            start = 0
            self._phase_count = len(phases)
            if point is not None:
                if self.options.progress:
                    print(
                        f"resuming after epoch {point.epochs_done} of phase {phases[point.phase].name!r} "
                        f"from {self.options.state_dir}",
                        file=sys.stderr,
                    )
                self.history = History(phases=point.history.phases[: point.phase])
                start = point.phase
                if point.phase_finished:
                    self.history.phases.append(point.history.phases[point.phase])
                    self._load_training_state(self._state_file(point), has_snapshot=False)
                    start += 1
            for index in range(start, len(phases)):
                resume = point if point is not None and index == point.phase and not point.phase_finished else None
                self.history.phases.append(self._run_phase(phases[index], train, validation, on_epoch, index, resume))
        return self.history

    def _state_file(self, point: ResumePoint) -> Path:
        return Path(self.options.state_dir or ".") / point.backend_file

    def _resume_point(self, phase_count: int) -> ResumePoint | None:
        """The state to resume from, when ``options.resume`` and ``options.state_dir`` hold one of this run."""
        if not self.options.resume or self.options.state_dir is None:
            return None
        point = read_state(self.options.state_dir, self.options.fingerprint)
        if point is not None and point.phase >= phase_count:
            raise ConfigError(f"the resumable state is at phase {point.phase + 1}, but this run has {phase_count}.")
        return point

    def _save_state(self, point: ResumePoint, snapshot: Any) -> None:
        """Write the resumable state (when ``options.state_dir`` is set) at the end of an epoch or a phase."""
        if self.options.state_dir is None:
            return
        point.backend_file = f"backend-p{point.phase}-e{point.epochs_done}{self.state_suffix}"
        write_state(self.options.state_dir, point, lambda path: self._save_training_state(path, snapshot))

    def _apply(self, plan: FreezePlan) -> None:
        if plan != self._plan:
            self.model.apply_freeze(plan)
            self._plan = plan

    def _can_cache(self, phase: Phase, plan: FreezePlan, train: BatchSource) -> bool:
        return (
            phase.cache_features
            and plan.backbone_frozen
            and not plan.bn_training
            and not phase.freeze.varies_by_epoch
            and not train.augment
        )

    def _run_phase(
        self,
        phase: Phase,
        train: BatchSource,
        validation: BatchSource | None,
        on_epoch: EpochCallback | None,
        index: int = 0,
        resume: ResumePoint | None = None,
    ) -> PhaseHistory:
        if not phase.augment and train.augment:
            train = train.without_augmentation()
        layers = self.model.layers()
        self.lr_scales = learning_rate_scales(
            phase.name, phase.lr_multipliers, phase.layer_lr_decay, layers, self.model.backbone.groups
        )
        first_epoch = 0 if resume is None else resume.epochs_done
        cached = self._can_cache(phase, phase.freeze.plan(layers, 0), train)
        # Resuming mid-phase starts from the plan the saved epoch trained with.
        plan = phase.freeze.plan(layers, max(first_epoch - 1, 0))
        self._apply(plan)
        record = PhaseHistory(
            name=phase.name,
            freeze=phase.freeze.describe(),
            optimizer=phase.optimizer,
            learning_rate=phase.learning_rate,
            epochs_planned=phase.epochs,
            cached_features=cached,
        )
        started = time.perf_counter()
        train_source: Any = train
        val_source: Any = validation
        if cached:
            train_source = _FeatureBatches(train, self._features_step)
            record.feature_seconds = train_source.seconds
            if validation is not None:
                val_source = _FeatureBatches(validation, self._features_step)
        self._begin_phase(phase, phase.epochs * train.steps_per_epoch, cached)
        best_value: float | None = None
        best_snapshot: Any = None
        stale = 0
        earlier_seconds = 0.0
        if resume is not None:
            saved = resume.history.phases[index]
            record.epochs, record.best_epoch, earlier_seconds = list(saved.epochs), saved.best_epoch, saved.seconds
            best_value, stale = resume.best_value, resume.stale
            best_snapshot = self._load_training_state(self._state_file(resume), resume.has_snapshot)
            if phase.early_stopping is not None and stale >= phase.early_stopping.patience:
                record.stopped_early = True
                first_epoch = phase.epochs
        monitor = phase.early_stopping.monitor if phase.early_stopping else "val_accuracy"
        if validation is None and monitor.startswith("val_"):
            monitor = monitor.removeprefix("val_")
        maximize = monitor.endswith("accuracy")
        for epoch in range(first_epoch, phase.epochs):
            if phase.freeze.varies_by_epoch and epoch > 0:
                before = self._plan
                self._apply(phase.freeze.plan(layers, epoch))
                if self._plan != before:
                    self._plan_changed()
            epoch_record = self._run_epoch(phase, epoch, train_source, train, cached, index)
            if val_source is not None:
                evaluation = self._evaluate_source(val_source, train.num_classes, cached)
                epoch_record.val_loss, epoch_record.val_accuracy = evaluation.loss, evaluation.accuracy
            record.epochs.append(epoch_record)
            value = float(getattr(epoch_record, monitor))
            improved = best_value is None or (
                value > best_value + self._min_delta(phase) if maximize else value < best_value - self._min_delta(phase)
            )
            if improved:
                best_value, record.best_epoch, stale = value, epoch, 0
                if phase.keep_best and epoch < phase.epochs - 1:
                    best_snapshot = self._snapshot(head_only=cached)
                elif phase.keep_best:
                    best_snapshot = None  # the current weights are the best
                self._write_checkpoint()
            else:
                stale += 1
            if on_epoch is not None:
                on_epoch(record, epoch_record)
            record.seconds = earlier_seconds + time.perf_counter() - started
            point = ResumePoint(index, epoch + 1, False, History([*self.history.phases, record]), "", "")
            point.best_value, point.stale, point.has_snapshot = best_value, stale, best_snapshot is not None
            point.fingerprint = self.options.fingerprint
            self._save_state(point, best_snapshot)
            if phase.early_stopping is not None and stale >= phase.early_stopping.patience:
                record.stopped_early = True
                break
        if phase.keep_best and best_snapshot is not None and record.best_epoch != len(record.epochs) - 1:
            self._restore(best_snapshot)
        self._end_phase()
        record.seconds = earlier_seconds + time.perf_counter() - started
        finished = ResumePoint(index, len(record.epochs), True, History([*self.history.phases, record]), "", "")
        finished.fingerprint = self.options.fingerprint
        self._save_state(finished, None)
        return record

    @staticmethod
    def _min_delta(phase: Phase) -> float:
        return phase.early_stopping.min_delta if phase.early_stopping else 0.0

    def _run_epoch(
        self, phase: Phase, epoch: int, source: Any, train: BatchSource, cached: bool, index: int = 0
    ) -> EpochRecord:
        started = time.perf_counter()
        losses: list[SupportsFloat] = []
        corrects: list[SupportsFloat] = []
        seen = 0
        batches = _progress(
            source.epoch(epoch),
            total=train.steps_per_epoch,
            description=progress_label(phase.name, index, self._phase_count, epoch, phase.epochs),
            enabled=self.options.progress,
        )
        for inputs, labels in batches:
            batch_loss, batch_correct = self._train_step(inputs, labels, cached)
            losses.append(batch_loss)
            corrects.append(batch_correct)
            seen += len(labels)
        self._end_epoch()
        loss_sum = sum(float(loss) for loss in losses)
        correct = sum(round(float(count)) for count in corrects)
        seconds = time.perf_counter() - started
        if not math.isfinite(loss_sum):
            raise ConfigError(
                f"phase {phase.name!r} epoch {epoch + 1}: the training loss is not finite ({loss_sum}). "
                f"Lower the learning rate (now {phase.learning_rate})."
            )
        return EpochRecord(
            epoch=epoch,
            loss=loss_sum / max(seen, 1),
            accuracy=correct / max(seen, 1),
            learning_rate=self._learning_rate(),
            seconds=seconds,
            images_per_second=seen / seconds if seconds > 0 else 0.0,
            trainable_layers=len(self._plan.trainable) if self._plan else 0,
            images=seen,
        )

    def _evaluate_source(self, source: Any, num_classes: int, cached: bool) -> Evaluation:
        logits: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for inputs, batch_labels in source.ordered():
            logits.append(self._predict_step(inputs, cached))
            labels.append(batch_labels)
        return evaluate_logits(np.concatenate(logits), np.concatenate(labels), num_classes)

    def evaluate(self, batches: BatchSource) -> Evaluation:
        """Loss, accuracy, per-class accuracy and confusion matrix on ``batches``."""
        with numpy_single_threaded():
            return self._evaluate_source(batches, batches.num_classes, cached=False)

    def _write_checkpoint(self) -> None:
        if self.options.checkpoint_dir is None:
            return
        directory = Path(self.options.checkpoint_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / "best.safetensors")


def default_threads() -> int:
    """Threads for a framework's CPU kernels: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
