"""Dependencies point one way: backends -> core, plugins and benchmarks -> the core's public names.

Every import statement of every module is read (no module is imported), so
lazy imports inside functions count too. Docstrings and comments may name
anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (folder, module prefixes it may not import, why)
RULES = (
    ("tlcore", ("tlcore_torch", "tlcore_keras", "tlcore_bench"), "the core finds backends and commands via plugins"),
    ("backends/tlcore_torch", ("tlcore_keras", "tlcore_bench"), "one backend never imports another"),
    ("backends/tlcore_keras", ("tlcore_torch", "tlcore_bench"), "one backend never imports another"),
    ("backends", ("tlcore._",), "backends are written against the public API (tlcore.extend), as a third one would be"),
    ("plugins", ("tlcore._", "tlcore_torch", "tlcore_keras", "tlcore_bench"), "plugins use only public names"),
    ("benchmarks", ("tlcore._",), "benchmarks use only public names"),
)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``path`` (``from x import y`` gives ``x`` and ``x.y``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def crosses(module: str, prefix: str) -> bool:
    """Whether ``module`` is ``prefix`` or inside it; a prefix ending in ``_`` or ``.`` matches as text."""
    if prefix.endswith(("_", ".")):
        return module.startswith(prefix)
    return module == prefix or module.startswith(prefix + ".")


def crossings(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, module in imported_modules(path)
        if any(crosses(module, prefix) for prefix in forbidden)
    ]


@pytest.mark.parametrize(("folder", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_no_import_crosses_a_boundary(folder: str, forbidden: tuple[str, ...], why: str) -> None:
    assert (ROOT / folder).is_dir()
    found = crossings(folder, forbidden)
    assert not found, f"{why}: " + "; ".join(found)


def test_the_check_sees_lazy_and_private_imports(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text(
        "def f():\n    import tlcore_torch.backend\n    from tlcore import _io\n    from tlcore._io import x\n"
    )
    found = [name for _, name in imported_modules(module)]
    assert "tlcore_torch.backend" in found and "tlcore._io" in found and "tlcore._io.x" in found
    assert crosses("tlcore._io", "tlcore._") and crosses("tlcore_torch.backend", "tlcore_torch")
    assert not crosses("tlcore_torchvision", "tlcore_torch") and not crosses("tlcore.extend", "tlcore._")
