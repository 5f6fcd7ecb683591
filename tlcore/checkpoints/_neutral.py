"""The neutral backbone checkpoint: ``NAME.safetensors`` (the tensors) plus ``NAME.json`` (the manifest).

Tensors have canonical names and PyTorch layout, exactly the keys that
``Model.backbone_state()`` returns in every backend (``stem_conv.weight``,
``block2a_expand_bn.running_mean``); BatchNorm's ``num_batches_tracked``
counter, which only torch keeps, is never written. The manifest says what the
tensors are and how to feed them::

    {"format": "tlcore-neutral/1", "architecture": "efficientnet_lite0",
     "tensors_sha256": "...", "num_tensors": 248, "num_parameters": 3371...,
     "source": "...", "license": "...", "preprocessing": {...}, ...}

``tensors_sha256`` hashes the tensors, not the file, so the same weights give
the same hash whatever wrote them. Writing is atomic for the pair; reading
recomputes the hash and never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tlcore._errors import CheckpointError, ConfigError, WeightsError
from tlcore._io import write_with
from tlcore._specs import BackboneSpec, ImageInputSpec

__all__ = [
    "FORMAT",
    "MANIFEST_SUFFIX",
    "TENSORS_SUFFIX",
    "export_fields",
    "is_neutral_checkpoint",
    "manifest_fields",
    "neutral_paths",
    "neutral_state",
    "preprocessing_manifest",
    "read_manifest",
    "read_neutral",
    "tensors_sha256",
    "write_neutral",
]

FORMAT = "tlcore-neutral/1"
MANIFEST_SUFFIX = ".json"
TENSORS_SUFFIX = ".safetensors"
_COUNTER = "num_batches_tracked"
_STATISTICS = ("running_mean", "running_var", _COUNTER)
_COMPUTED = ("format", "tensors_sha256", "num_tensors", "num_parameters")
_REQUIRED = ("architecture", "source", "license", "preprocessing")
_HINT = "pip install safetensors"


def neutral_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(manifest, tensors)`` of the neutral checkpoint that ``path`` names.

    ``path`` is the manifest (``NAME.json``), the tensors (``NAME.safetensors``)
    or the bare ``NAME``, to which both suffixes are added.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix == MANIFEST_SUFFIX:
        return path, path.with_suffix(TENSORS_SUFFIX)
    if suffix == TENSORS_SUFFIX:
        return path.with_suffix(MANIFEST_SUFFIX), path
    return path.with_name(path.name + MANIFEST_SUFFIX), path.with_name(path.name + TENSORS_SUFFIX)


def is_neutral_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether a weights path names a neutral checkpoint.

    A ``.json`` file always does (weights have no other JSON form, so reading
    it reports what is wrong); a ``.safetensors`` file does when a manifest of
    this format lies next to it. Anything else is an ordinary weights file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == MANIFEST_SUFFIX:
        return True
    if suffix != TENSORS_SUFFIX:
        return False
    manifest = neutral_paths(path)[0]
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("tlcore-neutral/")


def _little_endian(array: Any) -> np.ndarray:
    array = np.asarray(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def neutral_state(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``state`` as written to a neutral checkpoint: C-contiguous little-endian arrays, without BatchNorm counters."""
    return {name: _little_endian(value) for name, value in state.items() if not name.endswith(_COUNTER)}


def tensors_sha256(state: Mapping[str, np.ndarray]) -> str:
    """The sha256 of a state's tensors, independent of dict order and file layout.

    For each name in sorted order the hash takes one line of JSON,
    ``{"dtype": "float32", "name": "stem_conv.weight", "shape": [32, 3, 3, 3]}``
    (keys sorted, default separators), a newline, then the tensor's
    C-contiguous little-endian bytes. Every tensor given is hashed; use
    :func:`neutral_state` first to hash what :func:`write_neutral` stores.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        array = _little_endian(state[name])
        header = json.dumps({"name": name, "dtype": array.dtype.name, "shape": list(array.shape)}, sort_keys=True)
        digest.update(header.encode("utf-8") + b"\n")
        digest.update(array.tobytes(order="C"))
    return digest.hexdigest()


def _num_parameters(state: Mapping[str, np.ndarray]) -> int:
    return sum(int(value.size) for name, value in state.items() if not name.endswith(_STATISTICS))


def preprocessing_manifest(spec: ImageInputSpec) -> dict[str, Any]:
    """The manifest's ``preprocessing`` block for a backbone input.

    Resizing is antialiased (as :func:`tlcore.data.resize` always is) and
    there is no crop: images are resized to ``input_size`` as a whole.
    """
    return {
        "input_size": list(spec.size),
        "channels": spec.channels,
        "resize": {"method": spec.resize, "antialias": True},
        "crop": None,
        "channel_order": spec.channel_order,
        "value_range": list(spec.value_range),
        "mean": list(spec.mean),
        "std": list(spec.std),
        "normalization": "(x - mean) / std per channel, after reordering to channel_order and scaling to value_range",
    }


def manifest_fields(spec: BackboneSpec, *, source: str, license: str) -> dict[str, Any]:
    """The manifest fields that describe ``spec``'s weights: architecture, source, license, preprocessing."""
    return {
        "architecture": spec.name,
        "source": source,
        "license": license,
        "preprocessing": preprocessing_manifest(spec.input),
    }


