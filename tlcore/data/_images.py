"""Images that stay on disk until a batch needs them: files listed once, decoded on demand.

A :class:`LazyImages` is what a :class:`~tlcore.data.Dataset` holds instead of
an array when its images live in files. It knows how many images there are and
opens image ``i`` as a Pillow image; selecting a subset selects indices and
reads nothing. Two kinds exist: :class:`ImageFiles` (photos, decoded each time
they are read) and the preprocessed cache's images (``tlcore.data.cache_images``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tlcore._errors import DataError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["ImageFiles", "LazyImages", "open_image_file", "pillow"]

INSTALL_HINT = "pip install pillow"


def pillow() -> Any:
    """Pillow's ``PIL.Image`` module, with an install hint when it is missing."""
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - Pillow is a core dependency
        raise DataError(f"tlcore's image pipeline needs Pillow ({error}). Install it with: {INSTALL_HINT}") from None
    return Image


def open_image_file(path: str | Path) -> Image.Image:
    """Open ``path`` lazily (header only; pixels are decoded on first use), naming the file on failure."""
    image_module = pillow()
    try:
        image: Image.Image = image_module.open(path)
    except (OSError, ValueError, image_module.DecompressionBombError) as error:
        raise DataError(f"cannot read {path} as an image ({error}). Remove or replace the file.") from None
    return image


def decoded(image: Image.Image, path: str | Path, channels: int) -> Image.Image:
    """``image`` decoded and converted to ``L`` (1 channel) or ``RGB`` (3), naming the file if it is corrupt."""
    image_module = pillow()
    try:
        image.load()
        mode = "L" if channels == 1 else "RGB"
        return image if image.mode == mode else image.convert(mode)
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as error:
        raise DataError(f"cannot decode {path} ({error}): the file is damaged. Remove or replace it.") from None


class LazyImages:
    """A sequence of images read one at a time; subclasses say how image ``i`` is opened.

    ``channels`` is 1 (gray) or 3 (RGB): every image is converted to it.
    ``positions`` are the indices into the underlying store that this selection
    holds, so ``images[index]`` is cheap and reads nothing.
    """

    channels: int = 3

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = positions

    def __len__(self) -> int:
        """How many images this selection holds."""
        return int(self.positions.shape[0])

    def __getitem__(self, index: Any) -> LazyImages:
        """The images at ``index`` (integers, a boolean mask or a slice), still unread."""
        try:
            return self._select(self.positions[index])
        except IndexError as error:
            raise DataError(
                f"{type(self).__name__}: cannot select {index!r} from {len(self)} images ({error})."
            ) from None

    def _select(self, positions: np.ndarray) -> LazyImages:
        raise NotImplementedError

    def open(self, index: int) -> Image.Image:
        """Image ``index`` as a Pillow image; it may still be undecoded (call :meth:`load` for the pixels)."""
        raise NotImplementedError

    def load(self, image: Image.Image, index: int) -> Image.Image:
        """The pixels of an image from :meth:`open`, decoded, in ``L`` or ``RGB``."""
        return image

    def describe(self, index: int) -> str:
        """Where image ``index`` comes from, for messages."""
        return f"image {index}"

    @property
    def shape(self) -> tuple[int, ...] | None:
        """``(N, H, W, C)`` when every image is known to share one size, else ``None``."""
        return None


class ImageFiles(LazyImages):
    """Image files (JPEG, PNG, ...) decoded each time they are read, converted to ``channels``.

    ``paths`` are kept as strings; nothing is opened until :meth:`open`.
    """

    def __init__(self, paths: Sequence[str | Path], channels: int = 3, positions: np.ndarray | None = None) -> None:
        if channels not in (1, 3):
            raise DataError(f"ImageFiles: channels must be 1 or 3; got {channels!r}.")
        self.paths: tuple[str, ...] = tuple(str(p) for p in paths)
        self.channels = channels
        super().__init__(np.arange(len(self.paths)) if positions is None else positions)

    def _select(self, positions: np.ndarray) -> ImageFiles:
        return ImageFiles(self.paths, self.channels, positions)

    def path(self, index: int) -> str:
        """The file of image ``index``."""
        return self.paths[int(self.positions[index])]

    def selected_paths(self) -> list[str]:
        """The files of this selection, in order."""
        return [self.paths[int(p)] for p in self.positions]

    def open(self, index: int) -> Image.Image:
        """Image ``index``'s file, opened lazily: size and format known, pixels not yet decoded."""
        return open_image_file(self.path(index))

    def load(self, image: Image.Image, index: int) -> Image.Image:
        """Decode the file (at the reduced scale a JPEG ``draft`` asked for), in ``L`` or ``RGB``."""
        return decoded(image, self.path(index), self.channels)

    def describe(self, index: int) -> str:
        """The file's path."""
        return self.path(index)

    def __repr__(self) -> str:
        """A one-line summary."""
        return f"ImageFiles(n={len(self)}, channels={self.channels})"
