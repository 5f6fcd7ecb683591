"""Deterministic image operations on NHWC numpy batches, identical for every backend.

Resizing is bilinear with antialiasing, as Pillow's ``BILINEAR`` and torch's
``interpolate(mode="bilinear", antialias=True, align_corners=False)`` do it:
half-pixel centres and a triangle filter whose support widens with the
downscale factor. It is written as two interpolation matrices, one per axis.
Augmentations take an explicit ``np.random.Generator`` and draw from it in a
fixed order, so the same generator state gives the same images.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlcore._errors import ConfigError, DataError
from tlcore._specs import ImageInputSpec

__all__ = [
    "Augmentation",
    "ImagePipeline",
    "interpolation_matrix",
    "normalize",
    "random_crop",
    "random_flip",
    "random_rotation",
    "random_shift",
    "resize",
    "to_channels",
    "to_float",
]

# ITU-R 601-2 luma, as Pillow's convert("L").
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _check_batch(images: np.ndarray, what: str) -> None:
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        shape = getattr(images, "shape", None)
        raise DataError(f"{what}: images must be a numpy array of shape (N, H, W, C); got shape {shape}.")


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


@functools.lru_cache(maxsize=64)
def _interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    sources = np.arange(in_size, dtype=np.float64) + 0.5
    weights = np.clip(1.0 - np.abs(sources[np.newaxis, :] - centres[:, np.newaxis]) / filter_scale, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    matrix = weights.astype(np.float32)
    matrix.flags.writeable = False
    return matrix


def interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The ``(out_size, in_size)`` float32 matrix that resizes one axis (rows sum to 1).

    Output pixel ``i`` is centred at ``(i + 0.5) * in_size / out_size`` in input
    coordinates and takes a triangle-weighted mean of the input pixels within
    ``max(in_size / out_size, 1)`` of it; pixels beyond the border are left out
    and the weights renormalised.
    """
    if min(in_size, out_size) < 1:
        raise ConfigError(f"interpolation_matrix: sizes must be positive; got {in_size} -> {out_size}.")
    return _interpolation_matrix(int(in_size), int(out_size))


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an NHWC batch to ``size`` = (height, width); returns float32 in the input's value scale."""
    _check_batch(images, "resize")
    height, width = _check_size(size, "resize")
    result = images.astype(np.float32, copy=False)
    in_height, in_width = images.shape[1], images.shape[2]
    if (in_height, in_width) == (height, width):
        return result
    if in_height != height:
        rows = interpolation_matrix(in_height, height)
        result = np.einsum("oh,nhwc->nowc", rows, result, optimize=True)
    if in_width != width:
        columns = interpolation_matrix(in_width, width)
        result = np.einsum("pw,nowc->nopc", columns, result, optimize=True)
    return np.ascontiguousarray(result, dtype=np.float32)


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Give an NHWC batch ``channels`` channels: gray to RGB repeats, RGB to gray takes luma (0.299, 0.587, 0.114)."""
    _check_batch(images, "to_channels")
    have = images.shape[3]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=3)
    if have == 3 and channels == 1:
        gray: np.ndarray = np.einsum("nhwc,c->nhw", images.astype(np.float32, copy=False), _LUMA)
        return gray[..., np.newaxis]
    raise DataError(f"to_channels: can convert between 1 and 3 channels only; got {have} -> {channels}.")


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images in 0..255 become float32 in [0, 1]; float images are cast to float32 unchanged."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(images.dtype, np.floating):
        return images.astype(np.float32, copy=False)
    raise DataError(f"to_float: images must be uint8 (0..255) or float (0..1); got dtype {images.dtype}.")


def normalize(
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Map float pixels from [0, 1] to ``value_range``, then compute ``(x - mean) / std`` per channel."""
    _check_batch(images, "normalize")
    channels = images.shape[3]
    if len(mean) != channels or len(std) != channels:
        raise DataError(
            f"normalize: mean {tuple(mean)} and std {tuple(std)} need one value per channel; "
            f"the images have {channels} channel(s)."
        )
    low, high = float(value_range[0]), float(value_range[1])
    mean_array = np.asarray(mean, dtype=np.float32)
    std_array = np.asarray(std, dtype=np.float32)
    if np.any(std_array <= 0):
        raise ConfigError(f"normalize: std must be positive; got {tuple(std)}.")
    # (low + x * (high - low) - mean) / std folded into one multiply-add.
    gain = np.float32(high - low) / std_array
    offset = (np.float32(low) - mean_array) / std_array
    result: np.ndarray = images.astype(np.float32, copy=False) * gain
    result += offset
    return result


