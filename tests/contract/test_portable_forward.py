"""Portable backbones compute torch's features on every backend, from one neutral checkpoint.

For each portable backbone (resnet18, resnet50, mobilenet_v2,
efficientnet_lite0: the same structure and layer names on every backend), one
torch process per test session (this file is also its script:
``python -m tests.contract.test_portable_forward FOLDER NAME...``) makes
seeded random weights in torch: convolutions drawn with a fan-in scale,
BatchNorm gamma and beta drawn too, and BatchNorm running statistics those of
a random calibration batch (variances floored at 1), then shifted and rescaled
at random. So every tensor matters, features stay of order 1 through fifty
layers, and float32 rounding is not amplified: torch's own float32 features
are within 3e-5 of float64 ones. The process writes the weights as a neutral
checkpoint and saves torch's features of two standard-normal 40x40 images
(odd sizes inside the network: 40 -> 20 -> 10 -> 5 -> 3 -> 2) and its list of
layers.

The backend under test builds each backbone with ``weights=<that manifest>``
(strict: every tensor must fit), must list the same layers (names, groups,
kinds, parameter counts, in order), and its ``Model.features`` must be within
a max abs difference of 1e-4 of torch's (measured: up to 2e-5). Skipped where
torch, torchvision or safetensors is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tlcore
from tests.processes import framework_env

from .conftest import PORTABLE_BACKBONES

SIZE = 40
TOLERANCE = 1e-4  # max abs difference on features of order 1 (up to about 5) from unit-scale inputs
HEAVY = ("mobilenet_v2", "resnet34", "resnet50")  # marked slow: each adds seconds per backend (7 s on keras-jax)
ROOT = Path(__file__).resolve().parents[2]


def _collected(session: pytest.Session) -> list[str]:
    """The portable backbones this session tests (the torch process makes only those)."""
    wanted = {
        item.callspec.params["backbone"]
        for item in session.items
        if isinstance(item, pytest.Function)
        and item.originalname == test_portable_backbone_gives_torch_features.__name__
    }
    return [name for name in PORTABLE_BACKBONES if name in wanted]


@pytest.fixture(scope="session")
def torch_reference(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A folder with ``images.npy`` and, per backbone collected, the weights (``NAME.json``, ``NAME.safetensors``),
    and torch's features and layer list (``NAME_features.npy``, ``NAME_layers.json``)."""
    missing = [m for m in ("torch", "torchvision", "safetensors") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the torch reference needs {', '.join(missing)}")
    folder = tmp_path_factory.mktemp("portable_forward")
    env = framework_env()
    # A process of its own: torch beside TensorFlow (the keras-tensorflow run) can crash.
    command = [sys.executable, "-m", "tests.contract.test_portable_forward", str(folder), *_collected(request.session)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"torch reference process failed ({done.returncode}):\n{done.stderr[-6000:]}")
    return folder


@pytest.mark.parametrize(
    "backbone", [pytest.param(name, marks=[pytest.mark.slow] if name in HEAVY else []) for name in PORTABLE_BACKBONES]
)
def test_portable_backbone_gives_torch_features(
    backend: tlcore.Backend, backbone: str, torch_reference: Path, record_property: object
) -> None:
    registry = tlcore.load_plugins()
    if backbone not in registry.backbones_on(backend.name):
        pytest.skip(f"{backbone} is not provided on {backend.name}")
    spec = registry.backbone(backbone, backend.name)
    manifest = torch_reference / f"{backbone}.json"
    model = backend.build_model(
        spec, tlcore.HeadSpec(num_outputs=2), weights=str(manifest), seed=0, image_size=(SIZE, SIZE)
    )
    torch_layers = json.loads((torch_reference / f"{backbone}_layers.json").read_text())
    assert [[i.name, i.group, i.kind, i.num_params] for i in model.layers()] == torch_layers
    expected = np.load(torch_reference / f"{backbone}_features.npy")
    got = model.features(np.load(torch_reference / "images.npy"))
    assert got.shape == expected.shape == (2, 2, 2, spec.feature_channels)
    difference = float(np.abs(got - expected).max())
    print(f"{backend.name} {backbone}: max abs difference {difference:.2e} (features up to {expected.max():.2f})")
    record_property("max_abs_difference", difference)  # type: ignore[operator]
    assert float(np.abs(expected).max()) > 0.5, "the reference features are not trivially small"
    assert difference <= TOLERANCE


# ---------------------------------------------------------------- the torch process


def _randomize(native: Any, calibration: Any) -> None:
    """Random convolutions and BatchNorm affines; running statistics of ``calibration``, floored, then perturbed."""
    import torch
    from torch import nn

    module: nn.Module = native.module
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):  # fan-in scale keeps activations of order 1 (depthwise ones too)
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: the statistics of the whole calibration batch
        module.train()
        module(calibration)
        module.eval()
        for norm in norms:
            # A variance below 1 would amplify its channel, and float32 rounding with it: ResNet-50's features then
            # differ from float64 ones by 8e-4 in torch itself. With this floor they differ by under 3e-5.
            norm.running_var.clamp_(min=1.0)
            norm.running_mean.add_(torch.empty_like(norm.running_mean).uniform_(-0.1, 0.1))
            norm.running_var.mul_(torch.empty_like(norm.running_var).uniform_(0.8, 1.25))


def _make_reference(folder: Path, names: list[str]) -> None:
    import torch
    from tlcore_torch.backbones import build_backbone

    from tlcore.checkpoints import manifest_fields, write_neutral

    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, SIZE, SIZE, 3), dtype=np.float32)
    np.save(folder / "images.npy", images)
    calibration = torch.from_numpy(rng.standard_normal((4, 3, SIZE, SIZE), dtype=np.float32))
    for name in names:
        spec = tlcore.load_plugins().backbone(name, "torch")
        torch.manual_seed(zlib.crc32(name.encode()))  # the same weights whichever backbones are made
        native = build_backbone(spec, None)
        _randomize(native, calibration)
        state = {
            f"{info.name}.{key}": value.numpy().copy()
            for info, layer in native.layers
            for key, value in layer.state_dict().items()
        }
        fields = manifest_fields(spec, source="seeded random weights of test_portable_forward.py", license="none")
        write_neutral(folder / name, state, fields)
        with torch.no_grad():
            features = native.module(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        np.save(folder / f"{name}_features.npy", features.numpy())
        layers = [[i.name, i.group, i.kind, i.num_params] for i in native.layer_infos()]
        (folder / f"{name}_layers.json").write_text(json.dumps(layers))


if __name__ == "__main__":
    _make_reference(Path(sys.argv[1]), sys.argv[2:])
