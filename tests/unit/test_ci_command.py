"""CI (``.ci/run``) runs exactly the test command the README names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_test_command() -> str:
    """The code block after "this is what CI runs through `.ci/run`" in README.md."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"this is what CI runs through `\.ci/run`.*?```\w*\n(.*?)```", text, re.DOTALL)
    assert found, "README.md has no test command block after 'this is what CI runs through `.ci/run`'"
    return found.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert commands[-1] == readme_test_command() == "bash scripts/test.sh"
    assert commands == [readme_test_command()]  # nothing else: CI runs from the repository root, as the README does
