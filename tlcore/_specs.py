"""Neutral descriptions of backbones, heads, their inputs and their layers.

These are plain frozen dataclasses: every backend reads the same values, so
nothing (BatchNorm epsilon, preprocessing, head initializer) is left to a
framework default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tlcore._errors import ConfigError

__all__ = [
    "BackboneSpec",
    "HeadSpec",
    "ImageInputSpec",
    "LayerInfo",
    "StateDictLayout",
    "WeightsSource",
]

Pooling = Literal["avg", "max", "flatten"]
POOLINGS: tuple[str, ...] = ("avg", "max", "flatten")
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "silu", "tanh", "linear")
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("linear", "softmax", "sigmoid")
INITIALIZERS: tuple[str, ...] = ("glorot_uniform", "he_normal", "zeros")


@dataclass(frozen=True)
class ImageInputSpec:
    """What an image backbone expects: size, channels and pixel preprocessing.

    Images (RGB) are reordered to ``channel_order``, mapped to ``value_range``
    (0..1 for most backbones), then normalised as ``(x - mean) / std`` per
    channel, mean and std in the model's channel order. ``min_size`` is the
    smallest side the architecture accepts.
    """

    size: tuple[int, int] = (224, 224)
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    value_range: tuple[float, float] = (0.0, 1.0)
    resize: str = "bilinear"
    channel_order: str = "RGB"
    min_size: int = 32
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.crop_pct, bool) or not isinstance(self.crop_pct, (int, float)) or not 0 < self.crop_pct <= 1:
            raise ConfigError(f"ImageInputSpec: crop_pct must be a number in (0, 1]; got {self.crop_pct!r}.")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(
                f"ImageInputSpec: mean {self.mean} and std {self.std} must have one value "
                f"per channel ({self.channels})."
            )
        if self.channel_order not in ("RGB", "BGR"):
            raise ConfigError(f"ImageInputSpec: channel_order must be RGB or BGR, got {self.channel_order!r}.")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"ImageInputSpec: std must be positive, got {self.std}.")


WEIGHTS_PROVIDERS: tuple[str, ...] = ("url", "package", "torchvision", "keras.applications")


@dataclass(frozen=True)
class WeightsSource:
    """Where a backbone's named weights come from and under what terms.

    ``provider`` says what the source is, so that no code parses ``source``
    (free text for people):

    - ``"url"``: a file at ``url``, which framework-neutral code downloads with
      :func:`tlcore.weights.download_weights`, checked against ``sha256`` (a
      digest, or a prefix of one) or, when that is None, against the sha256
      prefix in a torch hub file name (``resnet18-f37072fd.pth``);
    - ``"package"``: a file that an installed package ships; ``locate`` is a
      framework-free ``"module:function"`` returning its path, checked against
      ``sha256``;
    - ``"torchvision"``: torchvision's weights enum member ``reference``
      (``ResNet18_Weights.IMAGENET1K_V1``), whose file is also at ``url`` for
      backends without torchvision;
    - ``"keras.applications"``: the file that ``keras.applications.<reference>``
      downloads itself.
    """

    name: str
    source: str
    license: str = "unknown"
    sha256: str | None = None
    description: str = ""
    url: str | None = None
    provider: str = "url"
    reference: str = ""
    locate: str | None = None

    def __post_init__(self) -> None:
        if self.provider not in WEIGHTS_PROVIDERS:
            raise ConfigError(
                f"WeightsSource {self.name!r}: provider must be one of {', '.join(WEIGHTS_PROVIDERS)}; "
                f"got {self.provider!r}."
            )
        if self.provider == "package" and not self.locate:
            raise ConfigError(f"WeightsSource {self.name!r}: a 'package' source needs locate='module:function'.")


@dataclass(frozen=True)
class StateDictLayout:
    """How a framework state dict of an architecture maps onto its canonical tensor names.

    ``drop_prefixes`` are the classifier's keys (``fc.``, ``classifier.``),
    left out of a backbone; ``rename``, when set, is a framework-free
    ``"module:function"`` mapping a state dict (any ``Mapping[str, T]``) to
    canonical names, for reference checkpoints with names of their own.
    ``convertible`` says whether ``tlcore convert`` turns such state dicts
    into neutral checkpoints (False for architectures whose weights come only
    in a framework's own format); ``keys``, when set, is a ``"module:function"``
    returning every canonical tensor key, which a conversion checks.
    """

    drop_prefixes: tuple[str, ...] = ()
    rename: str | None = None
    convertible: bool = True
    keys: str | None = None


@dataclass(frozen=True)
class BackboneSpec:
    """The neutral side of a pretrained feature extractor.

    A spec says what the architecture is (its input, groups, BatchNorm
    values, feature channels, weights sources, tensor-name layout), never
    which backend builds it: each backend that can build it registers a
    :class:`tlcore.plugins.BuilderInfo` for it, so one spec serves every
    backend. ``groups`` names the ordered layer groups (``stem``, ``stage1``
    ... ``top``) that freeze policies and learning-rate groups address.
    ``portable`` says that every builder of it uses the same layer names and
    tensor layout, so one neutral checkpoint loads on every backend.
    """

    name: str
    family: str
    feature_channels: int
    input: ImageInputSpec = field(default_factory=ImageInputSpec)
    groups: tuple[str, ...] = ()
    weights: tuple[WeightsSource, ...] = ()
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.1
    description: str = ""
    state_dict: StateDictLayout = field(default_factory=StateDictLayout)
    portable: bool = False

    @property
    def weight_names(self) -> tuple[str, ...]:
        """The names accepted by ``weights=`` besides ``None`` and a file path."""
        return tuple(w.name for w in self.weights)

    def weights_source(self, name: str) -> WeightsSource | None:
        """The registered source of the named weights, if any."""
        return next((w for w in self.weights if w.name == name), None)


@dataclass(frozen=True)
class HeadSpec:
    """A classification or regression head that each backend builds natively.

    The head pools the backbone's feature map, runs optional hidden layers and
    ends in ``num_outputs`` units. The loss is always computed on logits, so
    ``output_activation`` only affects :meth:`predict` outputs.
    """

    num_outputs: int
    pooling: str = "avg"
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    dropout: float = 0.0
    output_activation: str = "linear"
    initializer: str = "glorot_uniform"

    def __post_init__(self) -> None:
        if not isinstance(self.num_outputs, int) or self.num_outputs < 1:
            raise ConfigError(f"HeadSpec: num_outputs must be a positive integer, got {self.num_outputs!r}.")
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _check_choice("initializer", self.initializer, INITIALIZERS)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"HeadSpec: dropout must be in [0, 1), got {self.dropout!r}.")
        if any((not isinstance(h, int)) or h < 1 for h in self.hidden):
            raise ConfigError(f"HeadSpec: hidden widths must be positive integers, got {self.hidden!r}.")


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"HeadSpec: {key} must be one of {', '.join(allowed)}; got {value!r}.")


@dataclass(frozen=True)
class LayerInfo:
    """One backbone layer as the core sees it: a stable name, its group and kind.

    ``kind`` is one of ``conv``, ``depthwise_conv``, ``dense``, ``batchnorm``
    or ``other``; ``num_params`` counts its trainable parameters.
    ``has_weights`` is False for the weightless layers (input, activations,
    paddings, adds) that a framework-native layer list holds
    (``keras.applications`` models list them, so that an index counts as
    Keras counts): a policy may select them, but they never train.
    ``layer_type`` is the framework's class name (``Conv2D``, ``ReLU``), for
    people reading the layer table.
    """

    name: str
    group: str
    kind: str
    num_params: int = 0
    has_weights: bool = True
    layer_type: str = ""

    @property
    def is_batchnorm(self) -> bool:
        """Whether this layer keeps running statistics."""
        return self.kind == "batchnorm"
