"""Downloading weight files into tlcore's cache, checked against a sha256 before they are used.

Only ``urllib`` is used, never a framework, so every backend can fetch the
same file: torchvision's ImageNet checkpoints, for instance, which the Keras
backends read with :func:`tlcore.weights.read_weights_file`. torch hub names
such files ``<name>-<first hex digits of their sha256>.<ext>``
(``resnet18-f37072fd.pth``) and checks that prefix after downloading; so does
:func:`download_weights`, unless a full digest is given.

    >>> from tlcore.weights import download_weights
    >>> path = download_weights("https://download.pytorch.org/models/resnet18-f37072fd.pth")
    >>> path.name  # in $TLCORE_CACHE/weights, or ~/.cache/tlcore/weights
    'resnet18-f37072fd.pth'
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from tlcore._errors import ConfigError, WeightsError
from tlcore._io import atomic_path, cache_dir

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "cache_dir",
    "download_weights",
    "file_sha256",
    "sha256_in_name",
    "torch_hub_dir",
    "weights_cache_dir",
]

DOWNLOAD_TIMEOUT_S = 60.0
# The hex digits after the last "-" of a file name, before its extension: resnet18-f37072fd.pth -> f37072fd.
_HASH_IN_NAME = re.compile(r".*-([0-9a-f]{6,64})\.[A-Za-z0-9.]+")


def weights_cache_dir() -> Path:
    """Where downloaded weights go: ``weights/`` in tlcore's cache (:func:`cache_dir`)."""
    return cache_dir("weights")


def torch_hub_dir() -> Path:
    """torch hub's checkpoint folder, found as torch finds it but without importing torch.

    ``$TORCH_HOME/hub/checkpoints``; ``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``, that to ``~/.cache``.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def sha256_in_name(file_name: str) -> str | None:
    """The sha256 prefix a torch hub file name carries (``resnet18-f37072fd.pth`` -> ``f37072fd``), if any."""
    match = _HASH_IN_NAME.fullmatch(file_name)
    return match.group(1) if match else None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, for the record of which weights were used."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_name(url: str) -> str:
    name = posixpath.basename(unquote(urlparse(url).path))
    if not name:
        raise ConfigError(f"weights URL {url!r} names no file; expected an address ending in a file name.")
    return name


def _expected_sha256(url: str, name: str, sha256: str | None) -> tuple[str, str]:
    """``(lower-case hex, where it comes from)``: the given digest or prefix, else the one in the file name."""
    if sha256 is not None:
        expected = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{6,64}", expected):
            raise ConfigError(f"sha256 {sha256!r} for {url!r} is not a hex digest (or a prefix of 6 to 64 digits).")
        return expected, "given"
    in_name = sha256_in_name(name)
    if in_name is None:
        raise ConfigError(
            f"cannot check the download of {url!r}: its file name {name!r} carries no sha256 prefix "
            "(<name>-<hex digits>.<ext>, as torch hub names files) and no sha256 was given."
        )
    return in_name, "the prefix in its file name"


def download_weights(
    url: str,
    *,
    sha256: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    search: Sequence[str | os.PathLike[str]] = (),
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """The local, verified copy of the weights file at ``url``, downloaded into ``cache`` when needed.

    The file's sha256 must start with ``sha256`` (a full digest or a prefix),
    by default the hex digits after the last ``-`` of its name, as torch hub
    checks them. A file of the same name already in ``cache`` (default
    :func:`weights_cache_dir`) or in one of the ``search`` folders (torch
    hub's, for example) is used if it passes that check; a cached copy that
    fails it is deleted and downloaded again. A download goes to a temporary
    file beside its destination and is renamed into place only once
    verified; if the check fails, the temporary file is deleted and
    WeightsError names the file, the expected and the actual hash. Any
    network failure raises WeightsError saying how to download it elsewhere.
    """
    name = _file_name(url)
    expected, origin = _expected_sha256(url, name, sha256)
    folder = Path(cache).expanduser() if cache is not None else weights_cache_dir()
    target = folder / name
    for candidate in (target, *(Path(s).expanduser() / name for s in search)):
        if candidate.is_file() and file_sha256(candidate).startswith(expected):
            return candidate
    if target.is_file():
        target.unlink()  # corrupt or stale: fetch it again
    try:
        with atomic_path(target) as temporary:  # renamed into place only if this block completes
            _fetch(url, temporary, name, folder, timeout)
            actual = file_sha256(temporary)
            if not actual.startswith(expected):
                raise WeightsError(
                    f"{name} downloaded from {url} failed verification: its sha256 is {actual}, but it should "
                    f"start with {expected} ({origin}). The download was deleted; try again, or download it "
                    "elsewhere and pass its path as weights."
                )
    except OSError as exc:
        raise WeightsError(
            f"cannot write weights to {str(folder)!r}: {exc}. Set TLCORE_CACHE to a writable folder."
        ) from None
    return target


def _fetch(url: str, destination: Path, name: str, folder: Path, timeout: float) -> None:
    with open(destination, "wb") as output:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # https, or file:// in tests
                shutil.copyfileobj(response, output)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise WeightsError(
                f"cannot download {url}: {type(exc).__name__}: {exc}. This machine may have no internet access: "
                f"download that file elsewhere, then pass its path, weights='/path/to/{name}', or put it in "
                f"{folder}."
            ) from None
