"""Image preparation: geometry (evaluation crop, random-resized crop), augmentation, channels, normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlcore import ConfigError, DataError, ImageInputSpec
from tlcore.data import Augmentation, ImagePipeline, RandomResizedCrop, normalize

PLAIN = ImageInputSpec(size=(8, 8), channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), min_size=4)
GRAY = ImageInputSpec(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,), min_size=4)


def _photos(n: int = 4, h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


class _Fixed:
    """Stands in for a generator: every uniform draw is ``value``, every ``random()`` is 0.9 (no flip)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def uniform(self, low: float, high: float) -> float:
        return self.value

    def random(self) -> float:
        return 0.9


# -- geometry ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(4, 4), (5, 9), (17, 4), (32, 32)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_constant_image_stays_constant(size: tuple[int, int], dtype: type) -> None:
    value = 94 if dtype == np.uint8 else 94 / 255
    images = np.full((2, 8, 11, 3), value, dtype=dtype)
    out = ImagePipeline(PLAIN, size).prepare(images)
    assert out.shape == (2, *size, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 94 / 255, atol=1e-6)


def _stripes(height: int = 20, width: int = 40) -> np.ndarray:
    """Red and blue edges, each 6 pixels wide, around green: the filter's reach stays in the green."""
    image = np.zeros((1, height, width, 3), dtype=np.uint8)
    image[:, :, :6, 0] = 255
    image[:, :, 6 : width - 6, 1] = 255
    image[:, :, width - 6 :, 2] = 255
    return image


@pytest.mark.parametrize("crop_pct", [1.0, 0.5])
def test_evaluation_resizes_the_shorter_side_and_crops_the_centre(crop_pct: float) -> None:
    out = ImagePipeline(PLAIN, (10, 10), crop_pct=crop_pct).prepare(_stripes())
    assert out.shape == (1, 10, 10, 3)
    np.testing.assert_allclose(out[0, ..., 1], 1.0, atol=1e-6)  # the green middle, aspect ratio kept
    np.testing.assert_allclose(out[0, ..., [0, 2]], 0.0, atol=1e-6)


def test_crop_pct_comes_from_the_backbone_and_sets_the_resize_side() -> None:
    spec = ImageInputSpec(size=(224, 224), crop_pct=0.875)
    assert ImagePipeline(spec, (224, 224)).resize_side == 256
    assert ImagePipeline(spec, (224, 224), crop_pct=1.0).resize_side == 224
    with pytest.raises(ConfigError, match=r"crop_pct must be a number in \(0, 1\]; got 1.5"):
        ImagePipeline(spec, (224, 224), crop_pct=1.5)
    with pytest.raises(ConfigError, match=r"crop_pct must be a number in \(0, 1\]; got 0"):
        ImageInputSpec(crop_pct=0)


def test_same_size_with_the_whole_image_is_exact() -> None:
    images = _photos(h=8, w=8)
    np.testing.assert_allclose(ImagePipeline(PLAIN, (8, 8)).prepare(images), images / np.float32(255), atol=1e-7)


def test_resize_matches_pillow_bilinear() -> None:
    image_module = pytest.importorskip("PIL.Image")
    images = _photos(1, 30, 30, seed=3)
    ours = ImagePipeline(PLAIN, (13, 13)).prepare(images)[0]
    pil = image_module.fromarray(images[0]).resize((13, 13), image_module.Resampling.BILINEAR)
    np.testing.assert_allclose(ours, np.asarray(pil) / np.float32(255), atol=1e-6)


def test_random_resized_crop_boxes_follow_scale_and_ratio() -> None:
    crop = RandomResizedCrop(scale=(0.2, 0.6), ratio=(0.5, 2.0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, height, width = crop.box(300, 400, rng)
        assert 0 <= top <= 300 - height and 0 <= left <= 400 - width
        assert 0.2 * 0.95 <= height * width / 120_000 <= 0.6 * 1.05
        assert 0.5 * 0.9 <= width / height <= 2.0 * 1.1
    assert crop.box(300, 400, np.random.default_rng(5)) == crop.box(300, 400, np.random.default_rng(5))


def test_random_resized_crop_falls_back_to_the_clamped_centre() -> None:
    # A 10:1 strip cannot hold a box of 90 % of its area with a ratio of at most 2.
    box = RandomResizedCrop(scale=(0.9, 1.0), ratio=(1.0, 2.0)).box(10, 100, np.random.default_rng(0))
    assert box == (0, 40, 10, 20)
    with pytest.raises(ConfigError, match=r"scale must be two numbers \(min, max\) with 0.0 < min <= max <= 1.0"):
        RandomResizedCrop(scale=(0.5, 1.2))
    with pytest.raises(ConfigError, match="ratio must be two numbers"):
        RandomResizedCrop(ratio=(2.0, 1.0))


def test_random_resized_crop_is_used_only_when_augmenting() -> None:
    pipeline = ImagePipeline(PLAIN, (8, 8), Augmentation(random_resized_crop=RandomResizedCrop()))
    images = _photos(6, 40, 40)
    plain = ImagePipeline(PLAIN, (8, 8)).prepare(images)
    np.testing.assert_array_equal(pipeline.prepare(images), plain)
    cropped = pipeline.prepare(images, np.random.default_rng(1))
    assert not np.allclose(cropped, plain)
    np.testing.assert_array_equal(cropped, pipeline.prepare(images, np.random.default_rng(1)))


# -- augmentation --------------------------------------------------------------------


def test_each_image_has_its_own_generator() -> None:
    pipeline = ImagePipeline(PLAIN, (8, 8), Augmentation(flip=True, shift=2, random_resized_crop=RandomResizedCrop()))
    images = _photos(5, 20, 24)
    seeds = np.array([11, 12, 13, 14, 15])
    whole = pipeline.prepare_selection(images, np.arange(5), seeds)
    alone = pipeline.prepare_selection(images, [3], seeds[3:4])
    np.testing.assert_array_equal(whole[3], alone[0])


def test_flip_mirrors_about_half_the_images() -> None:
    pipeline = ImagePipeline(PLAIN, (12, 16), Augmentation(flip=True))
    images = np.repeat(_photos(1), 40, axis=0)
    plain = pipeline.prepare(images[:1])[0]
    out = pipeline.prepare(images, np.random.default_rng(1))
    mirrored = [bool(np.array_equal(o, plain[:, ::-1])) for o in out]
    kept = [bool(np.array_equal(o, plain)) for o in out]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))
    assert 8 < sum(mirrored) < 32


