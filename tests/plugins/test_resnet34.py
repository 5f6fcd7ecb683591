"""The example plugin ``plugins/tlcore-resnet34``: the README shows it whole, and that code runs as a plugin.

The contract suite (``tests/contract``) checks the backbone itself on every
backend, forward equality from one neutral checkpoint included; here: the
README's block is the module, a package made from that block alone is found
through its entry point and trains under ``tlcore run``, the module imports
no framework and no private tlcore module, and it registers ``resnet34`` on
all four backends.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tlcore
from tests.processes import framework_env

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "tlcore-resnet34" / "tlcore_resnet34.py"
FRAMEWORKS = ("torch", "torchvision", "keras", "jax", "tensorflow", "numpy")
BACKENDS = ("keras-jax", "keras-tensorflow", "keras-torch", "torch")

RECIPE = """
name = "readme-plugin"
seed = 0

[backbone]
name = "resnet34_from_readme"
weights = "none"

[head]
preset = "linear"

[data]
dataset = "digits"
image_size = 32
labels_per_class = 4
validation_per_class = 2
test_fraction = 0.05
batch_size = 16

[[phases]]
name = "tune"
freeze = { policy = "fine_tune_at", at = "layer4" }
epochs = 1
learning_rate = 1e-3
"""


def readme_plugin_code() -> str:
    """The fenced python block of the README's "Writing a plugin" section (its first one)."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Writing a plugin\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    assert section, "README.md has no section 'Writing a plugin'"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)
    assert block, "the 'Writing a plugin' section has no python block"
    return block.group(1)


def test_readme_shows_the_whole_plugin_module() -> None:
    assert readme_plugin_code() == MODULE.read_text()


def test_plugin_module_imports_no_framework_and_no_private_tlcore() -> None:
    tree = ast.parse(MODULE.read_text())

    def names(nodes: list[ast.stmt] | list[ast.AST]) -> list[str]:
        found: list[str] = []
        for node in nodes:
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, "no relative imports"
                found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        return found

    at_import_time = [name for name in names(tree.body) if name.split(".")[0] in FRAMEWORKS]
    assert not at_import_time, f"frameworks imported at module level: {at_import_time}"
    everywhere = names(list(ast.walk(tree)))
    private = [n for n in everywhere if n.startswith(("tlcore._", "tlcore_torch", "tlcore_keras")) or "._" in n]
    assert not private, f"imports beyond tlcore's public API: {private}"
    assert {"tlcore.extend", "torchvision", "keras"} <= set(everywhere)


def test_importing_and_registering_the_plugin_loads_no_framework() -> None:
    script = (
        "import sys, tlcore, tlcore_resnet34\n"
        "registry = tlcore.load_plugins()\n"
        "assert registry.backbone('resnet34').name == 'resnet34'\n"
        f"print(sorted(m for m in {FRAMEWORKS[:-1]!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=framework_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_resnet34_is_registered_by_its_plugin_on_every_backend() -> None:
    registry = tlcore.load_plugins()
    assert registry.backbones["resnet34"].plugin == "resnet34"
    spec = registry.backbone("resnet34")
    assert spec.portable and spec.feature_channels == 512 and spec.weight_names == ("imagenet",)
    source = spec.weights_source("imagenet")
    assert source is not None and source.url == "https://download.pytorch.org/models/resnet34-b627a593.pth"
    assert registry.backends_of("resnet34") == sorted(BACKENDS)
    for backend in BACKENDS:
        kind = "torch" if backend == "torch" else "keras"
        assert registry.builder("resnet34", backend).builder == f"tlcore_resnet34:build_{kind}"


def write_readme_plugin(folder: Path) -> None:
    """A package made from the README's block alone, discoverable as an installed distribution without pip."""
    code = (
        readme_plugin_code()
        .replace('"resnet34",', '"resnet34_from_readme",')
        .replace('"tlcore_resnet34:', '"readme_resnet34:')
    )
    assert "resnet34_from_readme" in code and "readme_resnet34:build_keras" in code
    (folder / "readme_resnet34.py").write_text(code)
    info = folder / "readme_resnet34-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: readme-resnet34\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tlcore]\nresnet34_from_readme = readme_resnet34\n")


@pytest.mark.requires("torch", "torchvision", "sklearn")
def test_the_readme_plugin_trains_under_tlcore_run(tmp_path: Path) -> None:
    plugin = tmp_path / "site"
    plugin.mkdir()
    write_readme_plugin(plugin)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out"
    env = framework_env()
    env.pop("TLCORE_LOAD_PLUGINS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin), env["PYTHONPATH"]])
    command = [sys.executable, "-m", "tlcore._cli", "run", str(recipe), "--backend", "torch", "--out", str(out)]
    done = subprocess.run([*command, "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    record = json.loads((out / "result.json").read_text())
    assert record["backbone"] == "resnet34_from_readme"
    assert record["backend"] == "torch" and [phase["name"] for phase in record["phases"]] == ["tune"]
