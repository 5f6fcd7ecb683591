"""Shared pytest configuration: capability markers and the backend list."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tlcore.plugins import reset_plugins


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``requires(...)`` when a module they need is missing."""
    for item in items:
        for marker in item.iter_markers("requires"):
            missing = [m for m in marker.args if importlib.util.find_spec(m) is None]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)}"))


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    """Plugins loaded anew for the test and forgotten after it (for tests that register plugins in-process)."""
    reset_plugins()
    yield
    reset_plugins()