def write_neutral(path: str | os.PathLike[str], state: Mapping[str, Any], fields: Mapping[str, Any]) -> Path:
    """Write ``state`` as a neutral checkpoint and return the manifest's path.

    ``path`` is ``NAME``, ``NAME.json`` or ``NAME.safetensors``; both files are
    written. ``fields`` must hold ``architecture``, ``source``, ``license`` and
    ``preprocessing`` (see :func:`manifest_fields`) and may add more; the
    format, hash and counts are computed. Each file is written to a temporary
    file and renamed into place, the tensors before the manifest: if anything
    fails, no new or partial file is left and existing files are unchanged.
    """
    missing = [key for key in _REQUIRED if key not in fields]
    computed = [key for key in _COMPUTED if key in fields]
    if missing or computed:
        raise ConfigError(
            f"manifest fields: missing {missing or 'none'}, computed ones given {computed or 'none'}. "
            f"Give {', '.join(_REQUIRED)} (tlcore.checkpoints.manifest_fields builds them from a BackboneSpec)."
        )
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise CheckpointError(f"writing a neutral checkpoint needs safetensors: {_HINT}") from None
    arrays = neutral_state(state)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "architecture": fields["architecture"],
        "tensors_sha256": tensors_sha256(arrays),
        "num_tensors": len(arrays),
        "num_parameters": _num_parameters(arrays),
        **{key: value for key, value in fields.items() if key != "architecture"},
    }
    text = json.dumps(manifest, indent=2) + "\n"
    manifest_file, tensors_file = neutral_paths(path)

    def write_pair(temporary_manifest: Path) -> None:
        temporary_manifest.write_text(text, encoding="utf-8")
        write_with(tensors_file, lambda temporary: save_file(arrays, str(temporary)))

    try:
        return write_with(manifest_file, write_pair)
    except OSError as exc:
        raise CheckpointError(f"cannot write neutral checkpoint {str(manifest_file)!r}: {exc}") from None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the neutral checkpoint that ``path`` names, checked for format and fields (no tensors read)."""
    manifest_file, tensors_file = neutral_paths(path)
    if not manifest_file.is_file():
        raise WeightsError(
            f"no manifest {str(manifest_file)!r} for neutral checkpoint {str(Path(path))!r}: a neutral checkpoint is "
            f"the pair {manifest_file.name} + {tensors_file.name} (write it with tlcore convert or "
            "Model.export_backbone)."
        )
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"cannot read manifest {str(manifest_file)!r} as JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise WeightsError(f"{str(manifest_file)!r} has format {found!r}; expected a {FORMAT!r} manifest.")
    missing = [key for key in (*_COMPUTED, *_REQUIRED) if key not in manifest]
    if missing:
        raise WeightsError(f"manifest {str(manifest_file)!r} lacks {', '.join(missing)}.")
    return manifest


def read_neutral(
    path: str | os.PathLike[str], *, architecture: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(manifest, tensors)`` of a neutral checkpoint, its tensors checked against the manifest's sha256.

    ``path`` is the manifest, the tensors or the bare name. With
    ``architecture``, a checkpoint of another architecture is refused.
    WeightsError says what is missing, wrong or changed.
    """
    manifest = read_manifest(path)
    manifest_file, tensors_file = neutral_paths(path)
    if architecture is not None and manifest["architecture"] != architecture:
        raise WeightsError(
            f"{str(manifest_file)!r} holds {manifest['architecture']!r} weights, not {architecture!r} ones."
        )
    from tlcore.weights import read_safetensors  # safetensors only: nothing is unpickled

    if not tensors_file.is_file():
        raise WeightsError(f"manifest {str(manifest_file)!r} has no tensors file {str(tensors_file)!r} next to it.")
    tensors = read_safetensors(tensors_file)
    actual = tensors_sha256(tensors)
    if actual != manifest["tensors_sha256"]:
        raise WeightsError(
            f"the tensors in {str(tensors_file)!r} do not match their manifest {str(manifest_file)!r}: expected "
            f"tensors_sha256 {manifest['tensors_sha256']}, got {actual}. The file was changed or the pair mixed up; "
            "convert or export it again."
        )
    return manifest, tensors


def export_fields(
    spec: BackboneSpec, weights: str | None, weights_sha256: str | None, *, backend: str
) -> dict[str, Any]:
    """Manifest fields for a backbone exported by a model built with ``weights``.

    Source and license come from where the weights came from: the registered
    :class:`~tlcore.WeightsSource` of a named weight, the manifest of a neutral
    checkpoint, else the file's name ("unknown" license). ``exported_by``
    records the backend and the weights the model was built with; the tensors
    are the model's current ones, trained or not.
    """
    registered = spec.weights_source(weights) if weights is not None else None
    if weights is None:
        source, license = "random initialisation", "not applicable (random weights)"
    elif registered is not None:
        source, license = registered.source, registered.license
    else:
        try:
            origin = read_manifest(weights) if is_neutral_checkpoint(weights) else None
        except WeightsError:
            origin = None
        if origin is not None:
            source, license = str(origin["source"]), str(origin["license"])
        else:
            source, license = f"weights file {Path(weights).name}", "unknown"
    fields = manifest_fields(spec, source=source, license=license)
    fields["exported_by"] = {"backend": backend, "weights": weights, "weights_sha256": weights_sha256}
    return fields
