"""The ``keras.applications`` backbones: their layers grouped, their ImageNet weights fetched by Keras.

``keras_resnet50``, ``keras_mobilenet_v2``, ``keras_vgg16``, ``keras_xception``,
``keras_efficientnet_b0`` and ``keras_inception_v3`` are Keras's own models,
with Keras's layer names: weights move between them and other Keras models,
not to torch. Their builders load ``"imagenet"`` through keras.applications
itself (its download, its hash check); other files are loaded by the backend.
Layers that keras.applications leaves to Keras's automatic naming
(``conv2d_7``, which depends on what the process built before) are renumbered
as a fresh process would number them, so that names are stable. Groups follow
each architecture's blocks, by name prefix or through the graph.

This module imports Keras: it is imported only when one of these backbones is
first built.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlcore import BackboneSpec, WeightsError
from tlcore.extend import BuildRequest, BuiltBackbone
from tlcore_keras.backbones import GroupOf
from tlcore_keras.weights import load_keras_h5

__all__ = [
    "build_keras_efficientnet_b0",
    "build_keras_inception_v3",
    "build_keras_mobilenet_v2",
    "build_keras_resnet50",
    "build_keras_vgg16",
    "build_keras_xception",
    "stable_layer_names",
]


def _snake_case(class_name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization``, as Keras names unnamed layers."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def stable_layer_names(model: keras.Model) -> None:
    """Renumber automatically named layers (``conv2d_41``) from zero, as a fresh process names them.

    Keras numbers unnamed layers with a per-process counter, so the same
    model gets other names when something was built before it. Only names of
    the form ``<class in snake case>[_<n>]`` are changed, keeping their order.
    """
    automatic: dict[str, list[tuple[int, keras.layers.Layer]]] = defaultdict(list)
    for layer in model.layers:
        prefix = _snake_case(type(layer).__name__)
        match = re.fullmatch(rf"{re.escape(prefix)}(?:_(\d+))?", layer.name)
        if match:
            automatic[prefix].append((int(match.group(1) or 0), layer))
    for prefix, numbered in automatic.items():
        for index, (_, layer) in enumerate(sorted(numbered, key=lambda pair: pair[0])):
            layer.name = prefix if index == 0 else f"{prefix}_{index}"
    names = [layer.name for layer in model.layers]
    if len(set(names)) != len(names):
        raise RuntimeError(f"{model.name}: layer names are not unique after renumbering: {sorted(names)}")


def _keras_cache_file(file_name: str) -> Path | None:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    for base in (home, Path("/tmp/.keras")):
        if (base / "models" / file_name).is_file():
            return base / "models" / file_name
    return None


def _imagenet_application(
    spec: BackboneSpec, constructor: Callable[..., keras.Model], shape: tuple[int, int, int], file_name: str
) -> keras.Model:
    try:
        model: keras.Model = constructor(include_top=False, weights="imagenet", input_shape=shape)
    except Exception as exc:  # URL errors, hash mismatches, a truncated cache file
        source = spec.weights_source("imagenet")
        cache = Path(os.environ.get("KERAS_HOME", "~/.keras")) / "models"
        raise WeightsError(
            f"cannot get the 'imagenet' weights of {spec.name} ({source.source if source else 'keras.applications'}): "
            f"{type(exc).__name__}: {exc}. This machine may have no internet access. Download {file_name} from that "
            f"address where there is, then put it in {cache} (Keras's download cache, where its hash is checked) "
            f"or pass its path: weights='/path/to/{file_name}'."
        ) from exc
    return model


def _build_application(
    request: BuildRequest,
    constructor: Callable[..., keras.Model],
    group_of: Callable[[keras.Model], GroupOf],
    file_name: str,
    *,
    after_load: Callable[[keras.Model], None] | None = None,
    same_graph_for_imagenet: bool = True,
) -> BuiltBackbone:
    spec, choice = request.spec, request.weights
    shape = (*request.image_size, spec.input.channels)
    named = choice.kind == "named"
    if named and same_graph_for_imagenet:
        model = _imagenet_application(spec, constructor, shape, file_name)
    else:
        model = constructor(include_top=False, weights=None, input_shape=shape)
    if named and not same_graph_for_imagenet:
        model.set_weights(_imagenet_application(spec, constructor, shape, file_name).get_weights())
    stable_layer_names(model)
    # keras.applications' own .h5 files go through Keras, and after_load fixes what they store differently.
    own_file = choice.path is not None and choice.path.name.lower().endswith(".h5") and after_load is not None
    if own_file and choice.path is not None:
        load_keras_h5(model, choice.path, spec.name)
    if (named or own_file) and after_load is not None:
        after_load(model)
    return BuiltBackbone(
        model=model,
        layers=[(layer.name, layer) for layer in model.layers],
        group_of=group_of(model),
        weights_loaded=named or own_file,
        weights_file=_keras_cache_file(file_name) if named else choice.path,
        native_indexing=True,
    )


def _by_prefix(table: Iterable[tuple[str, str]]) -> Callable[[keras.Model], GroupOf]:
    """Group by the first matching regular expression: ``[(pattern, group), ...]``."""
    rules = [(re.compile(pattern), group) for pattern, group in table]

    def group_of(name: str) -> str:
        return next((group for pattern, group in rules if pattern.match(name)), "")

    return lambda model: group_of


def _ancestors(model: keras.Model, tensors: Iterable[Any]) -> set[str]:
    """Names of the layers needed to compute ``tensors`` (each tensor's own layer included)."""
    names: set[str] = set()
    for tensor in tensors:
        names |= {layer.name for layer in keras.Model(model.inputs, tensor, name="tlcore_probe").layers}
    return names


def _by_graph(model: keras.Model, groups: list[tuple[str, set[str]]], last: str) -> GroupOf:
    """Each group is what its ancestor set adds to the previous groups'; ``last`` takes the rest."""
    table: dict[str, str] = {}
    for group, members in groups:
        for name in members:
            table.setdefault(name, group)
    return lambda name: table.get(name, last)


def _consumer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The one layer that takes ``name``'s output (the residual add after a block)."""
    output = model.get_layer(name).output
    for layer in model.layers:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        if any(t is output for t in inputs):
            return layer
    raise RuntimeError(f"{model.name}: nothing consumes {name!r}")


def _inception_groups(model: keras.Model) -> GroupOf:
    # The stem is what all four branches of mixed0 share; each group ends at its last concatenation.
    branches = [_ancestors(model, [t]) for t in model.get_layer("mixed0").input]
    stem = set.intersection(*branches)
    return _by_graph(
        model,
        [("stem", stem), ("mixed5", _ancestors(model, [model.get_layer("mixed2").output])),
         ("mixed6", _ancestors(model, [model.get_layer("mixed7").output]))],
        "mixed7",
    )  # fmt: skip


def _xception_groups(model: keras.Model) -> GroupOf:
    # Residual branches are unnamed; the add that ends a flow names everything it depends on.
    entry = _ancestors(model, [_consumer(model, "block4_pool").output])
    middle = _ancestors(model, [_consumer(model, "block12_sepconv3_bn").output])
    return _by_graph(model, [("entry", entry), ("middle", middle)], "exit")


_MOBILENET_V2_STAGES = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3, 6: 4, 7: 4, 8: 4, 9: 4, 10: 5, 11: 5, 12: 5, 13: 6, 14: 6, 15: 6}
_MOBILENET_V2_RULES = [
    (r"(Conv1|bn_Conv1)$", "stem"),
    (r"expanded_conv_", "stage1"),
    *((rf"block_{i}_", f"stage{stage}") for i, stage in _MOBILENET_V2_STAGES.items()),
    (r"block_16_", "stage7"),
    (r"Conv_1", "top"),
]
_IMAGENET_STDDEV_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _fold_efficientnet_std(model: keras.Model) -> None:
    """Fold keras.applications' extra ``Rescaling(1 / sqrt(std))`` into the Normalization variance.

    keras.applications' ImageNet file stores the ImageNet *std* as the
    Normalization variance, and the model adds that rescaling only when it
    loads "imagenet" itself (tensorflow/tensorflow#49930), so that in total
    it divides by the std. Folding it (variance = std * std) keeps one graph
    for every kind of weights; a variance that is not the std is left alone.
    """
    layer = model.get_layer("normalization")
    variance = keras.ops.convert_to_numpy(layer.adapt_variance)
    if np.allclose(variance, _IMAGENET_STDDEV_RGB, rtol=0, atol=1e-3):
        layer.adapt_variance.assign(variance * _IMAGENET_STDDEV_RGB)
        layer.finalize_state()


