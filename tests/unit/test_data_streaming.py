"""Photos streamed from folders: lazy datasets, worker threads, the preprocessed cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.photos import photo_folder, write_photo
from tlcore import DataError, ImageInputSpec
from tlcore.data import (
    Augmentation,
    Batches,
    CachedImages,
    ImagePipeline,
    RandomResizedCrop,
    cache_images,
    load_image_folder,
    make_splits,
)
from tlcore.data import _cache as cache_module

SPEC = ImageInputSpec(size=(16, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), min_size=8, crop_pct=0.875)
AUGMENT = Augmentation(flip=True, shift=1, rotation=10.0, random_resized_crop=RandomResizedCrop())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Twelve JPEGs of mixed sizes and orientations in two classes."""
    pytest.importorskip("PIL")
    return photo_folder(tmp_path / "photos")


def _epoch(batches: Batches, epoch: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(batches.epoch(epoch))


def test_mixed_sizes_come_out_at_the_working_size(folder: Path) -> None:
    data = load_image_folder(folder).train
    batches = Batches(data, ImagePipeline(SPEC, (16, 16), AUGMENT), batch_size=5, shuffle=True, augment=True)
    shapes = [(images.shape, labels.shape) for images, labels in batches.epoch(0)]
    assert shapes == [((5, 16, 16, 3), (5,)), ((5, 16, 16, 3), (5,)), ((2, 16, 16, 3), (2,))]


def test_batches_are_the_same_for_any_number_of_workers(folder: Path) -> None:
    data = load_image_folder(folder).train
    pipeline = ImagePipeline(SPEC, (16, 16), AUGMENT)

    def batches(workers: int) -> Batches:
        return Batches(data, pipeline, batch_size=3, shuffle=True, seed=4, augment=True, workers=workers)

    one, four, inline = _epoch(batches(1), 2), _epoch(batches(4), 2), _epoch(batches(0), 2)
    for (x1, y1), (x4, y4), (x0, y0) in zip(one, four, inline, strict=True):
        np.testing.assert_array_equal(y1, y0)
        np.testing.assert_array_equal(x1, x4)
        np.testing.assert_array_equal(x1, x0)
        np.testing.assert_array_equal(y1, y4)
    assert not np.array_equal(one[0][0], _epoch(batches(4), 3)[0][0])
    ordered = list(batches(4).ordered())
    np.testing.assert_array_equal(np.concatenate([x for x, _ in ordered]), batches(0).all_prepared()[0])


def test_stopping_early_and_errors_in_workers(folder: Path) -> None:
    data = load_image_folder(folder).train
    batches = Batches(data, ImagePipeline(SPEC, (16, 16)), batch_size=2, workers=2, prefetch=2)
    for _ in batches.epoch(0):
        break  # closing the iterator early must not hang
    broken = sorted(folder.rglob("*.jpg"))[7]
    broken.write_bytes(broken.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(DataError, match=rf"{broken.name}.*damaged|{broken.name}"):
        _epoch(Batches(load_image_folder(folder).train, ImagePipeline(SPEC, (16, 16)), batch_size=2, workers=2))


def test_splits_of_a_folder_stay_lazy(folder: Path) -> None:
    splits = make_splits(
        load_image_folder(folder), seed=0, labels_per_class=None, validation_per_class=0, test_fraction=0.25
    )
    assert splits.train.lazy and splits.test.lazy
    assert len(splits.train) + len(splits.test) == 12
    prepared = ImagePipeline(SPEC, (16, 16)).prepare(splits.test.images)
    assert prepared.shape == (len(splits.test), 16, 16, 3)


def test_the_cache_is_built_once_and_read_back(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_image_folder(folder).train
    pipeline = ImagePipeline(SPEC, (16, 16), AUGMENT)
    builds: list[int] = []
    build = cache_module._build

    def counting_build(*args: object) -> None:
        builds.append(1)
        build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_module, "_build", counting_build)
    cached = cache_images(data, pipeline, directory=tmp_path / "cache", workers=2)
    again = cache_images(data, pipeline, directory=tmp_path / "cache", workers=2)
    assert len(builds) == 1
    assert isinstance(cached.images, CachedImages) and len(cached) == 12
    assert cached.labels.tolist() == data.labels.tolist() and cached.class_names == data.class_names
    stored = [cached.images.open(i) for i in range(12)]
    assert {min(image.size) for image in stored} == {pipeline.resize_side}  # every shorter side was larger
    first = _epoch(Batches(cached, pipeline, batch_size=4, shuffle=True, augment=True, workers=2))
    second = _epoch(Batches(again, pipeline, batch_size=4, shuffle=True, augment=True, workers=1))
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    subset = cached.subset([3, 1])
    assert isinstance(subset.images, CachedImages) and subset.images.describe(0).endswith(".jpg")


def test_photos_smaller_than_the_cache_side_are_kept_exactly(folder: Path, tmp_path: Path) -> None:
    data = load_image_folder(folder).train
    pipeline = ImagePipeline(SPEC, (24, 24), crop_pct=0.5)  # resize side 48: larger than every photo's shorter side
    cached = cache_images(data, pipeline, directory=tmp_path / "cache")
    np.testing.assert_array_equal(pipeline.prepare(cached.images), pipeline.prepare(data.images))


def test_a_changed_file_gives_a_new_cache(folder: Path, tmp_path: Path) -> None:
    pipeline = ImagePipeline(SPEC, (16, 16))
    before = cache_images(load_image_folder(folder).train, pipeline, directory=tmp_path / "cache")
    changed = sorted(folder.rglob("*.jpg"))[0]
    write_photo(changed, 40, 40, seed=99)
    os.utime(changed, ns=(1, 1))
    after = cache_images(load_image_folder(folder).train, pipeline, directory=tmp_path / "cache")
    assert isinstance(before.images, CachedImages) and isinstance(after.images, CachedImages)
    assert before.images.store.folder != after.images.store.folder
    position = [Path(p) for p in after.images.files].index(changed)
    side = pipeline.resize_side
    assert np.asarray(after.images.open(position)).shape[:2] == (side, side)


def test_a_damaged_file_stops_the_build_by_name_and_leaves_no_cache(folder: Path, tmp_path: Path) -> None:
    broken = sorted(folder.rglob("*.jpg"))[5]
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=broken.name):
        cache_images(load_image_folder(folder).train, ImagePipeline(SPEC, (16, 16)), directory=tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["digests.json"]


def test_no_room_for_the_cache(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_image_folder(folder).train
    monkeypatch.setattr(cache_module, "DISK_MARGIN_BYTES", 1 << 62)
    with pytest.raises(DataError, match=r"needs about .* GiB free. Set TLCORE_CACHE to a larger disk"):
        cache_images(data, ImagePipeline(SPEC, (16, 16)), directory=tmp_path / "cache")
    with pytest.warns(RuntimeWarning, match="going on without it"):
        unchanged = cache_images(data, ImagePipeline(SPEC, (16, 16)), directory=tmp_path / "cache", if_room=True)
    assert unchanged is data


def test_in_memory_datasets_are_not_cached(tmp_path: Path) -> None:
    from tlcore.data import Dataset

    data = Dataset.from_arrays(np.zeros((3, 8, 8, 1), np.uint8), [0, 1, 0])
    assert cache_images(data, ImagePipeline(SPEC, (16, 16)), directory=tmp_path) is data
