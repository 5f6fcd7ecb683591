"""Image preparation, one image at a time, on Pillow's C kernels; identical for every backend.

Each image goes through the same steps (:class:`ImagePipeline`):

1. geometry, in one resampling pass (Pillow's ``resize`` with a ``box``):
   for training with a :class:`RandomResizedCrop`, a random box of the image
   (torchvision's rule) resized to the working size; otherwise the evaluation
   transform of torchvision and timm, the shorter side resized to
   ``size / crop_pct`` and the centre cropped, so photos of any size and
   aspect work from the working size alone. A JPEG whose box is at least twice
   the output is decoded at a reduced scale (Pillow's ``draft``).
2. augmentation on uint8: rotation (Pillow, bilinear, zero fill), flip,
   ``crop_padding`` and ``shift`` (whole pixels, zero fill);
3. channels (gray repeated to RGB, or RGB to luma), reordering to BGR if the
   backbone wants it, and normalisation to float32, in one multiply-add.

Every random choice for an image is drawn from that image's own generator, in
a fixed order (crop box, rotation, flip, crop, shift), so an image comes out
the same whichever thread prepares it. Float images (in [0, 1]) follow the
same path on Pillow's 32-bit float planes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tlcore._errors import ConfigError, DataError
from tlcore._specs import ImageInputSpec
from tlcore.data._images import LazyImages, pillow

__all__ = ["Augmentation", "ImagePipeline", "RandomResizedCrop", "normalize"]

# ITU-R 601-2 luma, as Pillow's convert("L").
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Pillow's resize first shrinks by an integer factor with a box filter while the
# rest of the reduction stays above this gap: fast, and indistinguishable from
# a full-support filter at 3 (Pillow's documentation).
REDUCING_GAP = 3.0
_FILTERS = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "nearest": "NEAREST", "lanczos": "LANCZOS", "box": "BOX"}
# Sizes this far from whole pixels are whole pixels.
_EPS = 1e-6


def _check_size(size: Sequence[int], what: str) -> tuple[int, int]:
    if (
        len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in size)
        or min(size) < 1
    ):
        raise ConfigError(f"{what}: size must be two positive integers (height, width); got {size!r}.")
    return int(size[0]), int(size[1])


def _check_non_negative(value: float, name: str, what: str, *, integer: bool) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= 0:
        kind = "integer" if integer else "number"
        raise ConfigError(f"{what}: {name} must be a non-negative {kind}; got {value!r}.")


def _check_range(value: Sequence[float], name: str, low: float, high: float) -> tuple[float, float]:
    if (
        len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
        or not low < value[0] <= value[1] <= high
    ):
        raise ConfigError(
            f"RandomResizedCrop: {name} must be two numbers (min, max) with {low} < min <= max <= {high}; "
            f"got {value!r}."
        )
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class RandomResizedCrop:
    """A random box of each image, resized to the working size (torchvision's ``RandomResizedCrop`` rule).

    Up to ten tries draw an area fraction uniformly from ``scale`` and an
    aspect ratio (width / height) log-uniformly from ``ratio``; the first box
    that fits is placed uniformly at random. If none fits, the centre box of
    the image with its aspect ratio clamped to ``ratio`` is used.
    """

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _check_range(self.scale, "scale", 0.0, 1.0))
        object.__setattr__(self, "ratio", _check_range(self.ratio, "ratio", 0.0, math.inf))

    def box(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """``(top, left, box_height, box_width)`` of the crop in an image of that size."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            box_width = round(math.sqrt(target * aspect))
            box_height = round(math.sqrt(target / aspect))
            if 0 < box_width <= width and 0 < box_height <= height:
                top = int(rng.integers(0, height - box_height + 1))
                left = int(rng.integers(0, width - box_width + 1))
                return top, left, box_height, box_width
        aspect = width / height
        if aspect < self.ratio[0]:
            box_width, box_height = width, round(width / self.ratio[0])
        elif aspect > self.ratio[1]:
            box_height, box_width = height, round(height * self.ratio[1])
        else:
            box_height, box_width = height, width
        return (height - box_height) // 2, (width - box_width) // 2, box_height, box_width


@dataclass(frozen=True)
class Augmentation:
    """Random training-time changes.

    ``random_resized_crop`` replaces the evaluation crop by a random box
    (:class:`RandomResizedCrop`); ``rotation`` turns by up to that many degrees
    (counter-clockwise positive, bilinear, zero fill); ``flip`` mirrors half the
    images left-right; ``crop_padding`` pads by that many pixels and crops back
    at a random place; ``shift`` translates by up to that many pixels on each
    axis. They are applied in that order, at the working size.
    """

    flip: bool = False
    shift: int = 0
    crop_padding: int = 0
    rotation: float = 0.0
    random_resized_crop: RandomResizedCrop | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.flip, (bool, np.bool_)):
            raise ConfigError(f"Augmentation: flip must be true or false; got {self.flip!r}.")
        _check_non_negative(self.shift, "shift", "Augmentation", integer=True)
        _check_non_negative(self.crop_padding, "crop_padding", "Augmentation", integer=True)
        _check_non_negative(self.rotation, "rotation", "Augmentation", integer=False)
        if self.random_resized_crop is not None and not isinstance(self.random_resized_crop, RandomResizedCrop):
            raise ConfigError(
                "Augmentation: random_resized_crop must be a RandomResizedCrop or None; "
                f"got {self.random_resized_crop!r}."
            )

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(self.flip or self.shift or self.crop_padding or self.rotation or self.random_resized_crop)


