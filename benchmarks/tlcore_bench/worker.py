"""One backend's share of the benchmark, run in a process of its own.

``python -m tlcore_bench.worker --bench DIR --backend NAME`` reads
``DIR/plan.json`` and runs every job of that backend that has no result yet,
writing each result to ``DIR/runs/NAME/JOB.json`` (atomically) as soon as it
finishes, so an interrupted benchmark resumes where it stopped. It prints
one ``@@`` line when a job starts and one when it ends, for the parent's
progress display; everything else it prints is the log.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from tlcore import FineTuneAt, Recipe, get_backend, make_head, open_dataset, peak_host_memory_bytes, run_recipe
from tlcore.data import Augmentation, Batches, ImagePipeline, make_splits
from tlcore.io import write_json
from tlcore.plugins import load_plugins
from tlcore.training import EpochRecord, Phase, PhaseHistory, TrainerOptions
from tlcore_bench.baselines import HandLoop, hand_loop
from tlcore_bench.stats import ratio_verdict
from tlcore_bench.tasks import BenchPlan, Job, Task, jobs_for, parity_recipe, probe_recipe, scratch_recipe

__all__ = ["main", "run_job"]


class FixedBatches:
    """The same prepared batches every epoch, in the same order (the trainer's ``BatchSource``)."""

    augment = False

    def __init__(self, batches: Sequence[tuple[np.ndarray, np.ndarray]], num_classes: int) -> None:
        self.batches = list(batches)
        self.batch_size = len(self.batches[0][1])
        self._num_classes = num_classes

    @property
    def num_examples(self) -> int:
        return sum(len(labels) for _, labels in self.batches)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter(self.batches)

    def order(self, epoch: int) -> np.ndarray:
        return np.arange(self.num_examples)

    def ordered(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter(self.batches)

    def without_augmentation(self) -> FixedBatches:
        return self


def run_overhead(
    plan: BenchPlan, task: Task, backend: str, weights: str, seed: int, loop: HandLoop | None = None
) -> dict[str, Any]:
    """tlcore's training step against the framework's hand-written loop: a paired design of alternating epochs.

    The model fine-tunes from ``task.fine_tune_at`` (the recipe's training
    phase) on ``plan.overhead_batches`` prepared batches. tlcore's trainer runs
    ``plan.overhead_pairs`` + 1 epochs in one phase (the first compiles its
    step and is not counted); after each counted epoch the hand-written loop
    runs one epoch on a twin of the model (same weights, same layers frozen;
    its own compiled step, so neither side's compilation is repeated). Each
    pair's ratio compares two epochs run back to back, so a machine that
    slows down for a while slows both; the verdict takes the median of the
    ratios with an order-statistics interval (:func:`tlcore_bench.stats.ratio_verdict`).
    ``loop`` replaces the backend's hand-written loop.
    """
    recipe = parity_recipe(task, weights, seed)
    native = get_backend(backend)
    spec = load_plugins().backbone("efficientnet_lite0", backend)
    size = (task.image_size, task.image_size)
    splits = make_splits(
        open_dataset(task.dataset),
        seed=seed,
        labels_per_class=task.labels_per_class,
        validation_per_class=task.validation_per_class,
        test_fraction=task.test_fraction,
    )
    pipeline = ImagePipeline(spec.input, size, Augmentation(), crop_pct=recipe.data.crop_pct)
    batches = Batches(splits.train, pipeline, batch_size=task.batch_size, shuffle=True, seed=seed)
    prepared = [b for b in islice(batches.epoch(0), plan.overhead_batches) if len(b[1]) == task.batch_size]
    source = FixedBatches(prepared, splits.train.num_classes)
    head = make_head(recipe, splits.train.num_classes)
    native.seed(seed)
    model = native.build_model(spec, head, weights=weights, seed=seed, image_size=size)
    trainer = native.make_trainer(model, TrainerOptions(seed=seed, progress=False))
    phase = Phase(
        name="overhead",
        freeze=FineTuneAt(task.fine_tune_at),
        epochs=plan.overhead_pairs + 1,
        learning_rate=task.fine_tune_learning_rate,
        keep_best=False,
        cache_features=False,
    )
    twin = native.build_model(spec, head, weights=weights, seed=seed, image_size=size)
    twin.apply_freeze(phase.freeze.plan(twin.layers(), 0))
    hand_epoch = (loop or hand_loop(backend))(twin.native, prepared, task.fine_tune_learning_rate)
    hand: list[float] = []

    def then_by_hand(record: PhaseHistory, epoch: EpochRecord) -> None:
        if epoch.epoch > 0:  # tlcore's first epoch compiled its step: no pair
            hand.append(hand_epoch())

    history = trainer.fit(source, [phase], on_epoch=then_by_hand)
    library = [e.images_per_second for e in history.phases[-1].epochs[1:]]
    ratios = [t / h if h > 0 else 0.0 for t, h in zip(library, hand, strict=True)]
    verdict = ratio_verdict(ratios, plan.overhead_bar)
    return {
        "task": task.name,
        "freeze": phase.freeze.describe(),
        "batch_size": task.batch_size,
        "image_size": task.image_size,
        "images_per_epoch": source.num_examples,
        "design": "paired: alternating single epochs, tlcore then the hand loop; median of per-pair ratios",
        "tlcore_images_per_second": library,
        "hand_images_per_second": hand,
        "pair_ratios": ratios,
        "tlcore_median": float(np.median(library)),
        "hand_median": float(np.median(hand)),
        "ratio": verdict.interval.estimate if verdict.interval else 0.0,
        "ratio_interval": verdict.interval.to_dict() if verdict.interval else None,
        "hand_loop": "plain torch loop" if backend == "torch" else "keras.Model.fit",
        "device": native.device(),
        "versions": native.versions(),
    }


def warm_up(backend: str) -> float:
    """One training step and one prediction on random data, so that no timed job pays the process's one-time costs.

    A framework's first optimizer, compiled step or kernel in a process loads
    code (torch's first optimizer imports about 1.5 s of modules): whichever
    job came first would be charged for it. Returns the seconds it took.
    """
    from tlcore import Frozen, HeadSpec

    started = time.perf_counter()
    native = get_backend(backend)
    spec = load_plugins().backbone("efficientnet_lite0", backend)
    model = native.build_model(spec, HeadSpec(num_outputs=2), weights=None, seed=0, image_size=(32, 32))
    trainer = native.make_trainer(model, TrainerOptions(progress=False))
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    source = FixedBatches([(images, np.array([0, 1, 0, 1]))], num_classes=2)
    trainer.fit(source, [Phase(freeze=Frozen(), epochs=1), Phase(freeze=FineTuneAt("top"), epochs=1)])
    trainer.evaluate(source)
    return time.perf_counter() - started


def _equal_time_scratch(task: Task, seed: int, scratch_seed: int, folder: Path) -> tuple[Recipe, dict[str, Any]]:
    """Training from scratch for as many epochs as fit in the transfer recipe's training time on this backend.

    The budget is the parity run's training time (same task and seed); one
    epoch's time comes from the same-epochs scratch run of ``scratch_seed``.
    Both must be in ``folder`` already (the job list runs them first).
    """
    try:
        parity = json.loads((folder / f"{Job('parity', task.name, seed).key}.json").read_text())
        scratch = json.loads((folder / f"{Job('scratch', task.name, scratch_seed).key}.json").read_text())
    except FileNotFoundError as exc:
        raise RuntimeError(f"the equal-time scratch run needs {Path(exc.filename).name} first") from None
    epoch_seconds = scratch["training_seconds"] / sum(len(p["epochs"]) for p in scratch["phases"])
    epochs = max(1, round(parity["training_seconds"] / epoch_seconds))
    recipe = scratch_recipe(task, seed)
    recipe = replace(recipe, phases=(replace(recipe.phases[0], epochs=epochs),))
    return recipe, {"budget_seconds": parity["training_seconds"], "scratch_epoch_seconds": epoch_seconds}


def run_job(job: Job, plan: BenchPlan, backend: str, weights: str, folder: Path) -> dict[str, Any]:
    """Run ``job`` on ``backend`` in this process; return its JSON-ready result.

    ``folder`` holds this backend's finished results (the equal-time scratch
    run reads its budget there).
    """
    task = plan.task(job.task)
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if job.kind == "overhead":
        record = run_overhead(plan, task, backend, weights, job.seed)
    else:
        if job.kind == "parity":
            recipe = parity_recipe(task, weights, job.seed)
        elif job.kind in ("probe", "naive"):
            recipe = probe_recipe(task, weights, job.seed, cache=job.kind == "probe")
        elif job.kind == "scratch":
            recipe = scratch_recipe(task, job.seed)
        elif job.kind == "scratch_time":
            recipe, extra = _equal_time_scratch(task, job.seed, plan.scratch_seeds[0], folder)
        else:
            raise ValueError(f"unknown job kind {job.kind!r}")
        result = run_recipe(replace(recipe, backend=backend), progress=False)
        record = {k: v for k, v in result.record.items() if k not in ("platform", "test")}
        record["per_class_accuracy"] = result.test.per_class_accuracy
    return {
        **extra,
        "job": job.key,
        "kind": job.kind,
        "task": job.task,
        "seed": job.seed,
        "backend": backend,
        "seconds": time.perf_counter() - started,
        "peak_rss_bytes": peak_host_memory_bytes(),
        **record,
    }


def _summary(result: dict[str, Any]) -> str:
    if result["kind"] == "overhead":
        return f"ratio {result['ratio']:.3f} ({result['tlcore_median']:.0f} vs {result['hand_median']:.0f} img/s)"
    return f"test accuracy {result['test_accuracy']:.4f} in {result['seconds']:.0f} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one backend's jobs; exit 0 when all succeeded, 1 when any failed."""
    parser = argparse.ArgumentParser(prog="python -m tlcore_bench.worker")
    parser.add_argument("--bench", required=True, help="the benchmark folder holding plan.json")
    parser.add_argument("--backend", required=True)
    args = parser.parse_args(argv)
    bench = Path(args.bench)
    meta = json.loads((bench / "plan.json").read_text())
    plan = BenchPlan.from_dict(meta["plan"])
    folder = bench / "runs" / args.backend
    folder.mkdir(parents=True, exist_ok=True)
    failed = 0
    jobs = [job for job in jobs_for(plan, args.backend) if not (folder / f"{job.key}.json").exists()]
    if jobs:
        print(f"warmed up {args.backend} in {warm_up(args.backend):.1f} s", flush=True)
    for job in jobs_for(plan, args.backend):
        path = folder / f"{job.key}.json"
        if path.exists():
            print(f"@@skip {job.key}", flush=True)
            continue
        print(f"@@start {job.key}", flush=True)
        try:
            result = run_job(job, plan, args.backend, meta["weights"], folder)
        except Exception as exc:  # one failed job is reported; the others still run
            failed += 1
            traceback.print_exc()
            write_json(folder / f"{job.key}.error.json", {"job": job.key, "error": f"{type(exc).__name__}: {exc}"})
            print(f"@@fail {job.key} {type(exc).__name__}: {str(exc)[:200]}", flush=True)
            continue
        write_json(path, result)
        (folder / f"{job.key}.error.json").unlink(missing_ok=True)
        print(f"@@done {job.key} {_summary(result)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
