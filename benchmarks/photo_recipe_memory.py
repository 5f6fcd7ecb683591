"""Peak host memory of a recipe on a large folder of photos: the folder stays on disk, not in memory.

Writes (once) a folder of JPEG photos of about 500x375 pixels in two classes
(the photos of ``input_pipeline.py``), then runs ``recipes/photos.toml`` on it
with ``tlcore run`` on torch at a small working size, in a process of its own,
and prints that process's peak resident memory beside what the decoded folder
would take. Run it twice to see a run that finds its preprocessed cache::

    .venv/bin/python benchmarks/photo_recipe_memory.py                 # 6,000 photos at 64 px, about 5 minutes
    .venv/bin/python benchmarks/photo_recipe_memory.py --images 600 --fine-tune-epochs 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from input_pipeline import make_photos

from tlcore.data import ImageFiles, default_workers, load_image_folder

ROOT = Path(__file__).resolve().parents[1]


def decoded_bytes(folder: Path) -> int:
    """What every photo of ``folder`` takes decoded as RGB uint8 (read from the file headers)."""
    from PIL import Image

    images = load_image_folder(folder).train.images
    if not isinstance(images, ImageFiles):
        raise TypeError(f"{folder} was not listed as image files")
    total = 0
    for path in images.selected_paths():
        with Image.open(path) as image:
            total += image.width * image.height * 3
    return total


def recipe_text(folder: Path, size: int, fine_tune_epochs: int) -> str:
    """``recipes/photos.toml`` pointed at ``folder``, at ``size`` pixels, with that many fine-tuning epochs."""
    text = (ROOT / "recipes" / "photos.toml").read_text()
    text = text.replace('"data/photos"', json.dumps(str(folder))).replace("image_size = 224", f"image_size = {size}")
    head, _, tune = text.partition('name = "fine-tune"')
    return head + 'name = "fine-tune"' + tune.replace("epochs = 5", f"epochs = {fine_tune_epochs}", 1)


def run(folder: Path, size: int, fine_tune_epochs: int, out: Path) -> dict[str, Any]:
    """Run the recipe in a fresh process; return its result record."""
    out.mkdir(parents=True, exist_ok=True)
    recipe = out / "photos.toml"
    recipe.write_text(recipe_text(folder, size, fine_tune_epochs))
    run_out = Path(tempfile.mkdtemp(prefix="run-", dir=out))
    tlcore = str(Path(sys.executable).parent / "tlcore")
    command = [tlcore, "run", str(recipe), "--backend", "torch", "--out", str(run_out)]
    subprocess.run([*command, "--no-progress"], check=True, env=os.environ.copy())
    record: dict[str, Any] = json.loads((run_out / "result.json").read_text())
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Build the folder, run the recipe, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/photos-6000", help="the photo folder (written once)")
    parser.add_argument("--images", type=int, default=6000, help="how many photos")
    parser.add_argument("--size", type=int, default=64, help="the recipe's data.image_size")
    parser.add_argument("--fine-tune-epochs", type=int, default=2, help="epochs of the fine-tuning phase")
    parser.add_argument("--out", default="runs/photo-recipe-memory", help="recipe, runs and the result")
    args = parser.parse_args(argv)
    folder = Path(args.data).resolve()
    photos = make_photos(folder, args.images, processes=default_workers())
    record = run(folder, args.size, args.fine_tune_epochs, Path(args.out).resolve())
    peak = record["peak_memory"]["host_rss_bytes"]
    decoded = decoded_bytes(folder)
    print(
        f"{args.images} photos ({photos['bytes'] / 2**20:.0f} MiB of JPEG, {decoded / 2**30:.2f} GiB decoded) "
        f"at {args.size} px on torch: peak host memory {peak / 2**30:.2f} GiB; "
        f"test accuracy {record['test_accuracy']:.4f}; total {record['total_seconds']:.0f} s "
        f"(cache {record['dataset']['cache']})"
    )


if __name__ == "__main__":
    main()
