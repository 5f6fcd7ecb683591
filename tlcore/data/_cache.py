"""A preprocessed image cache: every photo decoded and resized once, stored as uint8, read back without decoding.

The idea behind FFCV's dataset files: the costly part of reading a photo is
decoding the JPEG, and a photo much larger than the working size is mostly
thrown away by the first resize. So :func:`cache_images` decodes each file
once, resizes it so that its shorter side is the pipeline's
:attr:`~tlcore.data.ImagePipeline.resize_side` (the evaluation resize; smaller
photos are kept as they are), and appends its pixels to one file. Later epochs
and later runs read the pixels back with ``os.pread`` and only crop, resize and
augment.

The cache lives in ``<directory>/<key>/`` where the key is a sha256 of the
format version, the stored side, the resize filter and the sha256 of every
file's contents, in order: a changed, added or removed file gives a new key,
so a stale cache is never read. File digests are remembered per (path, size,
modification time) in ``digests.json``, so a later run hashes only the files
that changed. A cache is written into a temporary folder and renamed into
place when complete; a file that cannot be decoded stops the build with its
name, and the partial cache is deleted.

The pixels are read with ``pread`` rather than memory-mapped: pages of a
mapping count in the process's resident memory as they are touched, while the
page cache behind ``pread`` does not, so a cache larger than memory keeps the
process's memory bounded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tlcore._errors import DataError
from tlcore._io import cache_dir, write_json
from tlcore.data._batches import default_workers, parallel_map
from tlcore.data._dataset import Dataset
from tlcore.data._images import ImageFiles, LazyImages, decoded, open_image_file, pillow
from tlcore.data._transforms import REDUCING_GAP, ImagePipeline
from tlcore.weights import file_sha256

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["CachedImages", "cache_images", "estimated_cache_bytes"]

FORMAT_VERSION = 1
_INDEX_COLUMNS = 4  # offset, height, width, channels
# Free disk space left over after a cache is written.
DISK_MARGIN_BYTES = 1 << 30


class _Store:
    """One cache folder: the pixels file and its index, opened once and shared by every selection."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index = np.load(folder / "index.npy")
        self.pixels = folder / "pixels.bin"
        self._fd: int | None = None
        self._lock = threading.Lock()

    def descriptor(self) -> int:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.pixels, os.O_RDONLY)
            return self._fd

    def read(self, position: int) -> np.ndarray:
        offset, height, width, channels = (int(v) for v in self.index[position])
        count = height * width * channels
        data = os.pread(self.descriptor(), count, offset)
        if len(data) != count:
            raise DataError(f"the image cache {self.folder} is truncated; delete the folder and run again.")
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


class CachedImages(LazyImages):
    """Images read from a preprocessed cache (:func:`cache_images`): uint8, no decoding."""

    def __init__(self, store: _Store, files: tuple[str, ...], channels: int, positions: np.ndarray) -> None:
        self.store = store
        self.files = files
        self.channels = channels
        super().__init__(positions)

    def _select(self, positions: np.ndarray) -> CachedImages:
        return CachedImages(self.store, self.files, self.channels, positions)

    def open(self, index: int) -> Image.Image:
        """Image ``index``'s stored pixels, as a Pillow image sharing their memory."""
        pixels = self.store.read(int(self.positions[index]))
        mode = "L" if pixels.shape[2] == 1 else "RGB"
        image: Image.Image = pillow().fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
        return image

    def describe(self, index: int) -> str:
        """The original file of image ``index``."""
        return self.files[int(self.positions[index])]

    def __repr__(self) -> str:
        """A one-line summary."""
        return f"CachedImages(n={len(self)}, folder={str(self.store.folder)!r})"


def _sha256_file(path: str) -> str:
    try:
        return file_sha256(path)
    except OSError as error:
        raise DataError(f"cannot read {path} ({error}).") from None


