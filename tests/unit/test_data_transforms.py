"""Image operations: resize maths, channel and value conversions, augmentations, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from tlcore import ConfigError, DataError, ImageInputSpec
from tlcore.data import (
    Augmentation,
    ImagePipeline,
    interpolation_matrix,
    normalize,
    random_crop,
    random_flip,
    random_rotation,
    random_shift,
    resize,
    to_channels,
    to_float,
)


def _batch(n: int = 4, h: int = 6, w: int = 7, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


# -- resize ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(3, 3), (5, 9), (17, 4), (32, 32)])
def test_constant_image_stays_constant(size: tuple[int, int]) -> None:
    images = np.full((2, 8, 8, 3), 0.37, dtype=np.float32)
    out = resize(images, size)
    assert out.shape == (2, *size, 3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 0.37, atol=1e-6)


def test_same_size_is_identity() -> None:
    images = _batch()
    np.testing.assert_array_equal(resize(images, (6, 7)), images)


def test_uint8_input_gives_float32_in_the_same_scale() -> None:
    out = resize(np.full((1, 4, 4, 1), 200, dtype=np.uint8), (2, 2))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 200.0, atol=1e-4)


def test_downscaling_a_two_pixel_pattern_averages_it() -> None:
    # A checkerboard halved: the antialiasing triangle covers both phases equally inside the image.
    board = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.float32)[np.newaxis, :, :, np.newaxis]
    out = resize(board, (4, 4))[0, :, :, 0]
    np.testing.assert_allclose(out[1:3, 1:3], 0.5, atol=1e-6)
    assert np.all((out > 0.3) & (out < 0.7))


def test_downscale_matches_hand_computed_triangle_weights() -> None:
    # Width 4 -> 1: centre 2.0, support 4, weights 1 - |j + 0.5 - 2| / 4 = 0.625, 0.875, 0.875, 0.625.
    row = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32).reshape(1, 1, 4, 1)
    out = resize(row, (1, 1))
    np.testing.assert_allclose(out[0, 0, 0, 0], 0.625 / 3.0, rtol=1e-6)


def test_upscale_is_half_pixel_bilinear() -> None:
    row = np.array([0.0, 1.0], dtype=np.float32).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(resize(row, (1, 4))[0, 0, :, 0], [0.0, 0.25, 0.75, 1.0], atol=1e-6)


def test_interpolation_matrix_rows_sum_to_one() -> None:
    for in_size, out_size in [(28, 224), (224, 96), (7, 3), (5, 5)]:
        matrix = interpolation_matrix(in_size, out_size)
        assert matrix.shape == (out_size, in_size)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(interpolation_matrix(5, 5), np.eye(5))


@pytest.mark.parametrize(("size", "out"), [((9, 11), (4, 5)), ((20, 16), (7, 31)), ((6, 6), (13, 13))])
def test_resize_matches_pillow_bilinear(size: tuple[int, int], out: tuple[int, int]) -> None:
    image_module = pytest.importorskip("PIL.Image")
    images = _batch(1, *size, c=1, seed=3)
    ours = resize(images, out)[0, :, :, 0]
    pil = image_module.fromarray(images[0, :, :, 0], mode="F").resize((out[1], out[0]), image_module.BILINEAR)
    np.testing.assert_allclose(ours, np.asarray(pil), atol=1e-5)


def test_resize_rejects_bad_sizes_and_shapes() -> None:
    with pytest.raises(ConfigError, match=r"size must be two positive integers \(height, width\); got \(0, 3\)"):
        resize(_batch(), (0, 3))
    with pytest.raises(DataError, match=r"shape \(N, H, W, C\); got shape \(6, 7\)"):
        resize(np.zeros((6, 7), np.float32), (3, 3))


# -- channels, floats, normalisation -------------------------------------------------------


def test_gray_to_rgb_repeats_and_rgb_to_gray_takes_luma() -> None:
    gray = _batch(c=1)
    rgb = to_channels(gray, 3)
    assert rgb.shape[-1] == 3
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray[..., 0])
    np.testing.assert_allclose(to_channels(rgb, 1), gray, atol=1e-6)
    assert to_channels(gray, 1) is gray
    with pytest.raises(DataError, match="between 1 and 3 channels only; got 3 -> 2"):
        to_channels(rgb, 2)


def test_to_float_scales_uint8() -> None:
    out = to_float(np.array([0, 51, 255], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.2, 1.0], atol=1e-7)
    with pytest.raises(DataError, match="got dtype int32"):
        to_float(np.zeros(2, np.int32))


def test_normalize_maps_value_range_then_standardises() -> None:
    images = np.array([0.0, 0.5, 1.0], dtype=np.float32).reshape(1, 1, 3, 1)
    out = normalize(images, mean=(0.5,), std=(0.25,))
    np.testing.assert_allclose(out.ravel(), [-2.0, 0.0, 2.0], atol=1e-6)
    scaled = normalize(images, mean=(0.0,), std=(1.0,), value_range=(-1.0, 1.0))
    np.testing.assert_allclose(scaled.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)
    raw = normalize(images, mean=(127.5,), std=(127.5,), value_range=(0.0, 255.0))
    np.testing.assert_allclose(raw.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)
    rgb = normalize(np.ones((1, 1, 1, 3), np.float32), mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 0.5))
    np.testing.assert_allclose(rgb.ravel(), [0.9, 0.4, 1.4], atol=1e-6)
    assert rgb.dtype == np.float32
    with pytest.raises(DataError, match=r"one value per channel; the images have 1 channel"):
        normalize(images, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


# -- augmentations -------------------------------------------------------------------


def test_flip_mirrors_some_images_deterministically() -> None:
    images = _batch(n=32)
    out = random_flip(images, np.random.default_rng(1))
    mirrored = [bool(np.array_equal(o, i[:, ::-1])) for o, i in zip(out, images, strict=True)]
    kept = [bool(np.array_equal(o, i)) for o, i in zip(out, images, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))
    assert 0 < sum(mirrored) < 32
    np.testing.assert_array_equal(out, random_flip(images, np.random.default_rng(1)))


def _dot_batch(n: int = 16, size: int = 9) -> np.ndarray:
    images = np.zeros((n, size, size, 1), dtype=np.float32)
    images[:, size // 2, size // 2, 0] = 1.0
    return images


@pytest.mark.parametrize("augment", [random_shift, random_crop])
def test_shift_and_crop_move_whole_pixels_within_bounds(augment: object) -> None:
    images = _dot_batch()
    out = augment(images, 2, np.random.default_rng(5))  # type: ignore[operator]
    assert out.shape == images.shape and out.dtype == images.dtype
    moves = set()
    for image in out:
        ((y, x),) = np.argwhere(image[:, :, 0] == 1.0).tolist()
        assert abs(y - 4) <= 2 and abs(x - 4) <= 2
        assert image.sum() == 1.0
        moves.add((y - 4, x - 4))
    assert len(moves) > 3
    again = augment(images, 2, np.random.default_rng(5))  # type: ignore[operator]
    np.testing.assert_array_equal(out, again)


def test_shift_fills_with_zeros() -> None:
    images = np.ones((64, 5, 5, 1), dtype=np.float32)
    out = random_shift(images, 1, np.random.default_rng(0))
    sums = out.reshape(64, -1).sum(axis=1)
    assert set(sums.tolist()) <= {25.0, 20.0, 16.0}
    assert random_shift(images, 0, np.random.default_rng(0)) is images


def test_rotation_keeps_shape_and_is_deterministic() -> None:
    images = _batch(n=5, h=12, w=12)
    out = random_rotation(images, 30.0, np.random.default_rng(2))
    assert out.shape == images.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, random_rotation(images, 30.0, np.random.default_rng(2)))
    assert not np.allclose(out, images)
    assert random_rotation(images, 0.0, np.random.default_rng(2)) is images


class _FixedAngle:
    """Stands in for a generator that always draws the same angle."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def uniform(self, low: float, high: float, size: int) -> np.ndarray:
        return np.full(size, self.degrees)