def _translated(image: np.ndarray, down: int, right: int) -> np.ndarray:
    """``image`` (HWC) moved down by ``down`` and right by ``right`` whole pixels, zero fill."""
    height, width = image.shape[:2]
    result = np.zeros_like(image)
    if abs(down) < height and abs(right) < width:
        result[max(down, 0) : height + min(down, 0), max(right, 0) : width + min(right, 0)] = image[
            max(-down, 0) : height - max(down, 0), max(-right, 0) : width - max(right, 0)
        ]
    return result


def _gain_offset(
    input_channels: int, spec: ImageInputSpec, pixel_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per output channel ``gain`` and ``offset`` (``x * gain + offset`` is the normalised pixel), and luma weights."""
    low, high = float(spec.value_range[0]), float(spec.value_range[1])
    mean = np.asarray(spec.mean, dtype=np.float64)
    std = np.asarray(spec.std, dtype=np.float64)
    gain = (high - low) * pixel_scale / std
    offset = (low - mean) / std
    luma = _LUMA if input_channels == 3 and spec.channels == 1 else None
    return gain.astype(np.float32), offset.astype(np.float32), luma


def _normalized(batch: np.ndarray, spec: ImageInputSpec) -> np.ndarray:
    """An NHWC batch (uint8 in 0..255 or float in [0, 1]) as the backbone's float32 input."""
    have = batch.shape[3]
    if have not in (1, 3) or spec.channels not in (1, 3):
        raise DataError(f"images have {have} channel(s); tlcore converts between 1 (gray) and 3 (RGB) only.")
    gain, offset, luma = _gain_offset(have, spec, 1.0 / 255.0 if batch.dtype == np.uint8 else 1.0)
    source: np.ndarray = batch
    if luma is not None:
        source = np.einsum("nhwc,c->nhw", batch.astype(np.float32), luma)[..., np.newaxis]
    elif have == 1 and spec.channels == 3:
        source = np.repeat(batch, 3, axis=3)
    elif have == 3 and spec.channel_order == "BGR":
        source = batch[..., ::-1]
    count, height, width = batch.shape[:3]
    result = np.empty((count, height, width, spec.channels), dtype=np.float32)
    # Rows of width * channels values: with a per-channel (C,) operand numpy's inner loop would be C values long.
    rows = result.reshape(count * height, width * spec.channels)
    np.copyto(rows, source.reshape(count * height, width * spec.channels))
    rows *= np.tile(gain, width)
    rows += np.tile(offset, width)
    return result


def normalize(
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Map pixels (uint8 in 0..255 or float in [0, 1]) to ``value_range``, then ``(x - mean) / std`` per channel."""
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise DataError(f"normalize: images must be a numpy array of shape (N, H, W, C); got {type(images).__name__}.")
    channels = images.shape[3]
    if len(mean) != channels or len(std) != channels:
        raise DataError(
            f"normalize: mean {tuple(mean)} and std {tuple(std)} need one value per channel; "
            f"the images have {channels} channel(s)."
        )
    if any(s <= 0 for s in std):
        raise ConfigError(f"normalize: std must be positive; got {tuple(std)}.")
    spec = ImageInputSpec(
        channels=channels, mean=tuple(mean), std=tuple(std), value_range=(float(value_range[0]), float(value_range[1]))
    )
    return _normalized(images, spec)


class _Picture:
    """One image as Pillow planes: a single ``L``/``RGB`` image (uint8) or one ``F`` image per channel (float)."""

    def __init__(self, planes: list[Any]) -> None:
        self.planes = planes

    @classmethod
    def of_array(cls, array: np.ndarray) -> _Picture:
        image_module = pillow()
        if array.dtype == np.uint8:
            mode = "L" if array.shape[2] == 1 else "RGB"
            return cls([image_module.fromarray(array[..., 0] if mode == "L" else array, mode)])
        planes = np.ascontiguousarray(array, dtype=np.float32)
        return cls([image_module.fromarray(np.ascontiguousarray(planes[..., c]), "F") for c in range(array.shape[2])])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``, as Pillow gives it."""
        width, height = self.planes[0].size
        return int(width), int(height)

    def resized(self, size: tuple[int, int], box: tuple[float, float, float, float], resample: Any) -> _Picture:
        width, height = size
        whole = all(abs(v - round(v)) < _EPS for v in box)
        if whole and abs(box[2] - box[0] - width) < _EPS and abs(box[3] - box[1] - height) < _EPS:
            crop = tuple(round(v) for v in box)
            if crop == (0, 0, *self.size):
                return self
            return _Picture([p.crop(crop) for p in self.planes])
        return _Picture([p.resize(size, resample, box=box, reducing_gap=REDUCING_GAP) for p in self.planes])

    def rotated(self, degrees: float, resample: Any) -> _Picture:
        return _Picture([p.rotate(degrees, resample=resample, fillcolor=0) for p in self.planes])

    def mirrored(self) -> _Picture:
        return _Picture([p.transpose(pillow().Transpose.FLIP_LEFT_RIGHT) for p in self.planes])

    def array(self) -> np.ndarray:
        if len(self.planes) == 1 and self.planes[0].mode != "F":
            pixels = np.asarray(self.planes[0])
            return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels
        return np.stack([np.asarray(p, dtype=np.float32) for p in self.planes], axis=-1)


@dataclass(frozen=True)
class ImagePipeline:
    """Turns stored images into what a backbone expects: float32 NHWC at ``size``, normalised.

    ``crop_pct`` (default: the backbone's ``input.crop_pct``) is the fraction
    of the resized image that the evaluation centre crop keeps. Images may be
    an array (uint8 in 0..255 or float in [0, 1]) or :class:`LazyImages` of any
    sizes. See the module's docstring for the steps.
    """

    input: ImageInputSpec
    size: tuple[int, int]
    augmentation: Augmentation = Augmentation()
    crop_pct: float | None = None

    def __post_init__(self) -> None:
        size = _check_size(self.size, "ImagePipeline")
        if min(size) < self.input.min_size:
            raise ConfigError(
                f"ImagePipeline: size {size} is below the backbone's smallest input side "
                f"({self.input.min_size} pixels); use a size of at least {self.input.min_size}."
            )
        object.__setattr__(self, "size", size)
        crop = self.input.crop_pct if self.crop_pct is None else self.crop_pct
        if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0.0 < crop <= 1.0:
            raise ConfigError(f"ImagePipeline: crop_pct must be a number in (0, 1]; got {crop!r}.")
        object.__setattr__(self, "crop_pct", float(crop))
        if self.input.resize not in _FILTERS:
            raise ConfigError(
                f"ImagePipeline: the backbone's resize filter {self.input.resize!r} is not one of {sorted(_FILTERS)}."
            )

    @property
    def resize_side(self) -> int:
        """The longer working side divided by ``crop_pct``: what the evaluation resize brings the shorter side to."""
        return math.ceil(max(self.size) / float(self.crop_pct or 1.0) - _EPS)

    @property
    def resample(self) -> Any:
        """Pillow's filter for the backbone's ``input.resize`` (bilinear by default)."""
        return getattr(pillow().Resampling, _FILTERS[self.input.resize])

    def _box(self, width: int, height: int, rng: np.random.Generator | None) -> tuple[float, float, float, float]:
        """The source box ``(left, top, right, bottom)`` that the output is resampled from."""
        crop = self.augmentation.random_resized_crop
        if rng is not None and crop is not None:
            top_row, left_column, rows, columns = crop.box(height, width, rng)
            return float(left_column), float(top_row), float(left_column + columns), float(top_row + rows)
        out_height, out_width = self.size
        keep = float(self.crop_pct or 1.0)
        factor = max(out_height / (height * keep), out_width / (width * keep))
        box_height, box_width = min(out_height / factor, height), min(out_width / factor, width)
        top, left = (height - box_height) / 2.0, (width - box_width) / 2.0
        return left, top, left + box_width, top + box_height

    def _open(
        self, images: np.ndarray | LazyImages, index: int, rng: np.random.Generator | None
    ) -> tuple[_Picture, Any]:
        """Image ``index`` decoded (a JPEG at the coarsest scale that still covers its box) and its box."""
        if isinstance(images, np.ndarray):
            picture = _Picture.of_array(images[index])
            return picture, self._box(*picture.size, rng)
        image = images.open(index)
        width, height = image.size
        box = self._box(width, height, rng)
        reduction = min((box[2] - box[0]) / self.size[1], (box[3] - box[1]) / self.size[0])
        if reduction >= 2.0 and image.format == "JPEG":
            image.draft(image.mode, (math.ceil(width / reduction), math.ceil(height / reduction)))
            scale_x, scale_y = image.size[0] / width, image.size[1] / height
            box = (box[0] * scale_x, box[1] * scale_y, box[2] * scale_x, box[3] * scale_y)
        try:
            loaded = images.load(image, index)
        except BaseException:
            image.close()
            raise
        if loaded is not image:
            image.close()
        return _Picture([loaded]), box

    def prepare_one(self, images: np.ndarray | LazyImages, index: int, rng: np.random.Generator | None) -> np.ndarray:
        """Image ``index`` at ``size``, augmented when ``rng`` is given, not yet normalised (uint8 or float32 HWC)."""
        augment = self.augmentation if rng is not None else Augmentation()
        picture, box = self._open(images, index, rng)
        height, width = self.size
        picture = picture.resized((width, height), box, self.resample)
        if augment.rotation:
            degrees = float(rng.uniform(-augment.rotation, augment.rotation))  # type: ignore[union-attr]
            picture = picture.rotated(degrees, pillow().Resampling.BILINEAR)
        if augment.flip and rng.random() < 0.5:  # type: ignore[union-attr]
            picture = picture.mirrored()
        pixels = picture.array()
        if augment.crop_padding:
            corner = rng.integers(0, 2 * augment.crop_padding + 1, size=2)  # type: ignore[union-attr]
            pixels = _translated(pixels, augment.crop_padding - int(corner[0]), augment.crop_padding - int(corner[1]))
        if augment.shift:
            offset = rng.integers(-augment.shift, augment.shift + 1, size=2)  # type: ignore[union-attr]
            pixels = _translated(pixels, int(offset[0]), int(offset[1]))
        return pixels

    def prepare_selection(
        self, images: np.ndarray | LazyImages, index: Sequence[int] | np.ndarray, seeds: np.ndarray | None
    ) -> np.ndarray:
        """Images ``index`` prepared as one float32 batch; image ``k`` is augmented from generator ``seeds[k]``.

        Without ``seeds`` (or when no augmentation is enabled) nothing random is applied.
        """
        positions = [int(i) for i in index]
        channels = images.shape[3] if isinstance(images, np.ndarray) else images.channels
        dtype = np.uint8 if not isinstance(images, np.ndarray) or images.dtype == np.uint8 else np.float32
        batch = np.empty((len(positions), *self.size, channels), dtype=dtype)
        augment = seeds is not None and self.augmentation.enabled
        for k, position in enumerate(positions):
            rng = np.random.default_rng(int(seeds[k])) if augment and seeds is not None else None
            try:
                batch[k] = self.prepare_one(images, position, rng)
            except DataError:
                raise
            except (OSError, ValueError) as error:
                where = images.describe(position) if isinstance(images, LazyImages) else f"image {position}"
                raise DataError(f"cannot prepare {where}: {error}") from None
        return _normalized(batch, self.input)

    def prepare(self, images: np.ndarray | LazyImages, rng: np.random.Generator | None = None) -> np.ndarray:
        """Prepare a whole batch of images; augment only when ``rng`` is given (one seed per image is drawn from it)."""
        if isinstance(images, np.ndarray) and (images.ndim != 4 or images.shape[3] not in (1, 3)):
            raise DataError(
                f"ImagePipeline.prepare: images must be a numpy array of shape (N, H, W, C) with C in 1 or 3; "
                f"got shape {images.shape}."
            )
        if not isinstance(images, (np.ndarray, LazyImages)):
            raise DataError(
                f"ImagePipeline.prepare: images must be a numpy array or LazyImages; got {type(images).__name__}."
            )
        seeds = image_seeds(rng, len(images)) if rng is not None and self.augmentation.enabled else None
        return self.prepare_selection(images, np.arange(len(images)), seeds)


def image_seeds(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` seeds for per-image generators, drawn from ``rng``."""
    return rng.integers(0, np.iinfo(np.int64).max, size=count, dtype=np.int64)