def build_keras_resnet50(request: BuildRequest) -> BuiltBackbone:
    """keras.applications ResNet-50 features (2048 channels, stride 32).

    Groups stem (conv1), layer1..layer4 (conv2..conv5).
    """
    rules = [(r"conv1_", "stem"), *((rf"conv{i + 1}_", f"layer{i}") for i in range(1, 5))]
    return _build_application(
        request, keras.applications.ResNet50, _by_prefix(rules),
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )  # fmt: skip


def build_keras_mobilenet_v2(request: BuildRequest) -> BuiltBackbone:
    """keras.applications MobileNetV2 1.0 features (1280 channels).

    Groups stem, stage1..stage7 (torchvision's split), top.
    """
    height, width = request.image_size
    size = height if height == width and height in (96, 128, 160, 192, 224) else 224
    return _build_application(
        request, keras.applications.MobileNetV2, _by_prefix(_MOBILENET_V2_RULES),
        f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
    )  # fmt: skip


def build_keras_vgg16(request: BuildRequest) -> BuiltBackbone:
    """VGG-16 convolutional features (512 channels); groups block1..block5."""
    rules = [(rf"block{i}_", f"block{i}") for i in range(1, 6)]
    return _build_application(
        request, keras.applications.VGG16, _by_prefix(rules),
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )  # fmt: skip


def build_keras_xception(request: BuildRequest) -> BuiltBackbone:
    """Xception features (2048 channels); groups entry (blocks 1-4), middle (5-12), exit (13-14)."""
    return _build_application(
        request, keras.applications.Xception, _xception_groups,
        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )  # fmt: skip


def build_keras_efficientnet_b0(request: BuildRequest) -> BuiltBackbone:
    """EfficientNet-B0 features (1280 channels); groups stem, stage1..stage7, top. Takes 0..255 pixels."""
    rules = [(r"(normalization|rescaling|stem_)", "stem"), *((rf"block{i}", f"stage{i}") for i in range(1, 8)),
             (r"top_", "top")]  # fmt: skip
    return _build_application(
        request, keras.applications.EfficientNetB0, _by_prefix(rules), "efficientnetb0_notop.h5",
        after_load=_fold_efficientnet_std, same_graph_for_imagenet=False,
    )  # fmt: skip


def build_keras_inception_v3(request: BuildRequest) -> BuiltBackbone:
    """Inception v3 up to mixed10 (2048 channels); groups stem, mixed5 (mixed0-2), mixed6 (3-7), mixed7 (8-10)."""
    return _build_application(
        request, keras.applications.InceptionV3, _inception_groups,
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )  # fmt: skip
