"""Torch backbones: build a spec's feature extractor, with random, named or file weights.

Every backbone is an ``nn.Module`` that maps NCHW float32 images to an NCHW
feature map (no pooling, no classifier), plus its layers under stable names:
the module paths of torchvision's own models (``layer4.1.conv2``,
``features.3.conv.1.0``), so torchvision checkpoints load as they are.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
from torch import nn

from tlcore._errors import ConfigError, WeightsError, did_you_mean
from tlcore._specs import BackboneSpec, LayerInfo

__all__ = [
    "NativeBackbone",
    "assemble_backbone",
    "build_backbone",
    "build_efficientnet_b0",
    "build_inception_v3",
    "build_mobilenet_v2",
    "build_resnet18",
    "build_resnet50",
    "build_vgg16",
    "layer_kind",
    "load_backbone_state",
    "read_state_dict",
    "resolve_weights",
    "weights_sha256",
]

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".safetensors")
GroupOf = Callable[[str], str]
StateDict = dict[str, torch.Tensor]


@dataclass
class NativeBackbone:
    """A built backbone: the torch module and its parameterised layers in forward order.

    ``module`` maps NCHW float32 images to an NCHW feature map with
    ``spec.feature_channels`` channels; it is returned in eval mode. ``layers``
    pairs each leaf module that holds parameters with its :class:`LayerInfo`.
    ``weights_file`` is the file the weights were read from (the torch hub
    cache file for torchvision weights), ``None`` for random initialisation.
    """

    spec: BackboneSpec
    module: nn.Module
    layers: list[tuple[LayerInfo, nn.Module]]
    weights: str | None = None
    weights_file: Path | None = None

    def layer_infos(self) -> list[LayerInfo]:
        """The layers' neutral descriptions, in forward order."""
        return [info for info, _ in self.layers]


def build_backbone(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """Build ``spec`` with ``weights``: None (random), a name in ``spec.weight_names``, or a file path.

    Random initialisation draws from torch's global generator, so seed it with
    ``torch.manual_seed`` first for a reproducible backbone.
    """
    if spec.backend != "torch":
        raise ConfigError(f"backbone {spec.name!r} is registered for backend {spec.backend!r}, not 'torch'.")
    module_name, _, function_name = spec.builder.partition(":")
    try:
        builder = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"backbone {spec.name!r}: cannot import its builder {spec.builder!r}: {exc}") from exc
    backbone = builder(spec, weights)
    if not isinstance(backbone, NativeBackbone):
        raise ConfigError(f"backbone {spec.name!r}: {spec.builder} returned {type(backbone).__name__}, not NativeBackbone.")
    return backbone


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, for the record of which weights were used."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- weights


