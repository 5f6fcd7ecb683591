"""Converting framework checkpoints to neutral ones (what ``tlcore convert`` runs).

Every registered architecture whose spec's ``state_dict`` layout is
convertible is understood, read without any framework: the state dict is
renamed to the canonical names by the spec's ``rename`` (EfficientNet-Lite0's
reference layout, ``_blocks.3._bn1.weight``, becomes ``block2b_bn.weight``),
its classifier (the spec's ``drop_prefixes``: ``fc.``, ``classifier.``,
``AuxLogits.`` for torchvision's models) dropped, and its keys checked when
the spec lists them. ``imagenet:<architecture>`` names the spec's registered
ImageNet file: a package's (efficientnet_lite0), or torchvision's, from torch
hub's copy or a download into tlcore's cache, checked against its sha256.

A neutral checkpoint is accepted too (hash and architecture checked). Source
and license come from its manifest, or from the registered backbone spec when
the file is the one it describes; else the file is named and the license is
"unknown" unless the caller states them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlcore._errors import ConfigError, UnknownBackboneError, WeightsError
from tlcore._specs import BackboneSpec
from tlcore.checkpoints._neutral import (
    is_neutral_checkpoint,
    manifest_fields,
    neutral_paths,
    neutral_state,
    read_manifest,
    read_neutral,
    write_neutral,
)
from tlcore.weights import file_sha256, mismatch_problems, read_weights_file, sha256_in_name, torch_hub_dir

__all__ = ["IMAGENET_PREFIX", "ConvertResult", "convert_checkpoint", "convertible"]

IMAGENET_PREFIX = "imagenet:"
_DEFAULT_ARCHITECTURE = "efficientnet_lite0"


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_checkpoint` wrote."""

    manifest: Path
    tensors: Path
    architecture: str
    tensors_sha256: str
    num_tensors: int
    num_parameters: int
    dropped: tuple[str, ...]
    """The source's classifier tensors, which a backbone checkpoint leaves out."""


def convertible() -> dict[str, BackboneSpec]:
    """The architectures :func:`convert_checkpoint` handles: every registered spec whose state dicts convert."""
    from tlcore.plugins import load_plugins

    return {
        name: entry.item
        for name, entry in sorted(load_plugins().backbones.items())
        if entry.item.state_dict.convertible
    }


def _downloadable(spec: BackboneSpec) -> bool:
    imagenet = spec.weights_source("imagenet")
    return imagenet is not None and (imagenet.url is not None or imagenet.locate is not None)


def _canonical(
    spec: BackboneSpec, state: Mapping[str, np.ndarray], where: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The backbone's tensors under canonical names, and the classifier keys left out."""
    from tlcore.extend import canonical_state
    from tlcore.plugins import import_object

    layout = spec.state_dict
    dropped = sorted(key for key in state if key.startswith(layout.drop_prefixes))
    backbone = neutral_state(canonical_state(spec, state))
    if layout.keys:
        expected = set(import_object(layout.keys, what=f"the tensor keys of {spec.name!r}")())
        problems = mismatch_problems(sorted(expected - backbone.keys()), sorted(backbone.keys() - expected), [])
        if problems:
            raise WeightsError(
                f"{where} is not a {spec.name} state dict: {'; '.join(problems)}. Expected its reference checkpoint "
                f"or canonical names (such as {sorted(expected)[0]!r})."
            )
    return backbone, dropped


def _provenance(spec: BackboneSpec, path: Path, digest: str) -> tuple[str, str]:
    """Source and license of ``path`` when it is the file ``spec`` registers, else ``(file name, "unknown")``."""
    imagenet = spec.weights_source("imagenet")
    if imagenet is not None and imagenet.sha256 == digest:
        return imagenet.source, imagenet.license
    # torch.hub names downloads <name>-<first hex digits of their sha256>.pth and checks that prefix.
    prefix = sha256_in_name(path.name)
    if imagenet is not None and imagenet.provider == "torchvision" and prefix and digest.startswith(prefix):
        return f"torchvision {spec.name} checkpoint {path.name}", imagenet.license
    return f"file {path.name}", "unknown"


def _resolve(source: str | os.PathLike[str], architecture: str | None) -> tuple[str, Path]:
    """``(architecture, file)`` of a convert source."""
    from tlcore.extend import named_weights_file

    specs = convertible()
    text = os.fspath(source)
    if text.startswith(IMAGENET_PREFIX):
        name = text.removeprefix(IMAGENET_PREFIX)
        if architecture is not None and architecture != name:
            raise ConfigError(f"source {text!r} is {name!r} weights, but --architecture is {architecture!r}.")
        if name not in specs or not _downloadable(specs[name]):
            named = [f"{IMAGENET_PREFIX}{n}" for n, spec in specs.items() if _downloadable(spec)]
            raise UnknownBackboneError(text, named, where="tlcore convert")
        # A package's file, or torch hub's copy if torch downloaded it already, else a download; hash-checked.
        return name, named_weights_file(specs[name], "imagenet", search=(torch_hub_dir(),))
    name = architecture or _DEFAULT_ARCHITECTURE
    if name not in specs:
        raise UnknownBackboneError(name, specs, where="tlcore convert")
    path = Path(text).expanduser()
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "does not exist"
        raise WeightsError(
            f"checkpoint {text!r} {what}. Pass a .pth/.pt/.bin/.safetensors state dict, or "
            f"{IMAGENET_PREFIX}<architecture> for its registered ImageNet weights."
        )
    return name, path


def convert_checkpoint(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    architecture: str | None = None,
    source_description: str | None = None,
    license: str | None = None,
) -> ConvertResult:
    """Convert ``source`` to the neutral checkpoint ``out`` (``OUT.safetensors`` + ``OUT.json``).

    ``source`` is a state dict file (``.pth``, ``.pt``, ``.bin``,
    ``.safetensors``) of ``architecture`` (default ``efficientnet_lite0``), or
    ``imagenet:<architecture>`` (its registered ImageNet file: efficientnet_lite0's
    package file, torchvision's download). ``source_description`` and ``license`` replace
    what the manifest would otherwise say about the file's origin.
    """
    name, path = _resolve(source, architecture)
    spec = convertible()[name]
    where = f"checkpoint {str(path)!r}"
    origin_manifest: dict[str, object] = {}
    if is_neutral_checkpoint(path):  # already neutral: checked, and its source and license kept
        origin_manifest, state = read_neutral(path, architecture=name)
    else:
        state = read_weights_file(path)
    if state and all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key.removeprefix("module."): value for key, value in state.items()}
    tensors, dropped = _canonical(spec, state, where)
    if not tensors:
        raise WeightsError(f"{where} holds no backbone tensors (only {', '.join(dropped) or 'nothing'}).")
    digest = file_sha256(path)
    origin, terms = _provenance(spec, path, digest)
    origin = str(origin_manifest.get("source", origin))
    terms = str(origin_manifest.get("license", terms))
    fields = manifest_fields(spec, source=source_description or origin, license=license or terms)
    fields["source_file"] = {"name": path.name, "sha256": digest}
    manifest_file = write_neutral(out, tensors, fields)
    manifest = read_manifest(manifest_file)
    return ConvertResult(
        manifest=manifest_file,
        tensors=neutral_paths(manifest_file)[1],
        architecture=name,
        tensors_sha256=str(manifest["tensors_sha256"]),
        num_tensors=int(manifest["num_tensors"]),
        num_parameters=int(manifest["num_parameters"]),
        dropped=tuple(dropped),
    )
