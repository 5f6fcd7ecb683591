"""Atomic file writing for plugins, benchmarks and tools: nothing the user had is lost if writing fails half-way.

Each helper writes to a temporary file beside the target and renames it into
place only when writing succeeded, so a reader sees the old file or the new
one, never half of one::

    from tlcore.io import write_json, write_with

    write_json("out/report.json", {"accuracy": 0.97})
    write_with("out/plot.png", lambda temporary: figure.savefig(temporary, format="png"))
"""

from __future__ import annotations

from tlcore._io import atomic_path, write_json, write_with

__all__ = ["atomic_path", "write_json", "write_with"]
