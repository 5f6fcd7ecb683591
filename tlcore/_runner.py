"""Run a recipe end to end on one backend and record the result."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tlcore._backend import Backend, Model, get_backend
from tlcore._errors import ConfigError, TLCoreError
from tlcore._recipe import Recipe
from tlcore._specs import BackboneSpec, HeadSpec
from tlcore.training import Evaluation, History, TrainerOptions

__all__ = ["RunResult", "dry_run", "open_dataset", "run_recipe"]


def open_dataset(name: str, **options: Any) -> Any:
    """Load the registered dataset ``name`` as a :class:`tlcore.data.DatasetSource`.

    Options are checked against the loader's parameters first: a bad one is
    a ConfigError naming it, its value and every option the loader takes.
    """
    from tlcore.plugins import load_plugins

    return load_plugins().open_dataset(name, **options)


def head_from_preset(preset: str, num_outputs: int, options: Mapping[str, Any]) -> HeadSpec:
    """The registered head ``preset`` for ``num_outputs`` outputs, with ``options`` overriding its values."""
    from tlcore.plugins import load_plugins

    info = load_plugins().head(preset)
    try:
        head = info.factory(num_outputs=num_outputs, **dict(options))
    except TypeError as exc:
        raise ConfigError(f"head {preset!r} does not take {sorted(options)} ({exc}).") from None
    if not isinstance(head, HeadSpec):
        raise ConfigError(f"head preset {preset!r} built {head!r}, not a HeadSpec.")
    return head


def make_head(recipe: Recipe, num_outputs: int) -> HeadSpec:
    """The recipe's head preset, with its overrides, for ``num_outputs`` classes."""
    return head_from_preset(recipe.head.preset, num_outputs, recipe.head.options)


def _image_size(recipe: Recipe, spec: BackboneSpec) -> tuple[int, int]:
    if recipe.data.image_size is None:
        return spec.input.size
    size = recipe.data.image_size
    if size < spec.input.min_size:
        raise ConfigError(
            f"data.image_size={size} is too small for {spec.name}: it needs at least {spec.input.min_size} pixels."
        )
    return (size, size)


MAX_IMAGE_SIZE = 4096
"""The largest side, in pixels, that ``data.image_size`` may ask for."""

ACTIVATION_FACTOR = 8
"""A floor on a step's memory, in multiples of its float32 input batch.

A framework's inference batch holds every layer's activations, many times
its input; eight times the input is below what any registered backbone
needs, so the check below refuses only what certainly cannot fit.
"""


def available_memory_bytes() -> int | None:
    """The memory this process can still take: ``MemAvailable``, capped by a cgroup limit; None when unknown."""
    import os

    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            found += [int(line.split()[1]) * 1024 for line in info if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, min(found)) if found else None


def _gigabytes(count: float) -> str:
    return f"{count / 1e12:.1f} TB" if count >= 1e12 else f"{count / 1e9:.1f} GB"


def _check_image_size(recipe: Recipe, spec: BackboneSpec, size: tuple[int, int]) -> None:
    """Refuse an image size no machine or no memory here can train, before anything is built or cached.

    The estimate is the float32 batch times :data:`ACTIVATION_FACTOR`, against
    this machine's available memory: a floor, so that what it refuses would
    certainly fail (most often as an allocation error deep in a framework).
    """
    batch, channels = recipe.data.batch_size, spec.input.channels
    estimate = batch * size[0] * size[1] * channels * 4 * ACTIVATION_FACTOR
    available = available_memory_bytes()
    sums = (
        f"one batch needs at least {_gigabytes(estimate)} (data.batch_size={batch} x {size[0]} x {size[1]} "
        f"x {channels} channels x 4 bytes x {ACTIVATION_FACTOR} for activations)"
    )
    here = "" if available is None else f", and this machine has {_gigabytes(available)} available"
    if max(size) > MAX_IMAGE_SIZE:
        raise ConfigError(
            f"data.image_size={max(size)} is too large: tlcore allows {spec.input.min_size}..{MAX_IMAGE_SIZE} pixels "
            f"for {spec.name} (its default is {spec.input.size[0]}); {sums}{here}. Use a smaller data.image_size."
        )
    if available is not None and estimate > available:
        raise ConfigError(
            f"data.image_size={max(size)} does not fit in memory: {sums}, more than the {_gigabytes(available)} "
            "this machine has available. Lower data.image_size or data.batch_size."
        )


