"""The core never imports a framework: not on import, not when listing plugins."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("torch", "torchvision", "tensorflow", "jax", "keras")

CHECK = """
import sys
{body}
loaded = [m for m in {frameworks!r} if m in sys.modules]
print(",".join(loaded))
"""


def run_isolated(body: str) -> str:
    code = CHECK.format(body=body, frameworks=FRAMEWORKS)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_import_tlcore_imports_no_framework() -> None:
    assert run_isolated("import tlcore") == ""


def test_loading_plugins_imports_no_framework() -> None:
    assert run_isolated("import tlcore; r = tlcore.load_plugins(); assert r.backends and r.backbones") == ""


def test_cli_plugins_imports_no_framework() -> None:
    body = (
        "from tlcore._cli import main\nimport contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['plugins'])"
    )
    assert run_isolated(body) == ""
