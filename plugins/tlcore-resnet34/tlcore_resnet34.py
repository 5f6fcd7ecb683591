"""tlcore-resnet34: torchvision's ResNet-34 as a portable backbone, on torch and on Keras (jax, tensorflow, torch)."""

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tlcore import BackboneSpec
from tlcore.architectures import torchvision as tv
from tlcore.extend import BuilderInfo, BuildRequest, BuiltBackbone, hookimpl

SPEC = tv.resnet_spec(
    "resnet34",
    feature_channels=512,
    weights=tv.imagenet_weights("ResNet34_Weights.IMAGENET1K_V1", "resnet34-b627a593.pth"),
    description="ResNet-34 (torchvision's structure), 21.3M parameters without the classifier.",
)
BLOCKS = (3, 4, 6, 3)  # BasicBlocks in layer1 .. layer4


@hookimpl
def tlcore_register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """What the architecture is: the neutral spec, the same for every backend."""
    register(SPEC)


@hookimpl
def tlcore_register_builders(register: Callable[[BuilderInfo], None]) -> None:
    """Which function builds it on each backend, imported when that backend first builds it."""
    register(BuilderInfo(SPEC.name, "torch", "tlcore_resnet34:build_torch"))
    for backend in ("keras-jax", "keras-tensorflow", "keras-torch"):
        register(BuilderInfo(SPEC.name, backend, "tlcore_resnet34:build_keras"))


def build_torch(request: BuildRequest) -> BuiltBackbone:
    """torchvision's own modules up to layer4: the module paths are torchvision's state-dict keys."""
    import torchvision
    from torch import nn

    net = torchvision.models.resnet34(weights=None)
    model = nn.Sequential(OrderedDict((name, getattr(net, name)) for name in tv.RESNET_PARTS))
    named = [(path, m) for path, m in model.named_modules() if list(m.parameters(recurse=False))]
    return BuiltBackbone(model, named, tv.resnet_group)


def build_keras(request: BuildRequest) -> BuiltBackbone:
    """The same network for NHWC images: torchvision's symmetric padding made explicit, its paths as names."""
    import keras
    import numpy as np
    from keras import layers

    def kaiming(shape: Any, dtype: Any = None) -> Any:  # torch's kaiming_normal_(mode="fan_out"), drawn by numpy
        kh, kw, _, out = shape
        return keras.ops.convert_to_tensor(np.random.normal(0.0, np.sqrt(2 / (kh * kw * out)), shape), dtype)

    spec = request.spec
    named: list[tuple[str, Any]] = []  # (torchvision path, Keras layer), in torchvision's order
    init = kaiming if request.weights.random_init else "zeros"  # else the backend loads weights next

    def conv_bn(x: Any, conv: str, bn: str, filters: int, kernel: int, stride: int = 1) -> Any:
        c = layers.Conv2D(filters, kernel, stride, use_bias=False, kernel_initializer=init, name=conv.replace(".", "_"))
        n = layers.BatchNormalization(epsilon=spec.bn_epsilon, momentum=1 - spec.bn_momentum, name=bn.replace(".", "_"))
        named.extend([(conv, c), (bn, n)])
        return n(c(layers.ZeroPadding2D(kernel // 2)(x) if kernel > 1 else x))

    inputs = keras.Input((*request.image_size, spec.input.channels))
    x = layers.ReLU()(conv_bn(inputs, "conv1", "bn1", 64, 7, 2))
    x = layers.MaxPooling2D(3, 2)(layers.ZeroPadding2D(1)(x))  # after a ReLU, zeros pad like torch's -inf
    for stage, (repeats, width) in enumerate(zip(BLOCKS, tv.RESNET_WIDTHS, strict=True), start=1):
        for i in range(repeats):
            block, stride = f"layer{stage}.{i}", 2 if stage > 1 and i == 0 else 1
            y = layers.ReLU()(conv_bn(x, f"{block}.conv1", f"{block}.bn1", width, 3, stride))
            y = conv_bn(y, f"{block}.conv2", f"{block}.bn2", width, 3)
            if stride != 1:  # torchvision's downsample, where the shape changes
                x = conv_bn(x, f"{block}.downsample.0", f"{block}.downsample.1", width, 1, stride)
            x = layers.ReLU()(layers.Add()([y, x]))
    return BuiltBackbone(keras.Model(inputs, x, name=spec.name), named, tv.resnet_group)
