"""The backbones that the Keras backends build, and the builder of each.

This module imports no framework (no keras, tensorflow or jax): specs and
builders are registered when plugins load, and a builder is imported only
when a backbone is first built, after the Keras backend has been selected.

Two kinds of backbone:

- Portable ones: ``resnet18``, ``resnet50``, ``mobilenet_v2`` (torchvision's
  structure, :mod:`tlcore_keras.torchvision_models`) and ``efficientnet_lite0``
  (:mod:`tlcore_keras.efficientnet_lite`). Their specs are the core's
  (:mod:`tlcore.architectures`), shared with every backend: same
  preprocessing, groups, BatchNorm values, weights and layer names, so one
  set of weights (a torchvision checkpoint, a neutral checkpoint) loads on
  every backend and gives the same features. This plugin registers only
  their Keras builders.
- ``keras.applications`` models: ``keras_resnet50``, ``keras_mobilenet_v2``,
  ``keras_vgg16``, ``keras_xception``, ``keras_efficientnet_b0``,
  ``keras_inception_v3``, with Keras's layer names and Keras's ImageNet files
  (their specs are registered here). Each spec records the
  preprocessing and BatchNorm values of the model as ``keras.applications``
  builds it (checked against the Keras 3.15 source), so that setting them
  explicitly changes nothing: ResNet50 uses epsilon 1.001e-5, MobileNetV2
  epsilon 1e-3 and momentum 0.999, the others Keras's default epsilon 1e-3
  and momentum 0.99. Groups are named as on torch.

``bn_momentum`` is always in PyTorch's convention (the weight of the new batch
statistic): Keras momentum is ``1 - spec.bn_momentum``.
"""

from __future__ import annotations

import dataclasses

from tlcore import BackboneSpec, ImageInputSpec, StateDictLayout, WeightsSource
from tlcore.architectures.torchvision import RESNET_GROUPS, STAGE_GROUPS

__all__ = ["APPLICATIONS", "BUILDERS", "PORTABLE_BUILDERS"]

# keras.applications.imagenet_utils.preprocess_input modes, written as ImageInputSpecs.
# "caffe": RGB -> BGR, then subtract the ImageNet mean per channel (given in BGR order), no scaling.
_CAFFE = ImageInputSpec(
    size=(224, 224), mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0), value_range=(0.0, 255.0),
    channel_order="BGR",
)  # fmt: skip
# "tf": pixels scaled to [-1, 1].
_TF = ImageInputSpec(size=(224, 224), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), value_range=(-1.0, 1.0))
# EfficientNet rescales and normalizes inside the model: it takes raw 0..255 pixels.
_RAW = ImageInputSpec(size=(224, 224), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), value_range=(0.0, 255.0))

_IMAGENET_TERMS = "; weights trained on ImageNet-1k, subject to its terms (non-commercial research and education)"


def _keras_weights(model: str, license: str, origin: str) -> tuple[WeightsSource, ...]:
    return (
        WeightsSource(
            name="imagenet",
            source=f"keras.applications {model} (hash-checked download)",
            license=license + _IMAGENET_TERMS,
            provider="keras.applications",
            reference=model,
            description=f"ImageNet-1k weights of keras.applications.{model} (include_top=False), {origin}. "
            "Downloaded by Keras on first use into KERAS_HOME/models with its file hash checked; without internet "
            "access, download the file elsewhere and pass its path as weights.",
        ),
    )


_RESNET_GROUPS = RESNET_GROUPS  # named as on torch, so one policy means the same thing on either
_STAGE_GROUPS = STAGE_GROUPS


# Keras's .h5 files hold Keras's variables, not a torch state dict: nothing to convert to a neutral checkpoint.
_KERAS_LAYOUT = StateDictLayout(convertible=False)


