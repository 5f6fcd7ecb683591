"""Recipes: a TOML file validated into typed objects.

A recipe names the backbone and its weights, the head, the dataset with its
splits, image size and augmentation, and an ordered list of phases. Every
error names the key (``phases[1].optimizer``), the bad value and what is
allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlcore._errors import ConfigError, RecipeError, TLCoreError, did_you_mean
from tlcore._freeze import FreezePolicy
from tlcore.training._config import EarlyStopping, Phase

__all__ = [
    "AugmentationConfig",
    "BackboneConfig",
    "DataConfig",
    "HeadConfig",
    "Recipe",
    "load_recipe",
    "parse_recipe",
]

_NUMBER = (int, float)


@dataclass(frozen=True)
class BackboneConfig:
    """Which backbone, and which weights: ``None``, a registered name or a file path.

    ``bn_momentum`` overrides the backbone's BatchNorm momentum (torch's
    convention: the weight of each new batch statistic), for recipes whose
    BatchNorm trains its statistics over few steps, such as training from
    scratch.
    """

    name: str
    weights: str | None = "imagenet"
    bn_momentum: float | None = None


@dataclass(frozen=True)
class HeadConfig:
    """A head preset and the options that override it."""

    preset: str = "linear"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentationConfig:
    """Neutral augmentation, applied identically by the core for every backend.

    ``random_resized_crop`` is ``None`` (off) or its ``(scale, ratio)`` ranges.
    """

    flip: bool = False
    shift: int = 0
    crop_padding: int = 0
    rotation: float = 0.0
    random_resized_crop: tuple[tuple[float, float], tuple[float, float]] | None = None


@dataclass(frozen=True)
class DataConfig:
    """The dataset, its splits, the image size, batch size and input pipeline.

    ``crop_pct`` overrides the backbone's evaluation crop; ``workers`` is the
    number of preparation threads (``None``: the machine's cores; 0: in the
    training loop's thread); ``cache`` is ``"auto"`` (the preprocessed image
    cache for image files when training runs over them more than once), true
    or false.
    """

    dataset: str
    options: Mapping[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    labels_per_class: int | None = None
    validation_per_class: int = 0
    test_fraction: float = 0.2
    test_per_class: int | None = None
    batch_size: int = 32
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    crop_pct: float | None = None
    workers: int | None = None
    cache: bool | str = "auto"


@dataclass(frozen=True)
class Recipe:
    """A whole transfer-learning run, backend-neutral."""

    backbone: BackboneConfig
    data: DataConfig
    phases: tuple[Phase, ...]
    head: HeadConfig = field(default_factory=HeadConfig)
    name: str = "recipe"
    seed: int = 0
    backend: str = "torch"
    device: str = "auto"
    mixed_precision: bool = False
    source: str | None = None


_TYPE_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
}


def _type_name(types: tuple[type, ...]) -> str:
    names = [_TYPE_NAMES.get(t, t.__name__) for t in types if t is not type(None)]
    text = " or ".join(dict.fromkeys(names))
    return text + (" (or omitted)" if type(None) in types else "")


class _Table:
    """A TOML table being validated; remembers its path for error messages."""

    def __init__(self, value: Any, path: str, allowed: Mapping[str, tuple[type, ...]]) -> None:
        if not isinstance(value, dict):
            raise RecipeError(f"recipe key {path!r} must be a table; got {value!r} ({type(value).__name__}).")
        for key in value:
            if key not in allowed:
                raise RecipeError(
                    f"recipe key {self._join(path, key)!r} is not known.{did_you_mean(key, allowed)}"
                    f" Allowed in {path or 'the top level'}: {', '.join(sorted(allowed))}."
                )
        self.value = value
        self.path = path
        self.allowed = allowed

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def key(self, key: str) -> str:
        """The full dotted path of ``key``."""
        return self._join(self.path, key)

    def get(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        """The value at ``key`` after a type check, or ``default``."""
        if key not in self.value:
            if required:
                raise RecipeError(f"recipe key {self.key(key)!r} is required ({_type_name(self.allowed[key])}).")
            return default
        value = self.value[key]
        types = self.allowed[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            raise RecipeError(
                f"recipe key {self.key(key)!r} must be {_type_name(types)}; got {value!r} ({type(value).__name__})."
            )
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            return float(value) if int not in types else value
        return value

    def check(self, key: str, condition: bool, expected: str) -> None:
        """Raise a RecipeError for ``key`` unless ``condition`` holds."""
        if not condition:
            raise RecipeError(f"recipe key {self.key(key)!r} {expected}; got {self.value.get(key)!r}.")


def _backbone(value: Any) -> BackboneConfig:
    table = _Table(value, "backbone", {"name": (str,), "weights": (str,), "bn_momentum": _NUMBER})
    weights = table.get("weights", "imagenet")
    momentum = table.get("bn_momentum")
    table.check("bn_momentum", momentum is None or 0.0 < momentum <= 1.0, "must be in (0, 1]")
    return BackboneConfig(
        name=table.get("name", required=True),
        weights=None if weights == "none" else weights,
        bn_momentum=None if momentum is None else float(momentum),
    )


def _head(value: Any) -> HeadConfig:
    table = _Table(
        value,
        "head",
        {
            "preset": (str,),
            "pooling": (str,),
            "hidden": (list,),
            "activation": (str,),
            "dropout": _NUMBER,
            "output_activation": (str,),
            "initializer": (str,),
        },
    )
    options = {k: table.get(k) for k in value if k != "preset"}
    if "hidden" in options:
        table.check(
            "hidden", all(isinstance(h, int) and h > 0 for h in options["hidden"]), "must list positive integers"
        )
    return HeadConfig(preset=table.get("preset", "linear"), options=options)


def _data(value: Any) -> DataConfig:
    table = _Table(
        value,
        "data",
        {
            "dataset": (str,),
            "options": (dict,),
            "image_size": (int,),
            "labels_per_class": (int,),
            "validation_per_class": (int,),
            "test_fraction": _NUMBER,
            "test_per_class": (int,),
            "batch_size": (int,),
            "augmentation": (dict,),
            "crop_pct": _NUMBER,
            "workers": (int,),
            "cache": (bool, str),
        },
    )
    image_size = table.get("image_size")
    table.check("image_size", image_size is None or image_size >= 8, "must be at least 8 pixels")
    labels = table.get("labels_per_class")
    table.check("labels_per_class", labels is None or labels >= 1, "must be at least 1")
    table.check("validation_per_class", table.get("validation_per_class", 0) >= 0, "must be >= 0")
    test_fraction = table.get("test_fraction", 0.2)
    table.check("test_fraction", 0.0 < test_fraction < 1.0, "must be between 0 and 1")
    table.check("batch_size", table.get("batch_size", 32) >= 1, "must be at least 1")
    test_cap = table.get("test_per_class")
    table.check("test_per_class", test_cap is None or test_cap >= 1, "must be at least 1")
    crop_pct = table.get("crop_pct")
    table.check("crop_pct", crop_pct is None or 0.0 < crop_pct <= 1.0, "must be in (0, 1]")
    workers = table.get("workers")
    table.check("workers", workers is None or workers >= 0, "must be >= 0 (0 prepares in the training loop)")
    cache = table.get("cache", "auto")
    table.check("cache", cache in (True, False, "auto"), 'must be true, false or "auto"')
    aug = _Table(
        table.get("augmentation", {}),
        "data.augmentation",
        {
            "flip": (bool,),
            "shift": (int,),
            "crop_padding": (int,),
            "rotation": _NUMBER,
            "random_resized_crop": (bool, dict),
        },
    )
    augmentation = AugmentationConfig(
        flip=aug.get("flip", False),
        shift=aug.get("shift", 0),
        crop_padding=aug.get("crop_padding", 0),
        rotation=aug.get("rotation", 0.0),
        random_resized_crop=_random_resized_crop(aug.get("random_resized_crop", False)),
    )
    aug.check("shift", augmentation.shift >= 0, "must be >= 0")
    aug.check("crop_padding", augmentation.crop_padding >= 0, "must be >= 0")
    aug.check("rotation", 0.0 <= augmentation.rotation <= 180.0, "must be between 0 and 180 degrees")
    return DataConfig(
        dataset=table.get("dataset", required=True),
        options=dict(table.get("options", {})),
        image_size=image_size,
        labels_per_class=labels,
        validation_per_class=table.get("validation_per_class", 0),
        test_fraction=test_fraction,
        test_per_class=test_cap,
        batch_size=table.get("batch_size", 32),
        augmentation=augmentation,
        crop_pct=None if crop_pct is None else float(crop_pct),
        workers=workers,
        cache=cache,
    )


def _pair(table: _Table, key: str, default: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    value = table.get(key, list(default))
    ok = (
        len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and low < value[0] <= value[1] <= high
    )
    table.check(key, ok, f"must be [min, max] with {low} < min <= max <= {high}")
    return float(value[0]), float(value[1])


def _random_resized_crop(value: bool | dict[str, Any]) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """``false`` (off), ``true`` (torchvision's ranges) or ``{ scale = [min, max], ratio = [min, max] }``."""
    if value is False:
        return None
    table = _Table(
        {} if value is True else value, "data.augmentation.random_resized_crop", {"scale": (list,), "ratio": (list,)}
    )
    return _pair(table, "scale", (0.08, 1.0), 0.0, 1.0), _pair(table, "ratio", (3 / 4, 4 / 3), 0.0, 100.0)


def _freeze(value: Any, path: str) -> FreezePolicy:
    from tlcore.plugins import load_plugins

    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, dict):
        options = dict(value)
        name = options.pop("policy", None)
        if not isinstance(name, str):
            raise RecipeError(f"recipe key {path + '.policy'!r} is required: the name of a freeze policy.")
    else:
        raise RecipeError(f"recipe key {path!r} must be a policy name or a table with 'policy'; got {value!r}.")
    try:
        info = load_plugins().freeze_policy(name)
    except TLCoreError as exc:
        raise RecipeError(f"recipe key {path!r}: {exc}") from None
    try:
        policy = info.factory(**options)
    except TypeError as exc:
        raise RecipeError(f"recipe key {path!r}: bad options {sorted(options)} for policy {name!r} ({exc}).") from None
    except ConfigError as exc:
        raise RecipeError(f"recipe key {path!r}: {exc}") from None
    if not isinstance(policy, FreezePolicy):
        raise RecipeError(f"recipe key {path!r}: policy {name!r} built {policy!r}, not a FreezePolicy.")
    return policy


