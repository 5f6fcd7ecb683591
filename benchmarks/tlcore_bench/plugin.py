"""The benchmark's plugin: registers ``tlcore bench``, published in the ``tlcore`` entry-point group.

Importing it imports neither the benchmark nor a framework: the command's
code is in :mod:`tlcore_bench.command`, imported when ``tlcore bench`` is used.
"""

from __future__ import annotations

from collections.abc import Callable

from tlcore.plugins import CommandInfo, hookimpl

__all__ = ["tlcore_register_commands"]

HELP = "the shared benchmark: the same recipe on every backend (accuracy parity, transfer value, speed)"


@hookimpl
def tlcore_register_commands(register: Callable[[CommandInfo], None]) -> None:
    """``tlcore bench``: the shared cross-backend benchmark."""
    register(CommandInfo("bench", HELP, "tlcore_bench.command:configure", "tlcore_bench.command:run"))