@pytest.mark.parametrize("augmentation", [Augmentation(shift=2), Augmentation(crop_padding=2)])
def test_shift_and_crop_move_whole_pixels_with_zero_fill(augmentation: Augmentation) -> None:
    images = np.zeros((32, 9, 9, 1), dtype=np.uint8)
    images[:, 4, 4] = 255
    out = ImagePipeline(GRAY, (9, 9), augmentation).prepare(images, np.random.default_rng(5))
    moves = set()
    for image in out:
        ((y, x),) = np.argwhere(image[:, :, 0] == 1.0).tolist()
        assert abs(y - 4) <= 2 and abs(x - 4) <= 2 and image.sum() == 1.0
        moves.add((y - 4, x - 4))
    assert len(moves) > 3


def test_positive_rotation_turns_counter_clockwise() -> None:
    image = np.zeros((1, 11, 11, 1), dtype=np.uint8)
    image[0, 5, 7:10, 0] = 255  # a bar pointing right from the centre
    pipeline = ImagePipeline(GRAY, (11, 11), Augmentation(rotation=90.0))
    out = pipeline.prepare_one(image, 0, _Fixed(90.0))  # type: ignore[arg-type]
    assert np.argwhere(out[:, :, 0] > 128).tolist() == [[1, 5], [2, 5], [3, 5]]  # now pointing up


def test_rotation_zero_fills_corners_and_keeps_the_centre() -> None:
    images = np.full((1, 15, 15, 1), 255, dtype=np.uint8)
    out = ImagePipeline(GRAY, (15, 15), Augmentation(rotation=45.0)).prepare_one(images, 0, _Fixed(45.0))  # type: ignore[arg-type]
    assert (out[4:11, 4:11] == 255).all()
    assert (out[[0, 0, -1, -1], [0, -1, 0, -1]] == 0).all()


def test_augmentation_options() -> None:
    assert not Augmentation().enabled
    assert Augmentation(flip=True).enabled
    assert Augmentation(random_resized_crop=RandomResizedCrop()).enabled
    with pytest.raises(ConfigError, match="shift must be a non-negative integer; got -1"):
        Augmentation(shift=-1)
    with pytest.raises(ConfigError, match=r"crop_padding must be a non-negative integer; got 1\.5"):
        Augmentation(crop_padding=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="random_resized_crop must be a RandomResizedCrop or None"):
        Augmentation(random_resized_crop=(0.1, 1.0))  # type: ignore[arg-type]


# -- channels and normalisation ------------------------------------------------------


def test_gray_uint8_for_an_rgb_backbone() -> None:
    spec = ImageInputSpec(size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = ImagePipeline(spec, (40, 36)).prepare(np.full((3, 8, 8, 1), 255, dtype=np.uint8))
    assert out.shape == (3, 40, 36, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_rgb_for_a_gray_backbone_takes_luma() -> None:
    image = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    image[..., 1] = 255
    np.testing.assert_allclose(ImagePipeline(GRAY, (8, 8)).prepare(image), 0.587, atol=1e-6)


def test_float_images_follow_the_same_path() -> None:
    images = _photos(2, 20, 30)
    as_uint8 = ImagePipeline(PLAIN, (9, 9)).prepare(images)
    as_float = ImagePipeline(PLAIN, (9, 9)).prepare(images.astype(np.float32) / 255)
    np.testing.assert_allclose(as_float, as_uint8, atol=1.5 / 255)


def test_bgr_is_reordered_before_normalising() -> None:
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


def test_normalize() -> None:
    images = np.full((1, 2, 2, 1), 0.75, dtype=np.float32)
    np.testing.assert_allclose(normalize(images, mean=(0.5,), std=(0.25,)), 1.0)
    np.testing.assert_allclose(normalize(images, mean=(0.0,), std=(1.0,), value_range=(-1.0, 1.0)), 0.5)
    np.testing.assert_allclose(normalize(np.full((1, 1, 1, 1), 255, np.uint8), mean=(0.0,), std=(2.0,)), 0.5)
    with pytest.raises(DataError, match=r"one value per channel; the images have 1 channel"):
        normalize(images, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="std must be positive"):
        normalize(images, mean=(0.0,), std=(0.0,))


def test_pipeline_refuses_bad_input() -> None:
    with pytest.raises(ConfigError, match=r"size \(16, 16\) is below the backbone's smallest input side \(32"):
        ImagePipeline(ImageInputSpec(), (16, 16))
    with pytest.raises(ConfigError, match=r"size must be two positive integers \(height, width\); got \(0, 3\)"):
        ImagePipeline(PLAIN, (0, 3))
    with pytest.raises(DataError, match=r"shape \(N, H, W, C\) with C in 1 or 3; got shape \(6, 7\)"):
        ImagePipeline(PLAIN, (8, 8)).prepare(np.zeros((6, 7), np.uint8))
    assert math.isclose(ImagePipeline(PLAIN, (8, 8)).crop_pct or 0, 1.0)
