"""Keras backbones build, name and group their layers, take BatchNorm values from the spec, and convert layouts.

Each Keras backend runs in a process of its own: this file is also the script
those processes run (``python test_backbones.py BACKEND OUT.json NAME...``),
which builds the named backbones with random weights and reports what it
found as JSON. Building is slow on keras-jax (its initializers compile per
shape: ~25 s for EfficientNet-B0 alone), so the quick run builds every
backbone on keras-torch and a few elsewhere; the rest are marked slow. The
probes run on the CPU (``CUDA_VISIBLE_DEVICES=""``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.processes import framework_env

KERAS_FRAMEWORKS = {"keras-jax": "jax", "keras-tensorflow": "tensorflow", "keras-torch": "torch"}
PORTABLE = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_lite0")
APPLICATIONS = (
    "keras_resnet50",
    "keras_mobilenet_v2",
    "keras_vgg16",
    "keras_xception",
    "keras_efficientnet_b0",
    "keras_inception_v3",
)
BACKBONES = (*PORTABLE, *APPLICATIONS)
# What the quick run builds per backend; the first also runs the layout and weights checks.
QUICK = {
    "keras-torch": ("efficientnet_lite0", *(name for name in BACKBONES if name != "efficientnet_lite0")),
    # efficientnet_b0: its Normalization refresh shows on TensorFlow.
    "keras-tensorflow": ("efficientnet_lite0", "keras_vgg16", "keras_efficientnet_b0", "resnet18", "mobilenet_v2"),
    "keras-jax": ("keras_vgg16", "resnet18"),
}
ROOT = Path(__file__).resolve().parents[2]


def _missing(backend: str) -> list[str]:
    return [m for m in ("keras", KERAS_FRAMEWORKS[backend]) if importlib.util.find_spec(m) is None]


def _cases() -> list[Any]:
    return [
        pytest.param(backend, name, marks=() if name in QUICK[backend] else pytest.mark.slow, id=f"{backend}-{name}")
        for backend in KERAS_FRAMEWORKS
        for name in BACKBONES
    ]


class Probes:
    """Runs one process per (backend, quick or slow) batch of backbones, on first use, and keeps its report."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.reports: dict[tuple[str, bool], dict[str, Any]] = {}

    def report(self, backend: str, name: str) -> dict[str, Any]:
        missing = _missing(backend)
        if missing:
            pytest.skip(f"needs {', '.join(missing)}")
        quick = name in QUICK[backend]
        if (backend, quick) not in self.reports:
            names = [n for n in BACKBONES if (n in QUICK[backend]) == quick]
            out = self.folder / f"{backend}-{'quick' if quick else 'slow'}.json"
            env = framework_env(self.folder / "keras_home")
            command = [sys.executable, __file__, backend, str(out), *names]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise AssertionError(f"{backend} probe failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
            self.reports[(backend, quick)] = json.loads(out.read_text())
        return self.reports[(backend, quick)]


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Probes:
    return Probes(tmp_path_factory.mktemp("keras_backbones"))


@pytest.mark.parametrize(("backend", "name"), _cases())
def test_backbone_builds_with_spec_values(backend: str, name: str, probes: Probes) -> None:
    found = probes.report(backend, name)["backbones"][name]
    print(f"{backend} {name}: built in {found['build_s']:.2f} s, {len(found['layers'])} layers")
    assert found["features"][-1] == found["feature_channels"]
    assert found["features"][0] == 1 and min(found["features"][1:3]) >= 1
    assert found["dtype"] == "float32"
    names = [layer["name"] for layer in found["layers"]]
    assert len(names) == len(set(names)), "layer names are unique"
    assert all(layer["kind"] in {"conv", "depthwise_conv", "batchnorm", "dense", "other"} for layer in found["layers"])
    groups = [layer["group"] for layer in found["layers"]]
    assert set(groups) == set(found["groups"]), "every declared group holds a layer, and no other group exists"
    order = [found["groups"].index(g) for g in groups]
    assert order == sorted(order), "groups follow the forward order"
    assert found["bn_mismatches"] == []
    assert found["non_contiguous_auto_names"] == {}, "automatic names are numbered from zero"
    assert found["round_trip_exact"], found["round_trip_problems"]
    assert found["stale_after_loading"] == []


@pytest.mark.parametrize("backend", sorted(KERAS_FRAMEWORKS))
def test_layout_conversions_and_strict_loading(backend: str, probes: Probes) -> None:
    checks = probes.report(backend, QUICK[backend][0])["checks"]
    assert checks["dense_matches_torch_linear"]
    assert checks["depthwise_multiplier_matches_grouped_conv"]
    assert checks["depthwise_multiplier_round_trip"]
    message = checks["strict_error"]
    assert "WeightsError" in message
    assert "missing" in message and repr(checks["dropped_key"]) in message
    assert "unexpected" in message and "'not_a_layer.weight'" in message
    assert "shape mismatch" in message and repr(checks["reshaped_key"]) in message
    assert checks["unchanged_after_error"], "nothing is assigned when loading fails"


@pytest.mark.parametrize("backend", sorted(KERAS_FRAMEWORKS))
def test_weights_from_files_names_and_errors(backend: str, probes: Probes) -> None:
    checks = probes.report(backend, QUICK[backend][0])["weights"]
    assert checks["keras_h5_file"], "a .weights.h5 file saved from the backbone loads back"
    assert checks["safetensors_file"], "a torch-layout .safetensors file with canonical names loads"
    assert checks["lite0_package_file"], "the package's .pth, passed as a path, loads like 'imagenet'"
    assert checks["lite0_canonical_file"]
    assert "stem_conv.weight" in checks["lite0_keys"] and "block2a_dwconv.weight" in checks["lite0_keys"]
    assert "top_bn.running_var" in checks["lite0_keys"] and len(checks["lite0_keys"]) == 245
    download = checks["imagenet_download"]
    assert download == "no error" or (
        download.startswith("WeightsError") and "weights='/path/to/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'"
        in download
    )  # fmt: skip
    assert checks["misspelt_name"].startswith("WeightsError") and "Did you mean 'imagenet'?" in checks["misspelt_name"]
    assert checks["missing_file"].startswith("WeightsError") and "does not exist" in checks["missing_file"]
    assert checks["too_small"].startswith("ConfigError") and "at least 71x71" in checks["too_small"]
    portable = checks["torchvision_imagenet"]
    assert portable["loaded"], "'imagenet' (a file:// URL here) is downloaded, verified, and loaded without fc"
    assert portable["cached"] and portable["weights_file_in_cache"]
    assert portable["second_build_reads_cache"]
    tampered = portable["tampered"]
    assert tampered.startswith("WeightsError") and "resnet18-00000000.safetensors" in tampered
    assert "should start with 00000000" in tampered and portable["tampered_sha256"] in tampered
    assert portable["no_partial_files"]
    offline = portable["offline"]
    assert offline.startswith("WeightsError") and "cannot download" in offline
    assert "weights='/path/to/resnet18-deadbeef.pth'" in offline
    assert portable["torchvision_pth_like_file"], "a state dict file with fc.* keys loads, fc dropped"
    assert portable["conv_std"] == pytest.approx(portable["torch_conv_std"], rel=0.05)
    assert portable["depthwise_std"] == pytest.approx(portable["torch_depthwise_std"], rel=0.05)
    if "b0_folded_variance" in checks:
        assert np.allclose(checks["b0_folded_variance"], np.array([0.229, 0.224, 0.225]) ** 2)


# ---------------------------------------------------------------- the probe process


def _auto_name_gaps(names: list[str]) -> dict[str, list[int]]:
    """Automatic names (``conv2d``, ``conv2d_3``) whose numbers are not exactly 0..n-1."""
    numbers: dict[str, list[int]] = {}
    for name in names:
        match = re.fullmatch(r"(conv2d|batch_normalization|activation|add|max_pooling2d|average_pooling2d|"
                             r"rescaling|normalization|input_layer|concatenate|dense)(?:_(\d+))?", name)  # fmt: skip
        if match:
            numbers.setdefault(match.group(1), []).append(int(match.group(2) or 0))
    return {k: sorted(v) for k, v in numbers.items() if sorted(v) != list(range(len(v)))}


def _probe_backbone(spec: Any, keras: Any) -> dict[str, Any]:
    from tlcore_keras.backbones import build_backbone
    from tlcore_keras.layout import keras_layer_state, load_torch_layout_state

    side = max(spec.input.min_size, 32)
    start = time.perf_counter()
    backbone = build_backbone(spec, None, (side, side))
    build_s = time.perf_counter() - start
    features = keras.ops.convert_to_numpy(backbone.model(np.zeros((1, side, side, 3), np.float32), training=False))
    bn_mismatches = [
        layer.name
        for layer in backbone.model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and (layer.epsilon != spec.bn_epsilon or abs(layer.momentum - (1 - spec.bn_momentum)) > 1e-12)
    ]
    state = {k: v for info, layer in backbone.layers for k, v in keras_layer_state(layer, info).items()}
    rng = np.random.default_rng(0)
    fresh = {
        k: (rng.normal(size=v.shape) if v.dtype.kind == "f" else rng.integers(0, 100, size=v.shape)).astype(v.dtype)
        for k, v in state.items()
    }
    load_torch_layout_state(backbone.layers, fresh)
    back = {k: v for info, layer in backbone.layers for k, v in keras_layer_state(layer, info).items()}
    stale = [  # Normalization computes from its variables once; loading must refresh it
        layer.name
        for _, layer in backbone.layers
        if isinstance(layer, keras.layers.Normalization)
        and not np.array_equal(
            keras.ops.convert_to_numpy(layer.variance).ravel(), keras.ops.convert_to_numpy(layer.adapt_variance)
        )
    ]
    problems = [
        k for k in fresh if k not in back or back[k].shape != fresh[k].shape or not np.array_equal(back[k], fresh[k])
    ]
    return {
        "build_s": build_s,
        "features": list(features.shape),
        "dtype": str(features.dtype),
        "feature_channels": spec.feature_channels,
        "groups": list(spec.groups),
        "layers": [{"name": i.name, "group": i.group, "kind": i.kind} for i, _ in backbone.layers],
        "bn_mismatches": bn_mismatches,
        "non_contiguous_auto_names": _auto_name_gaps([layer.name for layer in backbone.model.layers]),
        "round_trip_exact": not problems and set(back) == set(fresh) and all("." in k for k in state),
        "round_trip_problems": problems[:5],
        "stale_after_loading": stale,
    }


def _layout_checks(spec: Any, keras: Any) -> dict[str, Any]:
    from tlcore_keras.backbones import build_backbone
    from tlcore_keras.layout import keras_layer_state, keras_to_torch, load_torch_layout_state, torch_to_keras

    from tlcore import LayerInfo, WeightsError

    rng = np.random.default_rng(1)
    checks: dict[str, Any] = {}
    x = rng.normal(size=(2, 4)).astype(np.float32)
    dense = keras.layers.Dense(3)
    expected = keras.ops.convert_to_numpy(dense(x))
    linear = keras_layer_state(dense, LayerInfo("fc", "top", "dense"))
    checks["dense_matches_torch_linear"] = bool(
        np.allclose(x @ linear["fc.weight"].T + linear["fc.bias"], expected, atol=1e-5)
    )
    images = rng.normal(size=(1, 5, 5, 4)).astype(np.float32)
    depthwise = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)
    expected = keras.ops.convert_to_numpy(depthwise(images))[0]  # (3, 3, 8)
    weight = keras_to_torch("depthwise_conv", "weight", keras.ops.convert_to_numpy(depthwise.kernel))  # (8, 1, 3, 3)
    grouped = np.zeros((3, 3, 8), np.float32)  # torch's groups=4 convolution: output o reads input o // 2
    for o in range(8):
        for i in range(3):
            for j in range(3):
                grouped[i, j, o] = np.sum(images[0, i : i + 3, j : j + 3, o // 2] * weight[o, 0])
    checks["depthwise_multiplier_matches_grouped_conv"] = bool(np.allclose(grouped, expected, atol=1e-5))
    kernel = keras.ops.convert_to_numpy(depthwise.kernel)
    again = torch_to_keras("depthwise_conv", "weight", weight, keras_shape=kernel.shape)
    checks["depthwise_multiplier_round_trip"] = bool(np.array_equal(again, kernel))

    backbone = build_backbone(spec, None, (32, 32))
    state = {k: v for info, layer in backbone.layers for k, v in keras_layer_state(layer, info).items()}
    keys = list(state)
    checks["dropped_key"], checks["reshaped_key"] = keys[0], keys[-1]
    bad = {k: v for k, v in state.items() if k != keys[0]}
    bad[keys[-1]] = np.zeros((*state[keys[-1]].shape, 2), np.float32)
    bad["not_a_layer.weight"] = np.zeros(3, np.float32)
    bad[keys[1]] = state[keys[1]] + 1.0  # would change if anything were assigned
    try:
        load_torch_layout_state(backbone.layers, bad)
        checks["strict_error"] = "no error"
    except WeightsError as exc:
        checks["strict_error"] = f"WeightsError: {exc}"
    after = {k: v for info, layer in backbone.layers for k, v in keras_layer_state(layer, info).items()}
    checks["unchanged_after_error"] = all(np.array_equal(after[k], state[k]) for k in state)
    return checks


def _state(backbone: Any) -> dict[str, np.ndarray]:
    from tlcore_keras.layout import keras_layer_state

    return {k: v for info, layer in backbone.layers for k, v in keras_layer_state(layer, info).items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _error(call: Any) -> str:
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def _weights_checks(specs: dict[str, Any], keras: Any, folder: Path, names: list[str]) -> dict[str, Any]:
    """Named, file and bad weights: vgg16 and efficientnet_lite0 everywhere, efficientnet_b0 where it is built."""
    from safetensors.numpy import save_file
    from tlcore_keras.backbones import build_backbone
    from tlcore_keras.efficientnet_lite import reference_weights_path

    checks: dict[str, Any] = {}
    vgg = specs["keras_vgg16"]
    random = build_backbone(vgg, None, (32, 32))
    random.model.save_weights(str(folder / "vgg.weights.h5"))
    save_file(_state(random), str(folder / "vgg.safetensors"))
    checks["keras_h5_file"] = _same(_state(build_backbone(vgg, folder / "vgg.weights.h5", (32, 32))), _state(random))
    checks["safetensors_file"] = _same(
        _state(build_backbone(vgg, folder / "vgg.safetensors", (32, 32))), _state(random)
    )
    checks["imagenet_download"] = _error(lambda: build_backbone(vgg, "imagenet", (32, 32)))
    checks["misspelt_name"] = _error(lambda: build_backbone(vgg, "imagenett", (32, 32)))
    checks["missing_file"] = _error(lambda: build_backbone(vgg, str(folder / "nope.safetensors"), (32, 32)))
    checks["too_small"] = _error(lambda: build_backbone(specs["keras_xception"], None, (64, 64)))

    lite = specs["efficientnet_lite0"]
    imagenet = _state(build_backbone(lite, "imagenet", (32, 32)))
    from_package_file = _state(build_backbone(lite, reference_weights_path(), (32, 32)))
    save_file(imagenet, str(folder / "lite.safetensors"))
    checks["lite0_package_file"] = _same(from_package_file, imagenet)
    checks["lite0_canonical_file"] = _same(
        _state(build_backbone(lite, folder / "lite.safetensors", (32, 32))), imagenet
    )
    checks["lite0_keys"] = sorted(imagenet)

    checks["torchvision_imagenet"] = _torchvision_weights_checks(specs["resnet18"], keras, folder)

    if "keras_efficientnet_b0" in names:  # keras.applications' file stores the std as variance; it is folded on load
        import h5py
        from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

        b0 = build_backbone(specs["keras_efficientnet_b0"], None, (32, 32))
        b0.model.get_layer("normalization").adapt_variance.assign(np.array([0.229, 0.224, 0.225], np.float32))
        with h5py.File(folder / "efficientnetb0_notop.h5", "w") as handle:
            save_weights_to_hdf5_group(handle, b0.model)
        loaded = build_backbone(specs["keras_efficientnet_b0"], folder / "efficientnetb0_notop.h5", (32, 32))
        variance = keras.ops.convert_to_numpy(loaded.model.get_layer("normalization").adapt_variance)
        checks["b0_folded_variance"] = variance.tolist()
    return checks


def _torchvision_weights_checks(spec: Any, keras: Any, folder: Path) -> dict[str, Any]:
    """A portable ResNet-18's "imagenet" weights from a file:// URL: verified, cached, refused when tampered."""
    import dataclasses
    import hashlib

    from safetensors.numpy import save_file
    from tlcore_keras.backbones import build_backbone
    from tlcore_keras.torchvision_models import mobilenet_v2

    checks: dict[str, Any] = {}
    folder = folder / f"torchvision-{keras.backend.backend()}"  # the probes of every backend share the parent
    folder.mkdir()
    os.environ["TLCORE_CACHE"] = str(folder / "tlcore_cache")
    os.environ["TORCH_HOME"] = str(folder / "torch_home")  # no torch hub copy to find
    random = build_backbone(spec, None, (32, 32))
    expected = _state(random)
    classifier = {"fc.weight": np.zeros((1000, 512), np.float32), "fc.bias": np.zeros(1000, np.float32)}
    upstream = folder / "upstream"
    upstream.mkdir()
    save_file({**expected, **classifier}, str(upstream / "r18.safetensors"))
    data = (upstream / "r18.safetensors").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    good = upstream / f"resnet18-{digest[:8]}.safetensors"
    good.write_bytes(data)

    def with_url(url: str) -> Any:
        return dataclasses.replace(spec, weights=(dataclasses.replace(spec.weights[0], url=url),))

    loaded = build_backbone(with_url(good.as_uri()), "imagenet", (32, 32))
    cached = folder / "tlcore_cache" / "weights" / good.name
    checks["loaded"] = _same(_state(loaded), expected)
    checks["cached"] = cached.is_file()
    checks["weights_file_in_cache"] = loaded.weights_file == cached
    good.unlink()  # the upstream is gone: the cache serves
    checks["second_build_reads_cache"] = _same(
        _state(build_backbone(with_url(good.as_uri()), "imagenet", (32, 32))), expected
    )
    tampered = upstream / "resnet18-00000000.safetensors"
    tampered.write_bytes(data)
    checks["tampered"] = _error(lambda: build_backbone(with_url(tampered.as_uri()), "imagenet", (32, 32)))
    checks["tampered_sha256"] = digest
    checks["no_partial_files"] = sorted(p.name for p in cached.parent.iterdir()) == [cached.name]
    missing = (folder / "nowhere" / "resnet18-deadbeef.pth").as_uri()
    checks["offline"] = _error(lambda: build_backbone(with_url(missing), "imagenet", (32, 32)))
    checks["torchvision_pth_like_file"] = _same(
        _state(build_backbone(spec, upstream / "r18.safetensors", (32, 32))), expected
    )
    conv = keras.ops.convert_to_numpy(random.model.get_layer("layer1_0_conv1").kernel)  # (3, 3, 64, 64)
    checks["conv_std"], checks["torch_conv_std"] = float(conv.std()), float(np.sqrt(2 / (9 * 64)))
    model, _ = mobilenet_v2(dataclasses.replace(spec, name="mobilenet_v2"), (32, 32))
    depthwise = keras.ops.convert_to_numpy(model.get_layer("features_13_conv_1_0").kernel)  # (3, 3, 576, 1)
    checks["depthwise_std"], checks["torch_depthwise_std"] = float(depthwise.std()), float(np.sqrt(2 / (9 * 576)))
    return checks


def _probe_main(backend: str, out: Path, names: list[str]) -> None:
    os.environ["KERAS_BACKEND"] = KERAS_FRAMEWORKS[backend]
    import keras

    import tlcore

    # No keras.utils.set_random_seed: it imports TensorFlow whenever it is installed, whatever the backend.
    # Unnamed layers made before the backbones shift Keras's automatic numbering; names must not depend on it.
    _ = [
        keras.layers.Conv2D(1, 1),
        keras.layers.BatchNormalization(),
        keras.layers.Add(),
        keras.layers.Activation("relu"),
    ]
    registry = tlcore.load_plugins()
    specs = {name: registry.backbone(name, backend) for name in registry.backbones_on(backend)}
    report = {"backbones": {name: _probe_backbone(specs[name], keras) for name in names}}
    if QUICK[backend][0] in names:
        report["checks"] = _layout_checks(specs[QUICK[backend][0]], keras)
        report["weights"] = _weights_checks(specs, keras, out.parent, names)
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    _probe_main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
