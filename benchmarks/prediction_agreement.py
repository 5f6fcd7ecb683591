"""How far apart two backends' fine-tuned models are: the benchmark recipe on one task and seed, test images compared.

Runs the shared benchmark's two-phase recipe of ``TASK`` (a task of the full
plan: ``digits``, ``mnist-5k/100``, ``fashion-mnist/100``,
``fashion-mnist/1000``) for ``SEED`` on each backend, each in a process of
its own (Keras holds one backend per process), from one neutral checkpoint,
and prints both test accuracies, how many test images the two models
classify differently, and how many each alone gets wrong. These are the
figures behind the benchmark's fine-tuning rate (``tasks.py``)::

    .venv/bin/python benchmarks/prediction_agreement.py digits 0 torch keras-torch
    .venv/bin/python benchmarks/prediction_agreement.py digits 0 torch keras-torch --fine-tune-lr 3e-4

One backend's run is one process:
``python benchmarks/prediction_agreement.py --worker TASK SEED BACKEND LR WEIGHTS OUT.npz``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _worker(task_name: str, seed: int, backend: str, rate: float, weights: str, out: str) -> None:
    """Fine-tune on ``backend`` and save the test logits and labels to ``out``."""
    from tlcore_bench.tasks import FULL, parity_recipe

    from tlcore import open_dataset, run_recipe
    from tlcore.data import Batches, ImagePipeline, make_splits
    from tlcore.plugins import load_plugins

    task = replace(FULL.task(task_name), fine_tune_learning_rate=rate)
    recipe = replace(parity_recipe(task, weights, seed), backend=backend)
    result = run_recipe(recipe, progress=False, save_model=False)
    data = recipe.data  # the test split and its preparation, as run_recipe made them
    splits = make_splits(
        open_dataset(data.dataset),
        seed=seed,
        labels_per_class=data.labels_per_class,
        validation_per_class=data.validation_per_class,
        test_fraction=data.test_fraction,
        test_per_class=data.test_per_class,
    )
    size = int(data.image_size or 0)  # the benchmark's recipes always give image_size
    spec = load_plugins().backbone("efficientnet_lite0", backend)
    pipeline = ImagePipeline(spec.input, (size, size), crop_pct=data.crop_pct)
    images, labels = Batches(splits.test, pipeline, batch_size=data.batch_size).all_prepared()
    logits = result.model.predict(images)
    if abs(float((logits.argmax(axis=1) == labels).mean()) - result.test.accuracy) > 1e-9:
        raise RuntimeError("the test images rebuilt here are not the ones the run was evaluated on")
    np.savez(out, logits=logits, labels=labels)


def main() -> int:
    if sys.argv[1:2] == ["--worker"]:
        task, seed, backend, rate, weights, out = sys.argv[2:8]
        _worker(task, int(seed), backend, float(rate), weights, out)
        return 0
    from tlcore_bench.tasks import FULL

    from tlcore.checkpoints import convert_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("task", choices=FULL.parity_tasks)
    parser.add_argument("seed", type=int)
    parser.add_argument("backends", nargs=2, metavar="BACKEND")
    default_rate = FULL.task(FULL.parity_tasks[0]).fine_tune_learning_rate
    parser.add_argument("--fine-tune-lr", type=float, default=default_rate, help=f"default: {default_rate:g}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        manifest = convert_checkpoint(FULL.weights, Path(folder) / "efficientnet_lite0").manifest
        runs = []
        for backend in args.backends:
            result_file = Path(folder) / f"{backend}.npz"
            command = [sys.executable, __file__, "--worker", args.task, str(args.seed), backend,
                       str(args.fine_tune_lr), str(manifest), str(result_file)]  # fmt: skip
            subprocess.run(command, cwd=ROOT, check=True)
            runs.append(np.load(result_file))
    (first, second), labels = runs, runs[0]["labels"]
    a, b = first["logits"].argmax(axis=1), second["logits"].argmax(axis=1)
    name_a, name_b = args.backends
    print(f"{args.task}, seed {args.seed}, fine-tuning at {args.fine_tune_lr:g}: {len(labels)} test images")
    print(f"  test accuracy: {name_a} {100 * (a == labels).mean():.2f} %, {name_b} {100 * (b == labels).mean():.2f} %")
    print(f"  classified differently: {(a != b).sum()} ({100 * (a != b).mean():.1f} %)")
    wrong_a, wrong_b = a != labels, b != labels
    only_a, only_b, both = (wrong_a & ~wrong_b).sum(), (wrong_b & ~wrong_a).sum(), (wrong_a & wrong_b).sum()
    print(f"  wrong on {name_a} only: {only_a}, on {name_b} only: {only_b}, on both: {both}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
