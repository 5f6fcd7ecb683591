"""Images a second of training input from JPEG photos: tlcore's data layer against torch's and tf.data's own pipelines.

Builds (once; reused when already there) a folder of deterministic photo-like JPEGs in two classes (``cat/``,
``dog/``; about 500x375, some portrait, quality 90, 50 to 120 KB each), then measures, for 1 worker, 2 and every core:

- ``tlcore``: ``Batches(load_image_folder(DATA).train, ImagePipeline(...), workers=N).epoch(e)``, a random-resized
  crop and a horizontal flip to normalised float32 NHWC batches;
- ``torch``: a ``DataLoader`` (``num_workers=N`` worker processes) over a dataset that opens each file with PIL, as
  torchvision's ``ImageFolder`` does, and applies the tutorial's ``transforms.v2`` (``RandomResizedCrop``,
  ``RandomHorizontalFlip``, ``ToImage``, ``ToDtype``, ``Normalize``);
- ``tf``: ``tf.data`` reading, decoding, cropping (``sample_distorted_bounding_box``), resizing (bilinear, antialias),
  flipping and normalising with ``num_parallel_calls=N``, tf's inter- and intra-op threads set to N;
- ``cached``: tlcore's preprocessed uint8 cache (``cache_images``): the first epoch's rate with the cache build
  counted, then a later epoch's rate reading the cache (a fresh cache every run).

Each rate leaves out a few warm-up batches and then times ``--measure`` images, at 224 px in batches of 32, with the
same normalisation (efficientnet_lite0's) everywhere; the photos are read just before each measurement, so all find
them in the page cache. Every measurement runs in a process of its own (``--worker PIPELINE --workers N``), so the
frameworks never share one and its peak memory (``ru_maxrss``) is its own; the torch DataLoader's worker processes
are reported apart. Every measurement runs ``--rounds`` times, round after round, and the table has the medians. The
machine's busy time less the measurement's own tells whether other processes ran meanwhile: such a measurement waits
for a quiet machine and runs again (``--quiet-wait``, ``--retries``), and the table names those that stayed
disturbed. Results go to ``OUT/input.json``, ``OUT/input.md`` (the table, also printed) and ``OUT/input.png``::

    .venv/bin/python benchmarks/input_pipeline.py          # 3,000 photos, 3 rounds: about 6 minutes on 2 quiet cores
    .venv/bin/python benchmarks/input_pipeline.py --quick --out runs/bench-input-quick      # 400 photos, 1 round
    .venv/bin/python benchmarks/input_pipeline.py --pipelines tlcore,cached --workers 2 --rounds 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np

from tlcore import peak_host_memory_bytes
from tlcore.io import write_json, write_with

PIPELINES = ("tlcore", "torch", "tf", "cached")
CLASSES = ("cat", "dog")
QUALITY = 90
WIDTHS, HEIGHTS = (400, 600), (300, 450)
PORTRAIT = 0.25
CHILD_TIMEOUT_S = 900
# Other processes busier than this many cores during a measurement make its figures unreliable.
BUSY_CORES = 0.2
# (pipeline, record key, column title) of the rates in the table and the plot.
RATES = (
    ("tlcore", "images_per_second", "tlcore"),
    ("torch", "images_per_second", "torch DataLoader + transforms.v2"),
    ("tf", "images_per_second", "tf.data"),
    ("cached", "first_epoch_images_per_second", "tlcore cached, first epoch"),
    ("cached", "images_per_second", "tlcore cached, later epochs"),
)


@dataclass(frozen=True)
class Settings:
    """What every measurement shares: the photos, the output size, the batches and how much is timed."""

    data: str
    size: int = 224
    batch_size: int = 32
    warmup_batches: int = 4
    measure: int = 2048
    seed: int = 0


# --- the photos ----------------------------------------------------------------------------------------------------


def photo(seed: int, index: int, widths: tuple[int, int] = WIDTHS, heights: tuple[int, int] = HEIGHTS) -> Any:
    """Photo ``index``: a smooth background, soft shapes, texture and sensor noise (a PIL image, deterministic)."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng([seed, index])
    width, height = int(rng.integers(widths[0], widths[1] + 1)), int(rng.integers(heights[0], heights[1] + 1))
    if rng.random() < PORTRAIT:
        width, height = height, width
    corners = rng.integers(0, 256, size=(int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3), dtype=np.uint8)
    image = Image.fromarray(corners).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 12))):
        left, top = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
        right = left + int(rng.integers(max(1, width // 10), max(2, width // 2)))
        bottom = top + int(rng.integers(max(1, height // 10), max(2, height // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((left, top, right, bottom), fill=colour)
        else:
            corners_xy = [(int(rng.integers(left, right)), int(rng.integers(top, bottom))) for _ in range(5)]
            draw.polygon(corners_xy, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 2.0))))
    texture = rng.normal(0.0, 12.0, size=(height // 4 + 1, width // 4 + 1)).astype(np.float32)
    texture = np.asarray(Image.fromarray(texture, mode="F").resize((width, height), Image.Resampling.BILINEAR))
    noise = rng.normal(0.0, rng.uniform(8.0, 18.0), size=(height, width, 3)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) + texture[..., np.newaxis] + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _write_photo(job: tuple[str, int, int, tuple[int, int], tuple[int, int]]) -> int:
    path, seed, index, widths, heights = job
    photo(seed, index, widths, heights).save(path, "JPEG", quality=QUALITY)
    return os.path.getsize(path)


def make_photos(
    folder: Path,
    images: int,
    *,
    seed: int = 0,
    widths: tuple[int, int] = WIDTHS,
    heights: tuple[int, int] = HEIGHTS,
    processes: int = 1,
) -> dict[str, Any]:
    """Write ``images`` JPEGs to ``folder/cat`` and ``folder/dog`` unless ``folder/photos.json`` says they are there."""
    manifest = {"images": images, "seed": seed, "widths": list(widths), "heights": list(heights), "quality": QUALITY}
    record = folder / "photos.json"
    if record.is_file():
        known = json.loads(record.read_text())
        if {key: known.get(key) for key in manifest} == manifest:
            return dict(known)
    for name in CLASSES:
        shutil.rmtree(folder / name, ignore_errors=True)
        (folder / name).mkdir(parents=True)
    jobs = [(str(folder / CLASSES[i % 2] / f"{i:05d}.jpg"), seed, i, widths, heights) for i in range(images)]
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            sizes = list(pool.map(_write_photo, jobs, chunksize=16))
    else:
        sizes = [_write_photo(job) for job in jobs]
    manifest |= {"bytes": int(sum(sizes)), "median_kib": float(np.median(sizes) / 1024)}
    write_json(record, manifest)
    return manifest


# --- the measurements (each in its own process) ----------------------------------------------------------------------


def time_batches(batches: Iterator[tuple[Any, Any]], warmup_batches: int, images: int) -> tuple[int, float]:
    """Skip ``warmup_batches``, then time batches until ``images`` images: ``(images counted, seconds)``."""
    for _ in range(warmup_batches):
        next(batches)
    counted, start = 0, time.perf_counter()
    while counted < images:
        counted += int(next(batches)[1].shape[0])
    return counted, time.perf_counter() - start


def _endless(epoch: Callable[[int], Any], first: int = 0) -> Iterator[tuple[Any, Any]]:
    for number in count(first):
        yield from epoch(number)


def _tlcore_parts(settings: Settings) -> tuple[Any, Any]:
    from tlcore.data import Augmentation, ImagePipeline, RandomResizedCrop, load_image_folder
    from tlcore.plugins import load_plugins

    spec = load_plugins().backbone("efficientnet_lite0")
    augmentation = Augmentation(flip=True, random_resized_crop=RandomResizedCrop())
    pipeline = ImagePipeline(spec.input, (settings.size, settings.size), augmentation)
    return load_image_folder(settings.data).train, pipeline


def _batches(dataset: Any, pipeline: Any, settings: Settings, workers: int) -> Any:
    from tlcore.data import Batches

    return Batches(
        dataset,
        pipeline,
        batch_size=settings.batch_size,
        shuffle=True,
        seed=settings.seed,
        augment=True,
        workers=workers,
    )


def measure_tlcore(settings: Settings, workers: int) -> dict[str, Any]:
    """tlcore's batches straight from the JPEGs, with ``workers`` threads."""
    dataset, pipeline = _tlcore_parts(settings)
    batches = _batches(dataset, pipeline, settings, workers)
    images, seconds = time_batches(_endless(batches.epoch), settings.warmup_batches, settings.measure)
    return {"images": images, "seconds": seconds}


def measure_cached(settings: Settings, workers: int, cache: Path) -> dict[str, Any]:
    """tlcore's preprocessed cache: the first epoch with the cache build counted, then later epochs from the cache."""
    from tlcore.data import cache_images

    shutil.rmtree(cache, ignore_errors=True)
    dataset, pipeline = _tlcore_parts(settings)
    try:
        start = time.perf_counter()
        cached = cache_images(dataset, pipeline, directory=cache, workers=workers)
        built = time.perf_counter()
        batches = _batches(cached, pipeline, settings, workers)
        first_images = sum(int(labels.shape[0]) for _, labels in batches.epoch(0))
        first_seconds = time.perf_counter() - start
        # The build left hundreds of MB to write back: done now, untimed, lest the kernel's writeback share the
        # cores with the later epochs (or with the next measurement) as it would not in a long training run.
        os.sync()
        images, seconds = time_batches(_endless(batches.epoch, 1), settings.warmup_batches, settings.measure)
        cache_bytes = sum(path.stat().st_size for path in cache.rglob("*") if path.is_file())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {
        "images": images,
        "seconds": seconds,
        "cache_build_seconds": built - start,
        "first_epoch_images": first_images,
        "first_epoch_seconds": first_seconds,
        "first_epoch_images_per_second": first_images / first_seconds,
        "cache_bytes": cache_bytes,
    }


def _photo_files(folder: str) -> tuple[list[str], list[int]]:
    paths = [(str(path), label) for label, name in enumerate(CLASSES) for path in sorted(Path(folder, name).glob("*"))]
    return [path for path, _ in paths], [label for _, label in paths]


def _normalisation() -> tuple[list[float], list[float]]:
    from tlcore.plugins import load_plugins

    spec = load_plugins().backbone("efficientnet_lite0").input
    return list(spec.mean), list(spec.std)


def measure_torch(settings: Settings, workers: int) -> dict[str, Any]:
    """A torch DataLoader with ``workers`` worker processes, PIL decoding and torchvision's transforms.v2."""
    import torch
    from PIL import Image
    from torchvision.transforms import v2

    mean, std = _normalisation()
    transform = v2.Compose(
        [
            v2.RandomResizedCrop(settings.size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )
    paths, labels = _photo_files(settings.data)

    class Photos(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            with Image.open(paths[index]) as file:
                image = file.convert("RGB")
            return transform(image), labels[index]

    torch.manual_seed(settings.seed)
    loader = torch.utils.data.DataLoader(
        Photos(), batch_size=settings.batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    images, seconds = time_batches(_endless(lambda _: loader), settings.warmup_batches, settings.measure)
    return {"images": images, "seconds": seconds}


def measure_tf(settings: Settings, workers: int) -> dict[str, Any]:
    """tf.data with ``num_parallel_calls=workers``, tf's op thread pools and tf.data's pool set to ``workers``."""
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(workers)
    tf.config.threading.set_intra_op_parallelism_threads(workers)
    tf.random.set_seed(settings.seed)
    mean, std = _normalisation()
    mean_t, std_t = tf.constant(mean, tf.float32), tf.constant(std, tf.float32)
    whole = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])

    def prepare(path: Any, label: Any) -> tuple[Any, Any]:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=whole,
            min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0),
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        image = tf.slice(image, begin, crop_size)
        image = tf.image.resize(image, (settings.size, settings.size), method="bilinear", antialias=True)
        image = tf.image.random_flip_left_right(image)
        return (image / 255.0 - mean_t) / std_t, label

    paths, labels = _photo_files(settings.data)
    options = tf.data.Options()
    options.threading.private_threadpool_size = workers
    dataset = (
        tf.data.Dataset.from_tensor_slices((paths, labels))
        .shuffle(len(paths), seed=settings.seed, reshuffle_each_iteration=True)
        .repeat()
        .map(prepare, num_parallel_calls=workers)
        .batch(settings.batch_size)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
    images, seconds = time_batches(iter(dataset), settings.warmup_batches, settings.measure)
    return {"images": images, "seconds": seconds}


def measure(pipeline: str, settings: Settings, workers: int, cache: Path) -> dict[str, Any]:
    """One measurement in this process: its rates and this process's (and its largest child's) peak memory.

    The children are the torch DataLoader's worker processes (TensorFlow also forks one while it loads).
    """
    if pipeline == "cached":
        record = measure_cached(settings, workers, cache)
    else:
        record = {"tlcore": measure_tlcore, "torch": measure_torch, "tf": measure_tf}[pipeline](settings, workers)
    gc.collect()  # a torch DataLoader's iterator, freed, joins its worker processes: their peak memory counts below
    record["images_per_second"] = record["images"] / record["seconds"]
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"pipeline": pipeline, "workers": workers, **record, "peak_rss_bytes": peak_host_memory_bytes()} | (
        {"children_peak_rss_bytes": children} if children else {}
    )


# --- the parent: one child process per measurement, then the report ------------------------------------------------


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, or lost to other virtual machines (Linux; else 0)."""
    try:
        ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _, _, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_photos(folder: str) -> int:
    """Read every photo once, so that each measurement finds them in the page cache; the bytes read.

    Without it, the first measurement after a while read some from disk: the kernel drops idle file pages here,
    and tlcore's 1-worker rate fell from 320 to 254 images a second, with 1.7 s of I/O wait.
    """
    return sum(len(Path(path).read_bytes()) for path in _photo_files(folder)[0])


def run_child(pipeline: str, settings: Settings, workers: int, out: Path) -> dict[str, Any]:
    """Run one measurement in a fresh process, the photos read just before; its record, or the error and log's tail.

    The record's ``other_busy_cores`` is how many cores other processes kept busy meanwhile (the machine's busy
    time less the child's, over the child's run): above a few tenths, the figures are low.
    """
    result, log = out / "results" / f"{pipeline}-w{workers}.json", out / "logs" / f"{pipeline}-w{workers}.log"
    result.unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", pipeline, "--workers", str(workers)]
    command += ["--data", settings.data, "--size", str(settings.size), "--batch-size", str(settings.batch_size)]
    command += ["--warmup", str(settings.warmup_batches), "--measure", str(settings.measure)]
    command += ["--seed", str(settings.seed), "--out", str(out)]
    environment = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    read_photos(settings.data)
    busy, own, start = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter()
    with log.open("w") as stream:
        try:
            code = subprocess.run(
                command, stdout=stream, stderr=subprocess.STDOUT, env=environment, timeout=CHILD_TIMEOUT_S, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    others = (_busy_cpu_seconds() - busy - (_children_cpu_seconds() - own)) / (time.perf_counter() - start)
    if code == 0 and result.is_file():
        return dict(json.loads(result.read_text())) | {"other_busy_cores": max(0.0, others) if busy else None}
    tail = log.read_text(errors="replace").strip().splitlines()[-2:]
    return {"pipeline": pipeline, "workers": workers, "error": f"exit code {code}: " + " | ".join(tail)}


def _other_busy(record: dict[str, Any]) -> float:
    return float(record.get("other_busy_cores") or 0.0)


def wait_until_quiet(limit_s: float) -> None:
    """Wait, up to ``limit_s`` seconds, until other processes keep at most ``BUSY_CORES`` busy (1-second samples)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _busy_cpu_seconds()
        time.sleep(1.0)
        if _busy_cpu_seconds() - before <= BUSY_CORES:
            return


def measure_quietly(
    pipeline: str, settings: Settings, workers: int, out: Path, *, retries: int, wait_s: float
) -> dict[str, Any]:
    """:func:`run_child` once the machine is quiet, again (up to ``retries`` times) while others disturbed it.

    The least disturbed record is kept, with ``attempts`` saying how many runs it took.
    """
    records: list[dict[str, Any]] = []
    for _ in range(1 + retries):
        wait_until_quiet(wait_s)
        records.append(run_child(pipeline, settings, workers, out))
        if "error" in records[-1] or _other_busy(records[-1]) <= BUSY_CORES:
            break
    finished = [record for record in records if "error" not in record]
    return min(finished, key=_other_busy, default=records[-1]) | {"attempts": len(records)}


def combine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One measurement's rounds as one record: median rates (each round's kept), the largest memory and disturbance.

    A round that failed counts in ``failed_rounds``; if every round failed, the last failure is the record.
    """
    finished = [record for record in records if "error" not in record]
    if not finished:
        return records[-1]
    combined = dict(finished[0]) | {"rounds": len(finished), "failed_rounds": len(records) - len(finished)}
    combined["attempts"] = sum(int(record.get("attempts", 1)) for record in records)
    for key in ("images_per_second", "first_epoch_images_per_second"):
        if key in combined:
            rates = [float(record[key]) for record in finished]
            combined |= {key: statistics.median(rates), f"{key}_rounds": rates}
    for key in ("peak_rss_bytes", "children_peak_rss_bytes", "other_busy_cores", "cache_bytes"):
        values = [record[key] for record in finished if record.get(key) is not None]
        if values:
            combined[key] = max(values)
    for key in ("seconds", "cache_build_seconds", "first_epoch_seconds"):
        if key in combined:
            combined[key] = statistics.median(float(record[key]) for record in finished)
    return combined


def _find(report: dict[str, Any], pipeline: str, workers: int) -> dict[str, Any] | None:
    found = [r for r in report["results"] if r["pipeline"] == pipeline and r["workers"] == workers]
    return found[0] if found and "error" not in found[0] else None


def _rate(report: dict[str, Any], pipeline: str, key: str, workers: int) -> float | None:
    record = _find(report, pipeline, workers)
    return None if record is None else float(record[key])


def _ratio(top: float | None, bottom: float | None) -> str:
    return "—" if top is None or bottom is None else f"{top / bottom:.2f}x"


def _memory(record: dict[str, Any] | None) -> str:
    if record is None:
        return "—"
    text = f"{record['peak_rss_bytes'] / 2**20:.0f}"
    if record["pipeline"] == "torch" and "children_peak_rss_bytes" in record:
        text += f" + {record['workers']}x{record['children_peak_rss_bytes'] / 2**20:.0f}"
    return text


def render_markdown(report: dict[str, Any]) -> str:
    """The table: images a second per workers count and pipeline, two ratios, and peak memory in MiB."""
    settings, photos = report["settings"], report["photos"]
    pipelines = [p for p in PIPELINES if any(r["pipeline"] == p for r in report["results"])]
    rates = [(pipeline, key, title) for pipeline, key, title in RATES if pipeline in pipelines]
    memory = [p for p in PIPELINES if p in pipelines]
    header = ["workers", *(title for _, _, title in rates), "tlcore / torch", "cached later / torch"]
    header += [f"peak MiB {pipeline}" for pipeline in memory]
    lines = [
        f"Training input at {settings['size']} px, random-resized crop and flip, float32 batches of "
        f"{settings['batch_size']}, from {photos['images']} JPEGs (median {photos['median_kib']:.0f} KiB), "
        f"{settings['measure']} images timed after {settings['warmup_batches']} warm-up batches; images a second "
        f"on {report['machine']['cpu_count']} cores. Torch's peak memory: main process + workers x the largest "
        "worker.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for workers in report["workers"]:
        row = [str(workers)]
        for pipeline, key, _ in rates:
            value = _rate(report, pipeline, key, workers)
            row.append("failed" if value is None else f"{value:.0f}")
        torch_rate = _rate(report, "torch", "images_per_second", workers)
        row.append(_ratio(_rate(report, "tlcore", "images_per_second", workers), torch_rate))
        row.append(_ratio(_rate(report, "cached", "images_per_second", workers), torch_rate))
        row += [_memory(_find(report, pipeline, workers)) for pipeline in memory]
        lines.append("| " + " | ".join(row) + " |")
    spreads = [
        (max(rates) / min(rates) - 1, record)
        for record in report["results"]
        for key in ("images_per_second_rounds", "first_epoch_images_per_second_rounds")
        if len(rates := record.get(key, [])) > 1
    ]
    if spreads:
        spread, widest = max(spreads, key=lambda pair: pair[0])
        lines += [
            "",
            f"Medians of {report.get('rounds', 1)} rounds; the rounds of one measurement differ by up to "
            f"{100 * spread:.0f} % ({widest['pipeline']}, {_workers(widest['workers'])}).",
        ]
    busy = [r for r in report["results"] if _other_busy(r) > BUSY_CORES]
    if busy:
        shared = ", ".join(f"{r['pipeline']} {r['workers']} ({r['other_busy_cores']:.1f})" for r in busy)
        lines += ["", f"Other processes kept cores busy during some measurements (cores): {shared}."]
    errors = [r for r in report["results"] if "error" in r]
    if errors:
        lines += ["", *(f"- {r['pipeline']}, {_workers(r['workers'])}: {r['error']}" for r in errors)]
    return "\n".join(lines) + "\n"


def _total_memory(record: dict[str, Any] | None) -> float:
    if record is None:
        return 0.0
    workers = record["workers"] * record.get("children_peak_rss_bytes", 0) if record["pipeline"] == "torch" else 0
    return float(record["peak_rss_bytes"] + workers) / 2**20


def _workers(count: int) -> str:
    return f"{count} worker" + ("" if count == 1 else "s")


def plot(report: dict[str, Any], path: Path) -> Path | None:
    """Bars of images a second and peak memory per workers count, one per pipeline; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    counts = list(report["workers"])
    figure, (rates, memory) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})

    def bars(axis: Any, series: list[tuple[str, list[float]]]) -> None:
        width = 0.8 / len(series)
        for offset, (title, values) in enumerate(series):
            positions = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(counts))]
            drawn = axis.bar(positions, values, width, label=title)
            axis.bar_label(drawn, labels=[f"{v:.0f}" if v else "" for v in values], fontsize=7)
        axis.set_xticks(range(len(counts)), [_workers(count) for count in counts])
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8)

    bars(rates, [(title, [_rate(report, p, key, n) or 0.0 for n in counts]) for p, key, title in RATES])
    rates.set(ylabel="images / s", title=f"Training input at {report['settings']['size']} px from JPEGs")
    bars(memory, [(p, [_total_memory(_find(report, p, n)) for n in counts]) for p in PIPELINES])
    memory.set(ylabel="MiB", title="Peak host memory (torch: with its worker processes)")
    figure.tight_layout()
    try:
        return write_with(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    finally:
        plt.close(figure)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-input"), help="results folder")
    parser.add_argument("--data", help="photo folder (default runs/input-photos-IMAGES; built once, then reused)")
    parser.add_argument("--images", type=int, help="photos to build (default 3000; 400 with --quick)")
    parser.add_argument("--measure", type=int, help="images timed per measurement (default 2048; 256 with --quick)")
    parser.add_argument("--warmup", type=int, default=4, help="warm-up batches left out (default 4)")
    parser.add_argument("--workers", help="comma-separated workers counts (default 1, 2 and every core)")
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help=f"some of {','.join(PIPELINES)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 400 photos, 256 images timed")
    parser.add_argument("--size", type=int, default=224, help="output side in pixels (default 224)")
    parser.add_argument("--photo-scale", type=float, default=1.0, help="photo sizes times this (tests use tiny ones)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, help="rounds of every measurement, medians reported (default 3; 1 quick)")
    parser.add_argument("--retries", type=int, help="reruns of a measurement others disturbed (default 2; 0 quick)")
    parser.add_argument("--quiet-wait", type=float, help="seconds to wait for a quiet machine (default 60; 0 quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=PIPELINES, help=argparse.SUPPRESS)  # one measurement, in this process
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Build the photos, run every measurement in a child process, write and print the report."""
    args = _arguments(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.retries is None:
        args.retries = 0 if args.quick else 2
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if args.quick else 60.0
    pipelines = [p for p in args.pipelines.split(",") if p]
    if unknown := sorted(set(pipelines) - set(PIPELINES)):
        raise SystemExit(f"input_pipeline.py: unknown pipeline(s) {', '.join(unknown)}; choose from {PIPELINES}.")
    images = args.images or (400 if args.quick else 3000)
    data = Path(args.data or f"runs/input-photos-{images}")
    measured = args.measure or (256 if args.quick else 2048)
    settings = Settings(str(data), args.size, args.batch_size, args.warmup, measured, args.seed)
    cores = os.cpu_count() or 1
    counts = [int(n) for n in args.workers.split(",")] if args.workers else sorted({1, 2, cores})
    if args.worker:
        record = measure(args.worker, settings, counts[0], args.out / "cache" / f"w{counts[0]}")
        write_json(args.out / "results" / f"{args.worker}-w{counts[0]}.json", record)
        return None
    start = time.perf_counter()
    scale = args.photo_scale
    photos = make_photos(
        data,
        images,
        seed=args.seed,
        widths=(round(WIDTHS[0] * scale), round(WIDTHS[1] * scale)),
        heights=(round(HEIGHTS[0] * scale), round(HEIGHTS[1] * scale)),
        processes=cores if images >= 100 else 1,
    )
    machine = {"cpu_count": cores, "processor": platform.processor() or platform.machine(), "python": sys.version}
    report: dict[str, Any] = {"settings": asdict(settings), "photos": photos, "machine": machine, "workers": counts}
    report["rounds"] = args.rounds
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for number in range(1, args.rounds + 1):
        for workers in counts:
            for pipeline in pipelines:
                record = measure_quietly(
                    pipeline, settings, workers, args.out, retries=args.retries, wait_s=args.quiet_wait
                )
                rounds.setdefault((pipeline, workers), []).append(record)
                report["results"] = [combine(records) for records in rounds.values()]
                rate = f"{record['images_per_second']:.0f} images/s" if "error" not in record else record["error"]
                print(f"round {number}/{args.rounds}: {pipeline}, {_workers(workers)}: {rate}", flush=True)
                report["seconds"] = time.perf_counter() - start
                write_json(args.out / "input.json", report)
                write_with(args.out / "input.md", lambda t: t.write_text(render_markdown(report), encoding="utf-8"))
    plot(report, args.out / "input.png")
    print(f"\n{render_markdown(report)}\n{report['seconds']:.0f} s; figures in {args.out}")
    return report


if __name__ == "__main__":
    main()
