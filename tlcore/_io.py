"""Atomic file writing (nothing the user had is lost if writing fails half-way), and tlcore's cache folder."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["CACHE_VARIABLE", "atomic_path", "cache_dir", "write_json"]

CACHE_VARIABLE = "TLCORE_CACHE"


def cache_dir(*parts: str) -> Path:
    """tlcore's cache folder (downloads, datasets, weights), or the folder ``parts`` inside it.

    ``$TLCORE_CACHE`` if set, else ``tlcore`` in ``$XDG_CACHE_HOME``, else
    ``~/.cache/tlcore``. Nothing is created. Public as :func:`tlcore.weights.cache_dir`.
    """
    root = os.environ.get(CACHE_VARIABLE)
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "tlcore"
    return base.joinpath(*parts)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_with(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(temporary_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as temporary:
        writer(temporary)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=_default)
    return write_with(path, lambda temporary: temporary.write_text(text + "\n", encoding="utf-8"))


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