def _pipelines(recipe: Recipe, spec: BackboneSpec, size: tuple[int, int]) -> tuple[Any, Any]:
    """The training pipeline (with the recipe's augmentation) and the plain one (evaluation, caching)."""
    from tlcore.data import Augmentation, ImagePipeline, RandomResizedCrop

    aug = recipe.data.augmentation
    crop = aug.random_resized_crop
    augmentation = Augmentation(
        flip=aug.flip,
        shift=aug.shift,
        crop_padding=aug.crop_padding,
        rotation=aug.rotation,
        random_resized_crop=None if crop is None else RandomResizedCrop(scale=crop[0], ratio=crop[1]),
    )
    crop_pct = recipe.data.crop_pct
    train = ImagePipeline(spec.input, size, augmentation, crop_pct=crop_pct)
    return train, ImagePipeline(spec.input, size, Augmentation(), crop_pct=crop_pct)


def _cached(source: Any, recipe: Recipe, pipeline: Any) -> Any:
    """``source`` read from the preprocessed image cache when ``data.cache`` asks for it (or ``"auto"`` finds it pays).

    ``"auto"`` caches image files when the recipe trains over them more than
    once, and goes on uncached (with a warning) when the disk lacks the room.
    """
    from tlcore.data import DatasetSource, cache_images

    setting = recipe.data.cache
    if setting is False or not source.train.lazy:
        return source
    if setting == "auto" and sum(phase.epochs for phase in recipe.phases) < 2:
        return source
    workers, if_room = recipe.data.workers, setting == "auto"
    train = cache_images(source.train, pipeline, workers=workers, if_room=if_room)
    test = None if source.test is None else cache_images(source.test, pipeline, workers=workers, if_room=if_room)
    return DatasetSource(train=train, test=test)


def _cache_folder(images: Any) -> str | None:
    from tlcore.data import CachedImages

    return str(images.store.folder) if isinstance(images, CachedImages) else None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class RunResult:
    """What a run produced: the model, its history and test evaluation, and the record."""

    model: Model
    history: History
    test: Evaluation
    record: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None