class _Digests:
    """File digests remembered by (path, size, modification time), in ``digests.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known: dict[str, list[Any]] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def of(self, file: str) -> str:
        try:
            status = os.stat(file)
        except OSError as error:
            raise DataError(f"cannot read {file} ({error}); the folder changed after it was listed.") from None
        stamp = [status.st_size, status.st_mtime_ns]
        entry = self.known.get(file)
        if entry is not None and entry[:2] == stamp:
            return str(entry[2])
        digest = _sha256_file(file)
        self.known[file] = [*stamp, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.changed:
            write_json(self.path, self.known)


def _stored(file: str, side: int, channels: int, resample: Any) -> np.ndarray:
    """``file`` decoded and resized so that its shorter side is ``side`` (never enlarged), as uint8 HWC."""
    image = open_image_file(file)
    try:
        width, height = image.size
        scale = side / min(width, height)
        target = (max(round(width * scale), 1), max(round(height * scale), 1)) if scale < 1 else (width, height)
        if scale < 0.5 and image.format == "JPEG":
            image.draft(image.mode, target)
        pixels = decoded(image, file, channels)
        if pixels.size != target:
            pixels = pixels.resize(target, resample, reducing_gap=REDUCING_GAP)
        array = np.asarray(pixels)
    finally:
        image.close()
    return array[..., np.newaxis] if array.ndim == 2 else array


def estimated_cache_bytes(images: ImageFiles, side: int) -> int:
    """A cache's size, guessed from the first image's aspect ratio (4:3 when it cannot be read)."""
    try:
        with open_image_file(images.path(0)) as first:
            width, height = first.size
        aspect = max(width, height) / min(width, height)
    except DataError:
        aspect = 4 / 3
    return int(len(images) * side * side * aspect * images.channels)


def _key(files: list[str], digests: _Digests, side: int, pipeline: ImagePipeline, channels: int) -> str:
    description = {
        "version": FORMAT_VERSION,
        "side": side,
        "resize": pipeline.input.resize,
        "channels": channels,
        "contents": [digests.of(f) for f in files],
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]


def _build(folder: Path, files: list[str], side: int, channels: int, resample: Any, workers: int) -> None:
    """Write the cache of ``files`` into a temporary folder beside ``folder``, then rename it into place."""
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        index = np.zeros((len(files), _INDEX_COLUMNS), dtype=np.int64)
        offset = 0
        with open(building / "pixels.bin", "wb") as pixels:
            stored = parallel_map(lambda f: _stored(f, side, channels, resample), files, workers, 4 * max(workers, 1))
            for position, array in enumerate(stored):
                pixels.write(array.tobytes())
                index[position] = (offset, *array.shape)
                offset += array.size
        np.save(building / "index.npy", index)
        manifest = {"version": FORMAT_VERSION, "side": side, "images": len(files), "first": files[0], "bytes": offset}
        (building / "manifest.json").write_text(json.dumps(manifest, indent=2))
        try:
            building.rename(folder)
        except OSError:
            if not (folder / "index.npy").is_file():  # not another run finishing the same cache first
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _complete(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return bool((folder / "pixels.bin").stat().st_size == manifest["bytes"])
    except (OSError, ValueError, KeyError):
        return False


def cache_images(
    dataset: Dataset,
    pipeline: ImagePipeline,
    *,
    directory: str | Path | None = None,
    workers: int | None = None,
    if_room: bool = False,
) -> Dataset:
    """``dataset`` read from a preprocessed cache, built on first use; unchanged if its images are not files.

    The cache holds every image with its shorter side resized to
    ``pipeline.resize_side`` (see the module's docstring). ``directory``
    defaults to ``$TLCORE_CACHE/images``; ``workers`` threads (default: the
    machine's cores) decode while building. Raises :class:`~tlcore.DataError`
    naming any file that cannot be decoded, or when the disk lacks the room;
    with ``if_room``, a disk without the room gives a warning and ``dataset``
    unchanged instead.
    """
    images = dataset.images
    if not isinstance(images, ImageFiles):
        return dataset
    root = Path(directory).expanduser() if directory is not None else cache_dir("images")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the image cache folder {root} ({error}).") from None
    side = pipeline.resize_side
    files = images.selected_paths()
    digests = _Digests(root / "digests.json")
    folder = root / _key(files, digests, side, pipeline, images.channels)
    digests.save()
    if not _complete(folder):
        shutil.rmtree(folder, ignore_errors=True)
        needed = estimated_cache_bytes(images, side)
        free = shutil.disk_usage(root).free
        if needed + DISK_MARGIN_BYTES > free:
            problem = (
                f"the image cache of {dataset.name!r} needs about {needed / 2**30:.1f} GiB in {root}, which has "
                f"{free / 2**30:.1f} GiB free"
            )
            if if_room:
                warnings.warn(f"{problem}; going on without it.", RuntimeWarning, stacklevel=2)
                return dataset
            raise DataError(f"{problem}. Set TLCORE_CACHE to a larger disk, or data.cache = false.")
        count = default_workers() if workers is None else workers
        _build(folder, files, side, images.channels, pipeline.resample, count)
    cached = CachedImages(_Store(folder), tuple(files), images.channels, np.arange(len(files)))
    return replace(dataset, images=cached)
