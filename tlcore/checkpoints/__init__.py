"""Neutral backbone checkpoints: one set of weights that every backend loads.

A neutral checkpoint is a pair of files: ``NAME.safetensors``, the tensors
under canonical names in PyTorch layout (the keys of ``Model.backbone_state()``),
and ``NAME.json``, a manifest with the format, architecture, a sha256 of the
tensors, their source and license, and the preprocessing they expect.

    >>> from tlcore.checkpoints import read_neutral, convert_checkpoint
    >>> result = convert_checkpoint("imagenet:efficientnet_lite0", "weights/lite0")  # lite0.json + lite0.safetensors
    >>> manifest, state = read_neutral(result.manifest)  # WeightsError if a tensor was changed

Backends accept either file of the pair as ``weights=``, and
``Model.export_backbone(path)`` writes one from any backend. Only numpy and,
when a file is read or written, safetensors are imported: never a framework.
"""

from __future__ import annotations

from tlcore.checkpoints._convert import (
    IMAGENET_PREFIX,
    ConvertResult,
    convert_checkpoint,
    convertible,
)
from tlcore.checkpoints._neutral import (
    FORMAT,
    MANIFEST_SUFFIX,
    TENSORS_SUFFIX,
    export_fields,
    is_neutral_checkpoint,
    manifest_fields,
    neutral_paths,
    neutral_state,
    preprocessing_manifest,
    read_manifest,
    read_neutral,
    tensors_sha256,
    write_neutral,
)

__all__ = [
    "FORMAT",
    "IMAGENET_PREFIX",
    "MANIFEST_SUFFIX",
    "TENSORS_SUFFIX",
    "ConvertResult",
    "convert_checkpoint",
    "convertible",
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
