"""Run a recipe end to end on one backend and record the result."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import resource
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tlcore._backend import Backend, Model, get_backend
from tlcore._errors import ConfigError, DataError, TLCoreError
from tlcore._recipe import Recipe
from tlcore._specs import BackboneSpec, HeadSpec
from tlcore.training import Evaluation, History, TrainerOptions

__all__ = ["RunResult", "open_dataset", "run_recipe"]


def open_dataset(name: str, **options: Any) -> Any:
    """Load the registered dataset ``name`` as a :class:`tlcore.data.DatasetSource`."""
    from tlcore.plugins import import_object, load_plugins

    info = load_plugins().dataset(name)
    missing = [module for module in info.requires if importlib.util.find_spec(module) is None]
    if missing:
        hint = info.install_hint or "pip install 'tlcore[data]'"
        raise DataError(f"dataset {name!r} needs {', '.join(missing)}, which is not installed. Install: {hint}")
    loader = import_object(info.loader, what=f"dataset {name!r}") if isinstance(info.loader, str) else info.loader
    try:
        return loader(**options)
    except TypeError as exc:
        raise ConfigError(f"dataset {name!r} does not take options {sorted(options)} ({exc}).") from None


def make_head(recipe: Recipe, num_outputs: int) -> HeadSpec:
    """The recipe's head preset, with its overrides, for ``num_outputs`` classes."""
    from tlcore.plugins import load_plugins

    info = load_plugins().head(recipe.head.preset)
    try:
        head = info.factory(num_outputs=num_outputs, **dict(recipe.head.options))
    except TypeError as exc:
        raise ConfigError(f"head {recipe.head.preset!r} does not take {sorted(recipe.head.options)} ({exc}).") from None
    if not isinstance(head, HeadSpec):
        raise ConfigError(f"head preset {recipe.head.preset!r} built {head!r}, not a HeadSpec.")
    return head


def _image_size(recipe: Recipe, spec: BackboneSpec) -> tuple[int, int]:
    if recipe.data.image_size is None:
        return spec.input.size
    size = recipe.data.image_size
    if size < spec.input.min_size:
        raise ConfigError(
            f"data.image_size={size} is too small for {spec.name}: it needs at least {spec.input.min_size} pixels."
        )
    return (size, size)


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
    store = getattr(images, "store", None)
    return None if store is None else str(store.folder)


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
) -> RunResult:
    """Run every phase of ``recipe`` on ``backend``; write ``result.json`` and plots to ``out``."""
    from tlcore.data import Batches, make_splits
    from tlcore.plugins import load_plugins

    if backend is not None:
        recipe = replace(recipe, backend=backend)
    started = time.perf_counter()
    registry = load_plugins()
    native = get_backend(recipe.backend)
    spec = registry.backbone(recipe.backbone.name, recipe.backend)
    if recipe.backbone.bn_momentum is not None:
        spec = replace(spec, bn_momentum=recipe.backbone.bn_momentum)
    size = _image_size(recipe, spec)
    train_pipeline, plain_pipeline = _pipelines(recipe, spec, size)
    source = _cached(open_dataset(recipe.data.dataset, **dict(recipe.data.options)), recipe, plain_pipeline)
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
    options = TrainerOptions(
        seed=recipe.seed,
        device=recipe.device,
        mixed_precision=recipe.mixed_precision,
        progress=progress,
        checkpoint_dir=str(Path(out) / "checkpoints") if out is not None else None,
    )
    trainer = native.make_trainer(model, options)
    history = trainer.fit(train, recipe.phases, validation=validation)
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
    }
    result = RunResult(model=model, history=history, test=evaluation, record=record)
    if out is not None:
        result.out = write_run(result, out, save_model=save_model)
    return result


def write_run(result: RunResult, out: str | Path, *, save_model: bool = True) -> Path:
    """Write ``result.json``, ``curves.png`` and (optionally) ``model.safetensors`` under ``out``."""
    from tlcore._io import write_json
    from tlcore._plot import plot_history

    directory = Path(out)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TLCoreError(f"cannot create output folder {str(directory)!r}: {exc}") from None
    if save_model:
        result.record["model_file"] = str(result.model.save(directory / "model.safetensors"))
    plot = plot_history(
        result.history, directory / "curves.png", title=f"{result.record['recipe']} on {result.record['backend']}"
    )
    result.record["plot"] = str(plot) if plot else None
    write_json(directory / "result.json", result.record)
    return directory