def test_positive_rotation_turns_counter_clockwise() -> None:
    image = np.zeros((1, 11, 11, 1), dtype=np.float32)
    image[0, 5, 7:10, 0] = 1.0  # a bar pointing right from the centre
    out = random_rotation(image, 90.0, _FixedAngle(90.0))  # type: ignore[arg-type]
    assert np.argwhere(out[0, :, :, 0] > 0.5).tolist() == [[1, 5], [2, 5], [3, 5]]  # now pointing up


def test_rotation_zero_fills_corners_and_keeps_the_centre() -> None:
    images = np.ones((2, 15, 15, 1), dtype=np.float32)
    out = random_rotation(images, 45.0, _FixedAngle(45.0))  # type: ignore[arg-type]
    np.testing.assert_allclose(out[:, 4:11, 4:11], 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[:, [0, 0, -1, -1], [0, -1, 0, -1]], 0.0)


def test_augmentation_options() -> None:
    assert not Augmentation().enabled
    assert Augmentation(flip=True).enabled
    assert Augmentation(rotation=5.0).enabled
    with pytest.raises(ConfigError, match="shift must be a non-negative integer; got -1"):
        Augmentation(shift=-1)
    with pytest.raises(ConfigError, match=r"crop_padding must be a non-negative integer; got 1\.5"):
        Augmentation(crop_padding=1.5)  # type: ignore[arg-type]


# -- pipeline ------------------------------------------------------------------------


def test_pipeline_prepares_gray_uint8_for_an_rgb_backbone() -> None:
    spec = ImageInputSpec(size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    pipeline = ImagePipeline(spec, (40, 36), Augmentation())
    images = np.full((3, 8, 8, 1), 255, dtype=np.uint8)
    out = pipeline.prepare(images)
    assert out.shape == (3, 40, 36, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_pipeline_augments_only_with_a_generator() -> None:
    spec = ImageInputSpec(size=(32, 32))
    pipeline = ImagePipeline(spec, (32, 32), Augmentation(shift=3, flip=True))
    images = (np.random.default_rng(0).random((4, 16, 16, 3)) * 255).astype(np.uint8)
    plain = pipeline.prepare(images)
    np.testing.assert_array_equal(plain, pipeline.prepare(images, None))
    augmented = pipeline.prepare(images, np.random.default_rng(9))
    assert not np.array_equal(plain, augmented)
    np.testing.assert_array_equal(augmented, pipeline.prepare(images, np.random.default_rng(9)))


def test_pipeline_refuses_sizes_below_the_backbone_minimum() -> None:
    with pytest.raises(ConfigError, match=r"size \(16, 16\) is below the backbone's smallest input side \(32"):
        ImagePipeline(ImageInputSpec(), (16, 16), Augmentation())


def test_pipeline_reorders_to_bgr_before_normalising() -> None:
    from tlcore import ImageInputSpec
    from tlcore.data import ImagePipeline

    spec = ImageInputSpec(
        size=(4, 4),
        min_size=4,
        mean=(10.0, 20.0, 30.0),
        std=(1.0, 1.0, 1.0),
        value_range=(0.0, 255.0),
        channel_order="BGR",
    )
    image = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    image[..., 0] = 200  # red
    prepared = ImagePipeline(spec, (4, 4)).prepare(image)
    np.testing.assert_allclose(prepared[0, 0, 0], [0.0 - 10.0, 0.0 - 20.0, 200.0 - 30.0], atol=1e-4)