def _application_specs() -> tuple[BackboneSpec, ...]:
    def spec(
        name: str,
        family: str,
        channels: int,
        input: ImageInputSpec,
        groups: tuple[str, ...],
        *,
        weights: tuple[WeightsSource, ...],
        bn_epsilon: float,
        bn_momentum: float,
        description: str,
    ) -> BackboneSpec:
        return BackboneSpec(
            name=name,
            family=family,
            feature_channels=channels,
            input=input,
            groups=groups,
            weights=weights,
            bn_epsilon=bn_epsilon,
            bn_momentum=bn_momentum,
            description=description,
            state_dict=_KERAS_LAYOUT,
        )

    return (
        spec(
            "keras_resnet50", "resnet", 2048, _CAFFE, _RESNET_GROUPS,
            weights=_keras_weights("ResNet50", "MIT (Kaiming He's original Caffe release)", "ported from Caffe"),
            bn_epsilon=1.001e-5, bn_momentum=0.01,
            description="ResNet-50 v1 (keras.applications; stride on the 1x1 convolution, as in Caffe; convolutions "
            "with biases), 23.6M parameters without the classifier. Caffe preprocessing: BGR, ImageNet mean "
            "subtracted, no scaling. Keras's layer names: for torchvision's ResNet-50 on every backend, use resnet50.",
        ),
        spec(
            "keras_mobilenet_v2", "mobilenet", 1280, _TF, _STAGE_GROUPS,
            weights=_keras_weights("MobileNetV2", "Apache-2.0 (TensorFlow models)", "alpha 1.0; Keras picks the "
                                   "file trained at the nearest of 96, 128, 160, 192, 224 px"),
            bn_epsilon=1e-3, bn_momentum=0.001,
            description="MobileNetV2 1.0 (keras.applications: TensorFlow padding), 2.3M parameters without the "
            "classifier; pixels in [-1, 1]. Keras's layer names: for torchvision's MobileNetV2 on every backend, use "
            "mobilenet_v2.",
        ),
        spec(
            "keras_vgg16", "vgg", 512, _CAFFE, ("block1", "block2", "block3", "block4", "block5"),
            weights=_keras_weights("VGG16", "CC-BY-4.0 (Oxford Visual Geometry Group)", "ported from Caffe"),
            bn_epsilon=1e-3, bn_momentum=0.01,
            description="VGG-16 convolutional part (keras.applications, no BatchNorm), 14.7M parameters. "
            "Caffe preprocessing: BGR, ImageNet mean subtracted, no scaling.",
        ),
        spec(
            "keras_xception", "xception", 2048, dataclasses.replace(_TF, size=(299, 299), min_size=71),
            ("entry", "middle", "exit"),
            weights=_keras_weights("Xception", "MIT (trained by the Keras authors)", "trained by François Chollet"),
            bn_epsilon=1e-3, bn_momentum=0.01,
            description="Xception (keras.applications), 20.9M parameters without the classifier; groups are its "
            "entry (blocks 1-4), middle (5-12) and exit (13-14) flows; pixels in [-1, 1].",
        ),
        spec(
            "keras_efficientnet_b0", "efficientnet", 1280, _RAW, _STAGE_GROUPS,
            weights=_keras_weights("EfficientNetB0", "Apache-2.0 (TensorFlow TPU EfficientNet)",
                                   "converted from Google's TensorFlow checkpoint"),
            bn_epsilon=1e-3, bn_momentum=0.01,
            description="EfficientNet-B0 (keras.applications: SiLU, squeeze-excite, TensorFlow padding), 4.0M "
            "parameters without the classifier. It rescales and normalizes inside the model, so it takes raw pixels "
            "in [0, 255] (mean 0, std 1 here). The ImageNet std that keras.applications applies with an extra "
            "Rescaling layer is folded into its Normalization layer, so the graph is the same with any weights.",
        ),
        spec(
            "keras_inception_v3", "inception", 2048, dataclasses.replace(_TF, size=(299, 299), min_size=75),
            ("stem", "mixed5", "mixed6", "mixed7"),
            weights=_keras_weights("InceptionV3", "Apache-2.0 (TensorFlow models)",
                                   "converted from Google's TensorFlow checkpoint"),
            bn_epsilon=1e-3, bn_momentum=0.01,
            description="Inception v3 (keras.applications) up to mixed10, 21.8M parameters without the classifier; "
            "BatchNorm without scale. Groups as torchvision names the blocks: mixed5 = Keras mixed0-2, mixed6 = "
            "mixed3-7, mixed7 = mixed8-10; pixels in [-1, 1].",
        ),
    )  # fmt: skip


APPLICATIONS: tuple[BackboneSpec, ...] = _application_specs()
"""The keras.applications backbones' specs (Keras's layer names, built only by the Keras backends)."""

PORTABLE_BUILDERS: dict[str, str] = {
    "resnet18": "tlcore_keras.torchvision_models:build_resnet18",
    "resnet50": "tlcore_keras.torchvision_models:build_resnet50",
    "mobilenet_v2": "tlcore_keras.torchvision_models:build_mobilenet_v2",
    "efficientnet_lite0": "tlcore_keras.efficientnet_lite:build_efficientnet_lite0",
}
"""The core's portable architectures and this backend's builder of each."""

BUILDERS: dict[str, str] = {
    **PORTABLE_BUILDERS,
    **{spec.name: f"tlcore_keras.applications:build_{spec.name}" for spec in APPLICATIONS},
}
"""Every backbone a Keras backend builds, and its builder."""