_PHASE_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "freeze": (str, dict),
    "epochs": (int,),
    "optimizer": (str,),
    "learning_rate": _NUMBER,
    "weight_decay": _NUMBER,
    "momentum": _NUMBER,
    "nesterov": (bool,),
    "adam_epsilon": _NUMBER,
    "schedule": (str,),
    "step_size": (int,),
    "gamma": _NUMBER,
    "warmup_fraction": _NUMBER,
    "label_smoothing": _NUMBER,
    "early_stopping": (dict,),
    "keep_best": (bool,),
    "cache_features": (bool,),
    "augment": (bool,),
    "lr_multipliers": (dict,),
    "layer_lr_decay": _NUMBER,
}


def _phase(value: Any, index: int) -> Phase:
    path = f"phases[{index}]"
    table = _Table(value, path, _PHASE_KEYS)
    options: dict[str, Any] = {k: table.get(k) for k in value if k not in ("freeze", "early_stopping")}
    options.setdefault("name", f"phase{index + 1}")
    options["freeze"] = _freeze(table.get("freeze", "frozen"), table.key("freeze"))
    if "early_stopping" in value:
        stop = _Table(
            value["early_stopping"],
            table.key("early_stopping"),
            {"monitor": (str,), "patience": (int,), "min_delta": _NUMBER},
        )
        try:
            options["early_stopping"] = EarlyStopping(**{k: stop.get(k) for k in value["early_stopping"]})
        except ConfigError as exc:
            raise RecipeError(f"recipe key {stop.path!r}: {exc}") from None
    try:
        return Phase(**options)
    except ConfigError as exc:
        raise RecipeError(f"recipe key {path!r}: {exc}") from None