def resolve_weights(
    spec: BackboneSpec, weights: str | os.PathLike[str] | None
) -> tuple[Literal["none", "named", "file"], str | Path | None]:
    """Say what ``weights`` means for ``spec``: ``("none", None)``, ``("named", name)`` or ``("file", path)``."""
    if weights is None:
        return "none", None
    text = os.fspath(weights)
    if text in spec.weight_names:
        return "named", text
    path = Path(text).expanduser()
    if path.is_file():
        return "file", path
    allowed = ", ".join(repr(n) for n in spec.weight_names) or "none"
    usage = (
        f"Pass weights=None (random initialisation), a registered name ({allowed}), "
        f"or the path of an existing {'/'.join(WEIGHT_FILE_SUFFIXES)} file."
    )
    if path.is_dir():
        raise WeightsError(f"weights path {text!r} for {spec.name!r} is a directory, not a file. {usage}")
    if _looks_like_path(text):
        raise WeightsError(f"weights file {text!r} for {spec.name!r} does not exist. {usage}")
    raise WeightsError(f"unknown weights {text!r} for {spec.name!r} on torch.{did_you_mean(text, spec.weight_names)} {usage}")


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.startswith(("~", ".")) or Path(text).suffix.lower() in (
        *WEIGHT_FILE_SUFFIXES,
        ".bin",
        ".ckpt",
        ".h5",
    )


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """Read tensors from a ``.pth``/``.pt`` (``weights_only``) or ``.safetensors`` file onto the CPU."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist.")
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
            if isinstance(inner, Mapping) and len(loaded) <= 4:
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(
            f"weights file {str(path)!r} does not hold a state dict of tensors (got {type(loaded).__name__}). "
            "Save model.state_dict(), not the model object."
        )
    return {str(k): v for k, v in loaded.items()}


def _examples(keys: Iterable[str], limit: int = 5) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


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
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing tensors ({_examples(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected tensors ({_examples(unexpected)})")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:3])})")
        raise WeightsError(
            f"weights from {what} do not fit this backbone: {'; '.join(problems)}. Expected a state dict of the "
            f"same architecture, either the full classifier (its {', '.join(drop_prefixes) or 'head'} keys are "
            "dropped) or the backbone alone."
        )
    for key, value in expected.items():
        kept.setdefault(key, value)
    module.load_state_dict(kept, strict=True)


def _torchvision_state_dict(spec: BackboneSpec, name: str) -> tuple[StateDict, Path]:
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


def _build_torchvision(
    spec: BackboneSpec,
    weights: str | os.PathLike[str] | None,
    make: Callable[[], nn.Module],
    group_of: GroupOf,
    drop_prefixes: tuple[str, ...],
) -> NativeBackbone:
    kind, value = resolve_weights(spec, weights)
    module = make()
    weights_file: Path | None = None
    if kind == "named":
        state, weights_file = _torchvision_state_dict(spec, str(value))
        load_backbone_state(module, state, drop_prefixes=drop_prefixes, what=f"torchvision ({value!r})")
    elif kind == "file":
        weights_file = Path(str(value))
        state = read_state_dict(weights_file)
        load_backbone_state(module, state, drop_prefixes=drop_prefixes, what=f"file {str(weights_file)!r}")
    return assemble_backbone(spec, module, group_of, weights=None if weights is None else os.fspath(weights),
                             weights_file=weights_file)


# ---------------------------------------------------------------- layers


def layer_kind(module: nn.Module) -> str:
    """``conv``, ``depthwise_conv``, ``batchnorm``, ``dense`` or ``other`` for a leaf module."""
    if isinstance(module, nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise_conv" if depthwise else "conv"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batchnorm"
    if isinstance(module, nn.Linear):
        return "dense"
    return "other"


def assemble_backbone(
    spec: BackboneSpec,
    module: nn.Module,
    group_of: GroupOf,
    *,
    weights: str | None,
    weights_file: Path | None,
) -> NativeBackbone:
    """Fix BatchNorm eps/momentum from ``spec``, list the layers with their groups, put ``module`` in eval mode."""
    layers: list[tuple[LayerInfo, nn.Module]] = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.eps = spec.bn_epsilon
            sub.momentum = spec.bn_momentum
        params = list(sub.parameters(recurse=False))
        if not params:
            continue
        group = group_of(name)
        if group not in spec.groups:
            raise RuntimeError(f"{spec.name}: layer {name!r} was put in group {group!r}, not one of {spec.groups}.")
        info = LayerInfo(name=name, group=group, kind=layer_kind(sub), num_params=sum(p.numel() for p in params))
        layers.append((info, sub))
    module.eval()
    return NativeBackbone(spec=spec, module=module, layers=layers, weights=weights, weights_file=weights_file)


# ---------------------------------------------------------------- torchvision feature extractors


class ResNetFeatures(nn.Module):
    """torchvision ResNet without ``avgpool`` and ``fc``; module names are torchvision's."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images to the ``layer4`` feature map."""
        for child in self.children():
            x = child(x)
        return x


class SequentialFeatures(nn.Module):
    """A torchvision model's ``features`` part (MobileNetV2, VGG, EfficientNet), under the name ``features``."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images to the last feature map."""
        return self.features(x)


_INCEPTION_PARTS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip


class InceptionFeatures(nn.Module):
    """torchvision Inception3 up to ``Mixed_7c`` (no AuxLogits, pooling or ``fc``; no ``transform_input``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        for name in _INCEPTION_PARTS:
            self.add_module(name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW images to the ``Mixed_7c`` feature map."""
        for child in self.children():
            x = child(x)
        return x


