"""Reading, checking and loading backbone weights: named, from a file, or from torchvision."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
from torch import nn

from tlcore import BackboneSpec, WeightsError
from tlcore.checkpoints import is_neutral_checkpoint, read_neutral
from tlcore.weights import file_sha256, mismatch_problems
from tlcore.weights import resolve_weights as resolve_any_weights

__all__ = ["load_backbone_state", "read_state_dict", "resolve_weights", "torchvision_state_dict", "weights_sha256"]

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".safetensors")
StateDict = dict[str, torch.Tensor]


weights_sha256 = file_sha256  # the sha256 of a weights file's bytes, for the record


# ---------------------------------------------------------------- weights


def resolve_weights(
    spec: BackboneSpec, weights: str | os.PathLike[str] | None
) -> tuple[Literal["none", "named", "file"], str | Path | None]:
    """Say what ``weights`` means for ``spec`` (see :func:`tlcore.weights.resolve_weights`)."""
    return resolve_any_weights(spec, weights, suffixes=WEIGHT_FILE_SUFFIXES)


def read_state_dict(path: str | os.PathLike[str], *, architecture: str | None = None) -> StateDict:
    """Read tensors from a ``.pth``/``.pt`` (``weights_only``) or ``.safetensors`` file onto the CPU.

    A neutral checkpoint (its ``.json`` manifest, or its ``.safetensors`` with
    the manifest next to it) is read through :func:`tlcore.checkpoints.read_neutral`,
    which checks the tensors' sha256 and, given ``architecture``, the manifest's.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist.")
    if is_neutral_checkpoint(path):
        _, arrays = read_neutral(path, architecture=architecture)
        return {name: torch.from_numpy(array.copy()) for name, array in arrays.items()}
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(path), device="cpu")
        elif suffix in (".pth", ".pt"):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise WeightsError(
                f"weights file {str(path)!r} has suffix {suffix or '(none)'!r}; expected one of "
                f"{', '.join(WEIGHT_FILE_SUFFIXES)} (a torch state dict or a safetensors file)."
            )
    except ImportError as exc:
        raise WeightsError(f"reading {str(path)!r} needs safetensors: pip install safetensors ({exc})") from exc
    except WeightsError:
        raise
    except Exception as exc:  # torch.load raises pickle, zip and runtime errors alike
        raise WeightsError(
            f"cannot read weights from {str(path)!r}: {type(exc).__name__}: {exc}. Expected a state dict of tensors "
            "(save it with torch.save(model.state_dict(), path) or safetensors.torch.save_file)."
        ) from exc
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model"):  # common training-checkpoint wrappers
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(
            f"weights file {str(path)!r} does not hold a state dict of tensors (got {type(loaded).__name__}). "
            "Save model.state_dict(), not the model object."
        )
    return {str(k): v for k, v in loaded.items()}


def load_backbone_state(
    module: nn.Module, state: Mapping[str, torch.Tensor], *, drop_prefixes: tuple[str, ...] = (), what: str
) -> None:
    """Load ``state`` into ``module`` strictly, after dropping classifier keys (``drop_prefixes``).

    A leading ``module.`` (DataParallel) is removed, and BatchNorm
    ``num_batches_tracked`` counters absent from old checkpoints are kept as
    they are. Missing, unexpected or mis-shaped tensors raise WeightsError.
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    kept = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)}
    expected = module.state_dict()
    missing = [k for k in expected if k not in kept and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in kept if k not in expected]
    mismatched = [
        f"{k!r} is {tuple(expected[k].shape)} in the model but {tuple(v.shape)} in the weights"
        for k, v in kept.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = mismatch_problems(list(missing), list(unexpected), list(mismatched))
    if problems:
        raise WeightsError(
            f"weights from {what} do not fit this backbone: {'; '.join(problems)}. Expected a state dict of the "
            f"same architecture, either the full classifier (its {', '.join(drop_prefixes) or 'head'} keys are "
            "dropped) or the backbone alone."
        )
    for key, value in expected.items():
        kept.setdefault(key, value)
    module.load_state_dict(kept, strict=True)


def torchvision_state_dict(spec: BackboneSpec, name: str) -> tuple[StateDict, Path]:
    import torchvision.models as tvm

    source = spec.weights_source(name)
    if source is None or not source.source.startswith("torchvision "):
        raise WeightsError(f"weights {name!r} of {spec.name!r} are not torchvision weights ({source}).")
    enum_name, _, member = source.source.removeprefix("torchvision ").partition(".")
    entry = getattr(tvm, enum_name)[member]
    filename = os.path.basename(urlparse(entry.url).path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        state = entry.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, hash mismatch, a truncated cache file
        raise WeightsError(
            f"cannot get the {name!r} weights of {spec.name!r} ({enum_name}.{member}) from {entry.url}: "
            f"{type(exc).__name__}: {exc}. This machine may have no internet access. Download that file "
            f"elsewhere and either place it at {cached} (torch's hub cache) or pass its path, "
            f"weights='/path/to/{filename}'."
        ) from exc
    return dict(state), cached