def parse_recipe(document: Mapping[str, Any], *, source: str | None = None) -> Recipe:
    """Validate a parsed TOML document into a :class:`Recipe`."""
    top = _Table(
        dict(document),
        "",
        {
            "name": (str,),
            "seed": (int,),
            "backend": (str,),
            "device": (str,),
            "mixed_precision": (bool,),
            "backbone": (dict,),
            "head": (dict,),
            "data": (dict,),
            "phases": (list,),
        },
    )
    phases = top.get("phases", required=True)
    top.check("phases", len(phases) > 0, "must list at least one phase")
    return Recipe(
        name=top.get("name", Path(source).stem if source else "recipe"),
        seed=top.get("seed", 0),
        backend=top.get("backend", "torch"),
        device=top.get("device", "auto"),
        mixed_precision=top.get("mixed_precision", False),
        backbone=_backbone(top.get("backbone", required=True)),
        head=_head(top.get("head", {})),
        data=_data(top.get("data", required=True)),
        phases=tuple(_phase(p, i) for i, p in enumerate(phases)),
        source=source,
    )


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe TOML file."""
    file = Path(path)
    if file.is_dir():
        tomls = sorted(child.name for child in file.glob("*.toml"))[:5]
        inside = f" It holds {', '.join(tomls)}." if tomls else ""
        raise RecipeError(f"recipe file {str(file)!r} is a directory; expected a .toml recipe file.{inside}")
    if not file.is_file():
        raise RecipeError(f"recipe file {str(file)!r} does not exist.")
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe file {str(file)!r} is not valid TOML: {exc}.") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"recipe file {str(file)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except OSError as exc:
        raise RecipeError(f"recipe file {str(file)!r} cannot be read ({exc.strerror or exc}).") from None
    return parse_recipe(document, source=str(file))