def random_flip(images: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with ``probability``; draws ``len(images)`` uniforms."""
    _check_batch(images, "random_flip")
    flip = rng.random(images.shape[0]) < probability
    result = images.copy()
    result[flip] = images[flip, :, ::-1]
    return result


def _translate(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Move image ``n`` down by ``dy[n]`` and right by ``dx[n]`` whole pixels, filling with zeros."""
    _, height, width, _ = images.shape
    result = np.zeros_like(images)
    for n, (down, right) in enumerate(zip(dy.tolist(), dx.tolist(), strict=True)):
        if abs(down) >= height or abs(right) >= width:
            continue  # moved entirely out of view
        result[n, max(down, 0) : height + min(down, 0), max(right, 0) : width + min(right, 0)] = images[
            n, max(-down, 0) : height - max(down, 0), max(-right, 0) : width - max(right, 0)
        ]
    return result


def random_shift(images: np.ndarray, max_pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by whole pixels, uniformly in ``[-max_pixels, max_pixels]`` on both axes, zero fill."""
    _check_batch(images, "random_shift")
    _check_non_negative(max_pixels, "max_pixels", "random_shift", integer=True)
    if max_pixels == 0:
        return images
    offsets = rng.integers(-max_pixels, max_pixels + 1, size=(2, images.shape[0]))
    return _translate(images, offsets[0], offsets[1])


def random_crop(images: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-pad each image by ``padding`` on every side and crop a random window of the original size."""
    _check_batch(images, "random_crop")
    _check_non_negative(padding, "padding", "random_crop", integer=True)
    if padding == 0:
        return images
    corners = rng.integers(0, 2 * padding + 1, size=(2, images.shape[0]))
    return _translate(images, padding - corners[0], padding - corners[1])


def random_rotation(images: np.ndarray, max_degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate each image about its centre by a uniform angle in ``[-max_degrees, max_degrees]``.

    Positive angles turn counter-clockwise. Pixels are sampled bilinearly and
    areas from outside the image are zero. Returns float32.
    """
    _check_batch(images, "random_rotation")
    _check_non_negative(max_degrees, "max_degrees", "random_rotation", integer=False)
    if max_degrees == 0:
        return images
    count, height, width, channels = images.shape
    angles = np.deg2rad(rng.uniform(-max_degrees, max_degrees, size=count))
    cos = np.cos(angles).astype(np.float32)[:, np.newaxis, np.newaxis]
    sin = np.sin(angles).astype(np.float32)[:, np.newaxis, np.newaxis]
    centre_y, centre_x = (height - 1) / 2.0, (width - 1) / 2.0
    v = (np.arange(height, dtype=np.float32) - np.float32(centre_y))[np.newaxis, :, np.newaxis]
    u = (np.arange(width, dtype=np.float32) - np.float32(centre_x))[np.newaxis, np.newaxis, :]
    # Inverse map of a counter-clockwise turn in y-down image coordinates.
    source_x = u * cos - v * sin + np.float32(centre_x)
    source_y = u * sin + v * cos + np.float32(centre_y)
    x0, y0 = np.floor(source_x), np.floor(source_y)
    fx, fy = (source_x - x0)[..., np.newaxis], (source_y - y0)[..., np.newaxis]
    # A zero border wide enough that every tap of every angle lands inside it: no clipping, zero fill for free.
    pad = math.ceil(math.hypot(centre_y, centre_x) - min(centre_y, centre_x)) + 2
    padded = np.pad(images.astype(np.float32, copy=False), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    flat = padded.reshape(-1, channels)
    row_stride = width + 2 * pad
    image_stride = (height + 2 * pad) * row_stride
    index_type = np.int32 if flat.shape[0] < np.iinfo(np.int32).max else np.int64
    index = (y0.astype(index_type) + pad) * row_stride + (x0.astype(index_type) + pad)
    index += (np.arange(count, dtype=index_type) * image_stride)[:, np.newaxis, np.newaxis]
    top_left, top_right = np.take(flat, index, axis=0), np.take(flat, index + 1, axis=0)
    index += row_stride
    bottom_left, bottom_right = np.take(flat, index, axis=0), np.take(flat, index + 1, axis=0)
    top = top_left + (top_right - top_left) * fx
    bottom = bottom_left + (bottom_right - bottom_left) * fx
    result: np.ndarray = top + (bottom - top) * fy
    return result


@dataclass(frozen=True)
class Augmentation:
    """Random training-time changes, applied in this order: flip, crop, shift, rotation.

    ``flip`` mirrors half the images left-right; ``crop_padding`` pads by that
    many pixels and crops back at a random place; ``shift`` translates by up to
    that many pixels on each axis; ``rotation`` turns by up to that many degrees.
    """

    flip: bool = False
    shift: int = 0
    crop_padding: int = 0
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.flip, (bool, np.bool_)):
            raise ConfigError(f"Augmentation: flip must be true or false; got {self.flip!r}.")
        _check_non_negative(self.shift, "shift", "Augmentation", integer=True)
        _check_non_negative(self.crop_padding, "crop_padding", "Augmentation", integer=True)
        _check_non_negative(self.rotation, "rotation", "Augmentation", integer=False)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(self.flip or self.shift or self.crop_padding or self.rotation)

    def apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment an NHWC float batch, drawing from ``rng`` in a fixed order."""
        if self.flip:
            images = random_flip(images, rng)
        if self.crop_padding:
            images = random_crop(images, self.crop_padding, rng)
        if self.shift:
            images = random_shift(images, self.shift, rng)
        if self.rotation:
            images = random_rotation(images, self.rotation, rng)
        return images


@dataclass(frozen=True)
class ImagePipeline:
    """Turns stored images into what a backbone expects: float32 NHWC, sized, normalised.

    :meth:`prepare` runs: to float in [0, 1] -> resize to ``size`` -> convert to
    ``input.channels`` channels -> augment (only with a generator, and only if
    ``augmentation`` is enabled) -> reorder to BGR if ``input.channel_order``
    says so -> map to ``input.value_range`` and normalise with ``input.mean``
    and ``input.std`` (given in the model's channel order).
    """

    input: ImageInputSpec
    size: tuple[int, int]
    augmentation: Augmentation = Augmentation()

    def __post_init__(self) -> None:
        size = _check_size(self.size, "ImagePipeline")
        if min(size) < self.input.min_size:
            raise ConfigError(
                f"ImagePipeline: size {size} is below the backbone's smallest input side "
                f"({self.input.min_size} pixels); use a size of at least {self.input.min_size}."
            )
        object.__setattr__(self, "size", size)

    def prepare(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Prepare an NHWC batch (uint8 or float in [0, 1]); augment only when ``rng`` is given."""
        _check_batch(images, "ImagePipeline.prepare")
        result = resize(to_float(images), self.size)
        channels = self.input.channels
        if rng is None or not self.augmentation.enabled:
            result = to_channels(result, channels)
        elif result.shape[3] < channels:
            # Augmentations treat every channel alike: augmenting gray before repeating it is the same, and cheaper.
            result = to_channels(self.augmentation.apply(result, rng), channels)
        else:
            result = self.augmentation.apply(to_channels(result, channels), rng)
        if self.input.channel_order == "BGR":
            result = np.ascontiguousarray(result[..., ::-1])
        return normalize(result, self.input.mean, self.input.std, self.input.value_range)
