"""Prints one backend's library-overhead ratio (tlcore's training step over the hand-written loop's), measured
as the full benchmark measures it, in a process that runs nothing else, ``--repeats`` times.

    .venv/bin/python benchmarks/overhead_alone.py keras-jax [--repeats 3] [--same-optimizer] [--pairs N]
    .venv/bin/python -m cProfile -s tottime benchmarks/overhead_alone.py keras-jax --repeats 1 | head -40

The benchmark's overhead job shares its worker process with the jobs before it; this separates the step's cost
from that, and under ``cProfile`` shows where tlcore's step spends the time the hand loop does not.
``--same-optimizer`` (Keras backends) gives ``keras.Model.fit`` tlcore's optimizer, torch's Adam
(:class:`tlcore_keras.optimizers.TorchAdam`), instead of Keras's Adam: what is left of the gap is then the loop's.
``--pairs N`` times N pairs of alternating single epochs instead of the full plan's 16.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from tlcore_bench.run import WEIGHTS_NAME
from tlcore_bench.tasks import FULL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backend")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--same-optimizer", action="store_true", help="keras.Model.fit with tlcore's TorchAdam")
    parser.add_argument("--pairs", type=int, default=FULL.overhead_pairs, help="pairs of single epochs (the plan's)")
    args = parser.parse_args()
    if args.backend.startswith("keras-"):
        os.environ.setdefault("KERAS_BACKEND", args.backend.removeprefix("keras-"))
    from tlcore_bench.baselines import EpochRunner, HandLoop, keras_fit
    from tlcore_bench.worker import run_overhead, warm_up

    from tlcore.checkpoints import convert_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        convert_checkpoint(FULL.weights, Path(folder) / WEIGHTS_NAME)
        weights = str(Path(folder) / f"{WEIGHTS_NAME}.json")
        warm_up(args.backend)
        task = FULL.task(FULL.parity_tasks[0])
        plan = replace(FULL, overhead_pairs=args.pairs)
        loop: HandLoop | None = None
        if args.same_optimizer and args.backend.startswith("keras-"):
            from tlcore_keras.optimizers import TorchAdam

            def loop(net: Any, batches: Any, learning_rate: float) -> EpochRunner:
                return keras_fit(net, batches, learning_rate, TorchAdam(learning_rate=learning_rate, epsilon=1e-7))

        for repeat in range(args.repeats):
            result = run_overhead(plan, task, args.backend, weights, seed=0, loop=loop)
            tlcore = ", ".join(f"{rate:.0f}" for rate in result["tlcore_images_per_second"])
            hand = ", ".join(f"{rate:.0f}" for rate in result["hand_images_per_second"])
            interval = result["ratio_interval"]
            print(
                f"{args.backend} repeat {repeat}: median pair ratio {result['ratio']:.3f} "
                f"(interval {interval['low']:.3f} to {interval['high']:.3f}); tlcore [{tlcore}] img/s, "
                f"{result['hand_loop']}{' with TorchAdam' if loop else ''} [{hand}] img/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
