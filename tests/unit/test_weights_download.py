"""Downloading weights (tlcore.weights.download_weights), offline through file:// URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tlcore import ConfigError, WeightsError
from tlcore.weights import cache_dir, download_weights, sha256_in_name, torch_hub_dir, weights_cache_dir

DATA = b"not really a checkpoint, but bytes with a known hash" * 100
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A folder standing for download.pytorch.org, with one good file named as torch hub names files."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    (folder / f"resnet18-{DIGEST[:8]}.pth").write_bytes(DATA)
    return folder


def test_hash_prefix_is_the_hex_after_the_last_dash() -> None:
    assert sha256_in_name("resnet18-f37072fd.pth") == "f37072fd"
    assert sha256_in_name("efficientnet_b0_rwightman-7f5810bc.pth") == "7f5810bc"
    assert sha256_in_name("vgg16_features-amdegroot-88682ab5.pth") == "88682ab5"
    assert sha256_in_name("resnet18.pth") is None
    assert sha256_in_name("model-final.pth") is None


def test_download_is_verified_cached_and_reused(upstream: Path, tmp_path: Path) -> None:
    url = (upstream / f"resnet18-{DIGEST[:8]}.pth").as_uri()
    cache = tmp_path / "cache"
    path = download_weights(url, cache=cache)
    assert path == cache / f"resnet18-{DIGEST[:8]}.pth"
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in cache.iterdir()) == [path.name], "no temporary file is left"
    (upstream / path.name).unlink()
    assert download_weights(url, cache=cache) == path, "a verified cached copy is used without the network"


def test_tampered_download_is_deleted_and_named(upstream: Path, tmp_path: Path) -> None:
    tampered = DATA + b"!"
    (upstream / "resnet18-f37072fd.pth").write_bytes(tampered)
    cache = tmp_path / "cache"
    actual = hashlib.sha256(tampered).hexdigest()
    with pytest.raises(WeightsError) as caught:
        download_weights((upstream / "resnet18-f37072fd.pth").as_uri(), cache=cache)
    message = str(caught.value)
    assert "resnet18-f37072fd.pth" in message and "should start with f37072fd" in message and actual in message
    assert "The download was deleted" in message
    assert list(cache.iterdir()) == [], "neither the file nor a temporary file is kept"


def test_corrupt_cached_copy_is_fetched_again(upstream: Path, tmp_path: Path) -> None:
    name = f"resnet18-{DIGEST[:8]}.pth"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / name).write_bytes(b"truncated")
    assert download_weights((upstream / name).as_uri(), cache=cache).read_bytes() == DATA


def test_copy_in_a_search_folder_is_used_when_it_verifies(upstream: Path, tmp_path: Path) -> None:
    name = f"resnet18-{DIGEST[:8]}.pth"
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / name).write_bytes(DATA)
    gone = (tmp_path / "gone" / name).as_uri()
    assert download_weights(gone, cache=tmp_path / "cache", search=[hub]) == hub / name


def test_full_sha256_given_overrides_the_name(upstream: Path, tmp_path: Path) -> None:
    (upstream / "weights.pth").write_bytes(DATA)
    url = (upstream / "weights.pth").as_uri()
    assert download_weights(url, sha256=DIGEST, cache=tmp_path / "a").read_bytes() == DATA
    with pytest.raises(WeightsError, match=f"its sha256 is {DIGEST}, but it should start with {'0' * 64}"):
        download_weights(url, sha256="0" * 64, cache=tmp_path / "b")
    with pytest.raises(ConfigError, match="carries no sha256 prefix"):
        download_weights(url, cache=tmp_path / "c")
    with pytest.raises(ConfigError, match=r"'xyz' .* is not a hex digest"):
        download_weights(url, sha256="xyz", cache=tmp_path / "d")


def test_network_failure_says_how_to_get_the_file_elsewhere(tmp_path: Path) -> None:
    url = (tmp_path / "offline" / "resnet50-0676ba61.pth").as_uri()
    with pytest.raises(WeightsError) as caught:
        download_weights(url, cache=tmp_path / "cache")
    message = str(caught.value)
    assert f"cannot download {url}" in message and "no internet access" in message
    assert "weights='/path/to/resnet50-0676ba61.pth'" in message
    assert not any((tmp_path / "cache").iterdir())


def test_cache_folders_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TLCORE_CACHE", str(tmp_path / "tl"))
    assert weights_cache_dir() == tmp_path / "tl" / "weights"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_hub_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_hub_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"


def test_one_cache_folder_for_every_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TLCORE_CACHE", str(tmp_path / "tl"))
    assert cache_dir() == tmp_path / "tl" and cache_dir("keras") == tmp_path / "tl" / "keras"
    assert weights_cache_dir() == cache_dir("weights")
    monkeypatch.delenv("TLCORE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("a", "b") == tmp_path / "xdg" / "tlcore" / "a" / "b"
    assert weights_cache_dir() == tmp_path / "xdg" / "tlcore" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tlcore"
