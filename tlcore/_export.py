"""Exports for serving (``Model.export_onnx``, ``Model.export_saved_model``) and ``tlcore export``.

What every backend shares is here: the output path's checks (an existing
file or folder is replaced only on request), the install hint for a missing
converter, writing to a temporary path that is moved into place only when
complete, and the ONNX graph's input and output names (``images``,
``predictions``), which each framework's converter names its own way. The
backend writes the artifact (``Model._write_onnx``, ``Model._write_saved_model``).
Nothing here imports a framework; ``onnx`` is imported to rename the graph's
ends.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore._errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from tlcore._backend import Model

__all__ = [
    "EXPORT_HINT",
    "FORMATS",
    "ONNX_OPSET",
    "command_export",
    "configure_export",
    "finish_onnx",
    "name_onnx_ends",
    "write_export",
]

ONNX_OPSET = 18
"""The ONNX opset every backend's converter writes.

Left to each converter, the backends wrote three different opsets: their
defaults are 20 in torch 2.14 (``torch.onnx._constants.ONNX_DEFAULT_OPSET``,
also keras-torch's), 15 in tf2onnx 1.17 (``tf2onnx.constants.PREFERRED_OPSET``)
and 23 in jax2onnx 0.17 (``to_onnx(opset=23)``), so the same model exported
from two backends needed different runtimes. 18 is the newest that all of
them write (tf2onnx's ``OPSET_TO_IR_VERSION`` stops at 18).
"""

FORMATS = ("onnx", "saved_model")
EXPORT_HINT = "pip install 'tlcore[export]'"
INPUT_NAME = "images"
OUTPUT_NAME = "predictions"


def write_export(model: Model, format: str, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` in ``format`` (``onnx``: a file, ``saved_model``: a folder) to ``path``; return ``path``."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}.")
    target = Path(path)
    if target.exists() and not overwrite:
        raise CheckpointError(
            f"{str(target)!r} already exists: pass overwrite=True (tlcore export --overwrite) to replace it, or "
            "choose another path."
        )
    _check_requirements(model, format)
    if format == "onnx":
        if target.is_dir():
            raise CheckpointError(f"{str(target)!r} is a folder; an ONNX export is a file (for example model.onnx).")
        _write_file(target, lambda temporary: _onnx(model, temporary, target.name))
    else:
        if target.is_file():
            raise CheckpointError(f"{str(target)!r} is a file; a SavedModel is a folder.")
        _write_folder(target, model._write_saved_model)
    return target


def _check_requirements(model: Model, format: str) -> None:
    needed = model.export_requirements(format)
    missing = [package for module, package in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise CheckpointError(
            f"exporting {format} from {model.backend_name} needs {', '.join(missing)}, which is not installed. "
            f"Install it with: {EXPORT_HINT} (or pip install {' '.join(missing)})."
        )


def _onnx(model: Model, path: Path, final_name: str) -> None:
    model._write_onnx(path)
    finish_onnx(path, final_name)


def _write_file(target: Path, write: Any) -> None:
    """``write(temporary)`` beside ``target``, then the temporary file renamed to ``target``."""
    from tlcore._io import write_with

    write_with(target, write)


def _write_folder(target: Path, write: Any) -> None:
    """``write(folder)`` into a fresh folder beside ``target``, then that folder moved into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old: Path | None = None
    try:
        write(staging / "export")
        if target.exists():
            old = staging / "replaced"
            os.replace(target, old)
        os.replace(staging / "export", target)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old, target)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


ONNX_FILE_LIMIT = 2**31 - 1  # protobuf's limit on one message: larger models keep their weights beside the file


def finish_onnx(path: Path, final_name: str) -> None:
    """Name the graph's ends (:func:`name_onnx_ends`) and make ``path`` one self-contained file.

    Some converters (jax2onnx) write the weights to a side file named after
    the temporary one; they are read back into the graph and the side file
    removed. A model over 2 GiB keeps its weights in ``<final_name>.data``
    beside the file, the name it will have once renamed.
    """
    import onnx
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    side_files = {
        entry.value
        for tensor in model.graph.initializer
        if uses_external_data(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    }
    if side_files:
        onnx.load_external_data_for_model(model, str(path.parent))
    name_onnx_ends(model)
    if model.ByteSize() < ONNX_FILE_LIMIT:
        onnx.save(model, str(path))
    else:
        onnx.save(model, str(path), save_as_external_data=True, location=f"{final_name}.data")
    for name in side_files - {f"{final_name}.data"}:
        (path.parent / name).unlink(missing_ok=True)


def name_onnx_ends(model: Any) -> None:
    """Name an ONNX graph's one input ``images`` and its one output ``predictions``, wherever they are used."""
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise CheckpointError(
            f"the exported graph has {len(inputs)} inputs and {len(graph.output)} outputs; expected one of each."
        )
    renames = {inputs[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    renames = {old: new for old, new in renames.items() if old != new}
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]


# ---------------------------------------------------------------- tlcore export


def configure_export(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tlcore export``."""
    parser.add_argument(
        "model",
        help="a saved model: OUT/model.safetensors of `tlcore run` (or its folder OUT), a Model.save file, or a "
        "neutral model export (NAME.json)",
    )
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (every backend) or saved_model (Keras)")
    parser.add_argument("--out", required=True, help="the file (onnx) or folder (saved_model) to write")
    parser.add_argument(
        "--backend", default=None, help="the backend that loads and exports it (default: the one that saved it)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def _model_file(given: str) -> Path:
    path = Path(given)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise CheckpointError(
            f"no saved model at {given!r}: expected a file written by Model.save or `tlcore run` "
            "(OUT/model.safetensors), or a neutral model export (NAME.json)."
        )
    return path


def _saved_by(path: Path) -> str | None:
    """The backend that wrote ``path``, as its metadata records it."""
    from tlcore._checkpoint import read_checkpoint
    from tlcore.checkpoints import is_neutral_checkpoint, read_manifest

    if is_neutral_checkpoint(path):
        exported = read_manifest(path).get("exported_by") or {}
        backend = exported.get("backend") if isinstance(exported, dict) else None
    else:
        backend = read_checkpoint(path)[0].get("backend")
    return backend if isinstance(backend, str) else None


def command_export(args: argparse.Namespace) -> int:
    """``tlcore export``: a saved model to ONNX or a TensorFlow SavedModel."""
    from tlcore._backend import get_backend

    path = _model_file(args.model)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CheckpointError(f"{str(out)!r} already exists: pass --overwrite to replace it, or choose another --out.")
    name = args.backend or _saved_by(path) or "torch"
    model = get_backend(name).load_model(path)
    written = write_export(model, args.format, out, overwrite=args.overwrite)
    files = [f for f in written.rglob("*") if f.is_file()] if written.is_dir() else [written]
    size = sum(f.stat().st_size for f in files)
    print(
        f"exported {model.backbone.name} ({name}) as {args.format}: input {INPUT_NAME!r} NHWC float32 "
        f"(N, {model.image_size[0]}, {model.image_size[1]}, {model.backbone.input.channels}), preprocessed as the "
        f"backbone's spec says; output {OUTPUT_NAME!r} (the head's {model.head.output_activation} outputs)"
    )
    print(f"wrote {written} ({size / 1e6:.1f} MB)")
    return 0
