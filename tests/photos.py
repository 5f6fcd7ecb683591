"""Small photo-like JPEG folders for tests: smooth shapes and noise, in mixed sizes and orientations."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_photo(path: Path, height: int, width: int, seed: int) -> None:
    """A ``height`` x ``width`` RGB JPEG whose content depends on ``seed``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([np.sin(x / (3 + c) + seed) * np.cos(y / 5) * 100 + 128 for c in range(3)], axis=-1)
    pixels += rng.normal(0, 10, pixels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def photo_folder(root: Path, count: int = 12, classes: tuple[str, ...] = ("cat", "dog")) -> Path:
    """``count`` JPEGs of mixed sizes in ``root/<class>/``, the classes taking turns; returns ``root``."""
    for i in range(count):
        height, width = (30 + 3 * i, 44 - i % 20) if i % 3 else (50, 24)
        write_photo(root / classes[i % len(classes)] / f"{i:02d}.jpg", height, width, seed=i)
    return root
