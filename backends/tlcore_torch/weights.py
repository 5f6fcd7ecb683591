"""Reading, checking and loading backbone weights: named, from a file, or from torchvision."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from tlcore import BackboneSpec, LayerInfo, WeightsError, WeightsSource
from tlcore.checkpoints import is_neutral_checkpoint, read_neutral
from tlcore.extend import BuildRequest, canonical_state, check_state_shapes, named_weights_file
from tlcore.weights import file_sha256, torch_hub_dir

__all__ = [
    "WEIGHT_FILE_SUFFIXES",
    "load_layers_state",
    "load_weights",
    "read_state_dict",
    "torchvision_state_dict",
    "weights_sha256",
]

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".safetensors")
StateDict = dict[str, torch.Tensor]


weights_sha256 = file_sha256  # the sha256 of a weights file's bytes, for the record


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
    except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) refused the pickle, or it is no pickle
        if re.search(r"Unsupported global|GLOBAL ", str(exc)):  # something other than tensors
            raise _not_only_tensors(path, exc) from None  # not chained: torch's text advises unsafe loading
        raise WeightsError(
            f"cannot read weights from {str(path)!r}: it is not a torch checkpoint (damaged, or another kind of "
            "file). Expected a state dict of tensors (torch.save(model.state_dict(), path)) or a .safetensors file."
        ) from None
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


def _not_only_tensors(path: Path, exc: Exception) -> WeightsError:
    """The refusal of a pickle holding more than tensors; never torch's advice to load it unsafely."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    what = f" (it refers to {found.group(1)})" if found else ""
    return WeightsError(
        f"weights file {str(path)!r} holds Python objects other than tensors{what}, and tlcore loads only tensors "
        "from a .pth or .pt file: unpickling other objects can run any code, so it is refused. If you trust the "
        "file, convert it to safetensors in a trusted environment (there, load the model with the code that made "
        "it and write safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')), then pass the "
        ".safetensors file."
    )


def load_layers_state(
    layers: Sequence[tuple[LayerInfo, nn.Module]],
    state: Mapping[str, torch.Tensor],
    *,
    what: str,
    drop_prefixes: tuple[str, ...] = (),
) -> None:
    """Copy a canonical state (``<layer>.<tensor>``) into the layers' own parameters and buffers, strictly.

    BatchNorm ``num_batches_tracked`` counters absent from old checkpoints are
    kept as they are. Missing, unexpected or mis-shaped tensors raise
    WeightsError before anything is changed.
    """
    targets: dict[str, torch.Tensor] = {}
    for info, module in layers:
        for key, tensor in (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)):
            if tensor is not None:
                targets[f"{info.name}.{key}"] = tensor
    check_state_shapes(
        {key: tuple(tensor.shape) for key, tensor in targets.items()},
        {key: tuple(value.shape) for key, value in state.items()},
        what=what,
        hint="Expected a state dict of the same architecture, either the full classifier "
        f"(its {', '.join(drop_prefixes) or 'head'} keys are dropped) or the backbone alone.",
    )
    with torch.no_grad():
        for key, value in state.items():
            if key in targets:
                targets[key].copy_(value)


def load_weights(request: BuildRequest, layers: Sequence[tuple[LayerInfo, nn.Module]]) -> Path:
    """Load ``request.weights`` (named or a file) into ``layers``; return the file they were read from."""
    spec, choice = request.spec, request.weights
    if choice.kind == "named" and choice.source is not None and choice.source.provider == "torchvision":
        state, path = torchvision_state_dict(spec, choice.source)
        what = f"torchvision ({choice.name!r})"
    elif choice.kind == "named":
        path = named_weights_file(spec, str(choice.name), search=(torch_hub_dir(),))
        state, what = read_state_dict(path), repr(choice.name)
    elif choice.path is not None:
        path = choice.path
        state, what = read_state_dict(path, architecture=spec.name), f"file {str(path)!r}"
    else:
        raise WeightsError(f"internal: no weights to load for {spec.name!r}")
    load_layers_state(layers, canonical_state(spec, state), what=what, drop_prefixes=spec.state_dict.drop_prefixes)
    return path


def torchvision_state_dict(spec: BackboneSpec, source: WeightsSource) -> tuple[StateDict, Path]:
    """Torchvision's own download (hash-checked, into torch hub's cache) of a ``torchvision`` weights source."""
    import torchvision.models as tvm

    enum_name, _, member = source.reference.partition(".")
    try:
        entry = getattr(tvm, enum_name)[member]
    except (AttributeError, KeyError):
        raise WeightsError(
            f"weights {source.name!r} of {spec.name!r} name torchvision's {source.reference!r}, which this "
            "torchvision does not have."
        ) from None
    filename = os.path.basename(urlparse(entry.url).path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        state = entry.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, hash mismatch, a truncated cache file
        raise WeightsError(
            f"cannot get the {source.name!r} weights of {spec.name!r} ({source.reference}) from {entry.url}: "
            f"{type(exc).__name__}: {exc}. This machine may have no internet access. Download that file "
            f"elsewhere and either place it at {cached} (torch's hub cache) or pass its path, "
            f"weights='/path/to/{filename}'."
        ) from exc
    return dict(state), cached