def peak_host_memory_bytes() -> int:
    """The largest resident set this process has had, in bytes."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _peak_memory(backend: Backend) -> dict[str, int | None]:
    return {"host_rss_bytes": peak_host_memory_bytes(), "device_bytes": backend.peak_memory_bytes()}


def run_recipe(
    recipe: Recipe,
    *,
    backend: str | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    save_model: bool = True,
    overwrite: bool = False,
    resume: str = "auto",
) -> RunResult:
    """Run every phase of ``recipe`` on ``backend``; write ``result.json``, the model and plots to ``out``.

    ``out`` is locked while the run writes, and gets the run's files only when
    it has finished; a finished run there is replaced only with ``overwrite``.
    At the end of every epoch a resumable state is written under
    ``out/.partial/``; ``resume`` says what to do with one found there:
    ``"auto"`` continues it when it is of the same recipe, weights, data and
    versions (and refuses one that is not), ``"require"`` fails when there is
    none, ``"restart"`` discards it.
    """
    from tlcore._runfolder import RunFolder

    if backend is not None:
        recipe = replace(recipe, backend=backend)
    if out is None:
        return _run(recipe, None, progress=progress, save_model=save_model)
    with RunFolder(out, overwrite=overwrite, resume=resume) as folder:
        return _run(recipe, folder, progress=progress, save_model=save_model)


def _fingerprint(recipe: Recipe, native: Backend, model: Model, splits: Any) -> str:
    """What a resumable state must match: recipe, backend and versions, weights, data; ``part=digest;...``."""
    import hashlib

    from tlcore.data import LazyImages

    def digest(*values: object) -> str:
        return hashlib.sha256(repr(values).encode()).hexdigest()[:16]

    data: list[object] = []
    for split in (splits.train, splits.validation, splits.test):
        if split is not None:
            # Labels, and for photos which files: in-memory datasets are named and split by the recipe's seed.
            images = split.images
            listing = [images.describe(i) for i in range(len(images))] if isinstance(images, LazyImages) else None
            data.append((split.name, split.labels.tolist(), listing))
    parts = {
        "recipe": digest(replace(recipe, source=None)),
        "backend": digest(native.name, native.versions(), _version("tlcore")),
        "weights": digest(model.weights_sha256),
        "data": digest(data),
    }
    return ";".join(f"{key}={value}" for key, value in parts.items())


@dataclass
class _Prepared:
    """Everything a run builds before its first step: backend, spec, data, batches, head and model."""

    native: Backend
    spec: BackboneSpec
    size: tuple[int, int]
    plain_pipeline: Any
    splits: Any
    train: Any
    validation: Any
    test: Any
    head: HeadSpec
    model: Model


def _prepare(recipe: Recipe, *, cache: bool = True) -> _Prepared:
    """Build what ``recipe`` trains: read and split the data (through the image cache if ``cache``), build the model."""
    from tlcore.data import Batches, make_splits
    from tlcore.plugins import load_plugins

    registry = load_plugins()
    native = get_backend(recipe.backend)
    spec = registry.backbone(recipe.backbone.name, recipe.backend)
    if recipe.backbone.bn_momentum is not None:
        spec = replace(spec, bn_momentum=recipe.backbone.bn_momentum)
    size = _image_size(recipe, spec)
    _check_image_size(recipe, spec, size)
    train_pipeline, plain_pipeline = _pipelines(recipe, spec, size)
    source = open_dataset(recipe.data.dataset, **dict(recipe.data.options))
    if cache:
        source = _cached(source, recipe, plain_pipeline)
    splits = make_splits(
        source,
        seed=recipe.seed,
        labels_per_class=recipe.data.labels_per_class,
        validation_per_class=recipe.data.validation_per_class,
        test_fraction=recipe.data.test_fraction,
        test_per_class=recipe.data.test_per_class,
    )
    batch, workers = recipe.data.batch_size, recipe.data.workers
    train = Batches(
        splits.train, train_pipeline, batch_size=batch, shuffle=True, seed=recipe.seed, augment=True, workers=workers
    )
    validation = (
        Batches(splits.validation, plain_pipeline, batch_size=batch, seed=recipe.seed, workers=workers)
        if splits.validation is not None
        else None
    )
    test = Batches(splits.test, plain_pipeline, batch_size=batch, seed=recipe.seed, workers=workers)
    head = make_head(recipe, splits.train.num_classes)
    native.seed(recipe.seed)
    model = native.build_model(spec, head, weights=recipe.backbone.weights, seed=recipe.seed, image_size=size)
    return _Prepared(native, spec, size, plain_pipeline, splits, train, validation, test, head, model)


def dry_run(recipe: Recipe, *, backend: str | None = None) -> str:
    """Check ``recipe`` as a run would, without training or writing anything; return what it found, as text.

    The data is read and split, the model built with the recipe's weights,
    every phase checked against it (:func:`tlcore.training._checks.check_phases`),
    and each phase's layer table printed (for a policy that changes by epoch,
    the table at its first epoch and a line per epoch).
    """
    from tlcore._layers import layer_table
    from tlcore.training._checks import check_phases

    if backend is not None:
        recipe = replace(recipe, backend=backend)
    prepared = _prepare(recipe, cache=False)
    check_phases(prepared.model, recipe.phases)
    sizes = ", ".join(f"{name} {count}" for name, count in prepared.splits.sizes().items())
    lines = [
        f"recipe {recipe.name!r}: {prepared.spec.name} on {prepared.native.name}, weights {recipe.backbone.weights}, "
        f"{prepared.size[0]}x{prepared.size[1]} px, dataset {recipe.data.dataset} ({sizes}; "
        f"{prepared.splits.train.num_classes} classes), batch {recipe.data.batch_size}",
    ]
    for index, phase in enumerate(recipe.phases):
        table = layer_table(prepared.model, phase.freeze)
        title = f"phase {index + 1}/{len(recipe.phases)} {phase.name!r}: {phase.epochs} epochs, {phase.optimizer}"
        lines += ["", f"== {title} at learning rate {phase.learning_rate:g} ==", table.format()]
        if phase.freeze.varies_by_epoch:
            for epoch in range(1, phase.epochs):
                later = layer_table(prepared.model, phase.freeze, epoch=epoch)
                lines.append(
                    f"epoch {epoch + 1}: {later.trainable_parameters:,} trainable, {later.frozen_parameters:,} frozen"
                )
    lines += ["", "recipe checked: data, weights, model and every phase; nothing trained or written."]
    return "\n".join(lines)


def _run(recipe: Recipe, folder: Any, *, progress: bool, save_model: bool) -> RunResult:
    """The run itself; ``folder`` is the held :class:`~tlcore._runfolder.RunFolder`, or None (write nothing)."""
    started = time.perf_counter()
    prepared = _prepare(recipe)
    native, spec, size, model, head = prepared.native, prepared.spec, prepared.size, prepared.model, prepared.head
    splits, train, validation, test = prepared.splits, prepared.train, prepared.validation, prepared.test
    plain_pipeline = prepared.plain_pipeline
    options = TrainerOptions(
        seed=recipe.seed,
        device=recipe.device,
        mixed_precision=recipe.mixed_precision,
        progress=progress,
        checkpoint_dir=None if folder is None else str(folder.checkpoints),
        state_dir=None if folder is None else str(folder.state_dir),
        resume=folder is not None and folder.resume != "restart",
        fingerprint=_fingerprint(recipe, native, model, splits),
    )
    trainer = native.make_trainer(model, options)
    history = trainer.fit(train, recipe.phases, validation=validation)
    resumed = trainer.resumed_from
    evaluation = trainer.evaluate(test)
    trained_images = sum(len(p.epochs) * train.num_examples for p in history.phases)
    record: dict[str, Any] = {
        "recipe": recipe.name,
        "recipe_file": recipe.source,
        "backend": native.name,
        "device": native.device(),
        "backbone": spec.name,
        "weights": {"name": recipe.backbone.weights, "sha256": model.weights_sha256},
        "head": {"pooling": head.pooling, "hidden": list(head.hidden), "dropout": head.dropout},
        "dataset": {
            "name": recipe.data.dataset,
            "image_size": list(size),
            "crop_pct": plain_pipeline.crop_pct,
            "workers": train.workers,
            "cache": _cache_folder(splits.train.images),
            "train": len(splits.train),
            "validation": len(splits.validation) if splits.validation is not None else 0,
            "test": len(splits.test),
            "num_classes": splits.train.num_classes,
            "class_names": list(splits.train.class_names),
        },
        "seed": recipe.seed,
        "phases": history.to_dict(),
        "test": evaluation.to_dict(),
        "test_accuracy": evaluation.accuracy,
        "test_loss": evaluation.loss,
        "training_seconds": history.seconds,
        "total_seconds": time.perf_counter() - started,
        "images_per_second": trained_images / history.seconds if history.seconds > 0 else 0.0,
        "peak_memory": _peak_memory(native),
        "versions": {
            "tlcore": _version("tlcore"),
            "python": platform.python_version(),
            "numpy": _version("numpy"),
            **native.versions(),
        },
        "platform": {"machine": platform.machine(), "system": platform.system(), "argv": sys.argv},
        "resumed_from": None
        if resumed is None
        else {"phase": recipe.phases[resumed.phase].name, "epochs_done": resumed.epochs_done},
    }
    result = RunResult(model=model, history=history, test=evaluation, record=record)
    if folder is not None:
        written = write_run(result, folder.partial, save_model=save_model, final=folder.out)
        folder.finish(written)
        result.out = folder.out
    return result


def write_run(
    result: RunResult, out: str | Path, *, save_model: bool = True, final: str | Path | None = None
) -> list[Path]:
    """Write ``result.json``, ``curves.png`` and (optionally) ``model.safetensors`` under ``out``; return them.

    ``final`` is where the files will be moved (the paths recorded in ``result.json``), if not ``out``.
    """
    from tlcore._io import write_json
    from tlcore._plot import plot_history

    directory = Path(out)
    moved_to = Path(final) if final is not None else directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TLCoreError(f"cannot create output folder {str(directory)!r}: {exc}") from None
    written = []
    if save_model:
        written.append(result.model.save(directory / "model.safetensors"))
        result.record["model_file"] = str(moved_to / "model.safetensors")
    plot = plot_history(
        result.history, directory / "curves.png", title=f"{result.record['recipe']} on {result.record['backend']}"
    )
    if plot:
        written.append(Path(plot))
    result.record["plot"] = str(moved_to / "curves.png") if plot else None
    written.append(write_json(directory / "result.json", result.record))
    return written