def _resnet_group(name: str) -> str:
    top = name.split(".")[0]
    return "stem" if top in ("conv1", "bn1") else top


def _indexed_group(table: Mapping[int, str]) -> GroupOf:
    def group_of(name: str) -> str:
        return table[int(name.split(".")[1])]

    return group_of


_MOBILENET_V2_GROUPS = {0: "stem", 1: "stage1", 2: "stage2", 3: "stage2", 4: "stage3", 5: "stage3", 6: "stage3"}
_MOBILENET_V2_GROUPS |= {i: "stage4" for i in range(7, 11)} | {i: "stage5" for i in range(11, 14)}
_MOBILENET_V2_GROUPS |= {i: "stage6" for i in range(14, 17)} | {17: "stage7", 18: "top"}
_EFFICIENTNET_GROUPS = {0: "stem", **{i: f"stage{i}" for i in range(1, 8)}, 8: "top"}


def _inception_group(name: str) -> str:
    return "stem" if name.startswith("Conv2d_") else "mixed" + name[len("Mixed_")]


def build_resnet18(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """ResNet-18 features (512 channels, stride 32); groups stem, layer1..layer4."""
    import torchvision.models as tvm

    return _build_torchvision(spec, weights, lambda: ResNetFeatures(tvm.resnet18(weights=None)), _resnet_group, ("fc.",))


def build_resnet50(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """ResNet-50 features (2048 channels, stride 32); groups stem, layer1..layer4."""
    import torchvision.models as tvm

    return _build_torchvision(spec, weights, lambda: ResNetFeatures(tvm.resnet50(weights=None)), _resnet_group, ("fc.",))


def build_mobilenet_v2(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """MobileNetV2 features (1280 channels); groups stem, stage1..stage7, top."""
    import torchvision.models as tvm

    return _build_torchvision(
        spec,
        weights,
        lambda: SequentialFeatures(tvm.mobilenet_v2(weights=None).features),
        _indexed_group(_MOBILENET_V2_GROUPS),
        ("classifier.",),
    )


def build_vgg16(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """VGG-16 convolutional features (512 channels); groups block1..block5, split after each max-pool.

    Only ``features`` is built (torchvision's ``make_layers``), with VGG's own
    initialisation, so the 120M-parameter classifier is never allocated.
    """
    from torchvision.models.vgg import cfgs, make_layers

    def make() -> nn.Module:
        features = make_layers(cfgs["D"], batch_norm=False)
        for layer in features.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0)
        return SequentialFeatures(features)

    pools = [i for i, value in enumerate(cfgs["D"]) if value == "M"]
    # make_layers emits conv+relu per number and one module per "M": module index of each pool
    pool_indices = [2 * (i - n) + n for n, i in enumerate(pools)]
    table = {}
    start = 0
    for block, end in enumerate(pool_indices, start=1):
        table |= {i: f"block{block}" for i in range(start, end + 1)}
        start = end + 1
    return _build_torchvision(spec, weights, make, _indexed_group(table), ("classifier.",))


def build_efficientnet_b0(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """torchvision EfficientNet-B0 features (1280 channels); groups stem, stage1..stage7, top."""
    import torchvision.models as tvm

    return _build_torchvision(
        spec,
        weights,
        lambda: SequentialFeatures(tvm.efficientnet_b0(weights=None).features),
        _indexed_group(_EFFICIENTNET_GROUPS),
        ("classifier.",),
    )


def build_inception_v3(spec: BackboneSpec, weights: str | os.PathLike[str] | None) -> NativeBackbone:
    """Inception v3 up to Mixed_7c (2048 channels); groups stem, mixed5, mixed6, mixed7.

    Built with ``transform_input=False``: the spec's (x - 0.5) / 0.5
    preprocessing is what torchvision's ``transform_input`` produces.
    """
    import torchvision.models as tvm

    def make() -> nn.Module:
        net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
        return InceptionFeatures(net)

    return _build_torchvision(spec, weights, make, _inception_group, ("fc.", "AuxLogits."))
