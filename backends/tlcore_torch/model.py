"""The torch model: a backbone plus a head, with freeze plans applied natively."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tlcore import BackboneSpec, CheckpointError, FreezePlan, HeadSpec, LayerInfo, Model
from tlcore.extend import initial_head_weights
from tlcore_torch.backbones import NativeBackbone

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "linear": nn.Identity,
}


class TorchHead(nn.Module):
    """Pooling, optional hidden dense layers, dropout and the output layer.

    ``flatten`` flattens in NHWC order so that a flattened head means the same
    weights in every backend.
    """

    def __init__(self, spec: HeadSpec, in_channels: int, feature_hw: tuple[int, int]) -> None:
        super().__init__()
        self.pooling = spec.pooling
        in_features = in_channels * (feature_hw[0] * feature_hw[1] if spec.pooling == "flatten" else 1)
        self.in_features = in_features
        self.dropout = nn.Dropout(spec.dropout)
        self.hidden = nn.ModuleList()
        widths = [in_features, *spec.hidden]
        for fan_in, fan_out in itertools.pairwise(widths):
            self.hidden.append(nn.Linear(fan_in, fan_out))
        self.activation = _ACTIVATIONS[spec.activation]()
        self.out = nn.Linear(widths[-1], spec.num_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.pooling == "avg":
            x = features.mean(dim=(2, 3))
        elif self.pooling == "max":
            x = features.amax(dim=(2, 3))
        else:
            x = features.permute(0, 2, 3, 1).flatten(1)
        x = self.dropout(x)
        for layer in self.hidden:
            x = self.dropout(self.activation(layer(x)))
        out: torch.Tensor = self.out(x)
        return out

    def dense_layers(self) -> list[nn.Linear]:
        """The head's dense layers in order, output last."""
        return [*self.hidden, self.out]


class TorchNet(nn.Module):
    """Backbone then head. Frozen BatchNorm layers stay in eval mode through ``train()``."""

    def __init__(self, backbone: nn.Module, head: TorchHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.__dict__["eval_batchnorms"] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(images))
        return logits

    def train(self, mode: bool = True) -> TorchNet:
        super().train(mode)
        for module in self.__dict__["eval_batchnorms"]:
            module.eval()
        return self


class TorchModel(Model):
    """A :class:`tlcore.Model` holding a :class:`TorchNet`."""

    backend_name = "torch"

    def __init__(
        self,
        backbone_spec: BackboneSpec,
        head_spec: HeadSpec,
        native_backbone: NativeBackbone,
        *,
        device: torch.device,
        seed: int,
        image_size: tuple[int, int],
        weights: str | None,
        weights_sha256: str | None,
    ) -> None:
        self._describe(backbone_spec, head_spec, image_size=image_size, weights=weights, weights_sha256=weights_sha256)
        self.seed = seed
        self.device = device
        self._layers = native_backbone.layers
        backbone = native_backbone.module
        with torch.no_grad():
            probe = torch.zeros(1, backbone_spec.input.channels, *image_size)
            backbone.eval()
            feature_shape = backbone(probe).shape
        head = TorchHead(head_spec, int(feature_shape[1]), (int(feature_shape[2]), int(feature_shape[3])))
        with torch.no_grad():
            for layer, (kernel, bias) in zip(
                head.dense_layers(), initial_head_weights(head_spec, head.in_features, seed), strict=True
            ):
                layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
                layer.bias.copy_(torch.from_numpy(bias))
        self._net = TorchNet(backbone, head).to(device)
        self._bn_modules = {info.name: module for info, module in self._layers if info.is_batchnorm}
        self.apply_freeze(FreezePlan(trainable=frozenset(i.name for i, _ in self._layers), bn_training=frozenset()))

    @property
    def native(self) -> TorchNet:
        return self._net

    def layers(self) -> list[LayerInfo]:
        return [info for info, _ in self._layers]

    def named_layers(self) -> list[tuple[LayerInfo, nn.Module]]:
        """Each backbone layer's description with its module, in forward order."""
        return list(self._layers)

    def apply_freeze(self, plan: FreezePlan) -> None:
        self.check_plan(plan)
        for parameter in self._net.backbone.parameters():
            parameter.requires_grad_(False)
        for info, module in self._layers:
            if info.name in plan.trainable:
                for parameter in module.parameters(recurse=False):
                    parameter.requires_grad_(True)
        self._net.__dict__["eval_batchnorms"] = [
            module for name, module in self._bn_modules.items() if name not in plan.bn_training
        ]
        self._net.train(self._net.training)

    def trainable_layers(self) -> set[str]:
        return {
            info.name for info, module in self._layers if any(p.requires_grad for p in module.parameters(recurse=False))
        }

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """Evaluation mode without gradients; the model's training mode is put back afterwards."""
        was_training = self._net.training
        self._net.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self._net.train(was_training)

    def _nchw(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2)

    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._net(self._nchw(images)).float().cpu().numpy())

    def _features_batch(self, images: np.ndarray) -> np.ndarray:
        maps = self._net.backbone(self._nchw(images)).float().cpu().numpy()
        return np.ascontiguousarray(maps.transpose(0, 2, 3, 1))

    def backbone_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for info, module in self._layers:
            for key, value in module.state_dict().items():
                state[f"{info.name}.{key}"] = value.detach().cpu().numpy().copy()
        return state

    def head_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self._net.state_dict().items() if k.startswith("head.")}

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(value.shape) for name, value in self._net.state_dict().items()}

    def export_requirements(self, format: str) -> dict[str, str]:
        from tlcore_torch.export import export_requirements

        return export_requirements(format)

    def _write_onnx(self, path: Path) -> None:
        from tlcore_torch.export import write_onnx

        write_onnx(self._net, self.head.output_activation, self.image_size, self.backbone.input.channels, path)

    def _assign_state(self, tensors: dict[str, np.ndarray]) -> None:
        state = {name: torch.from_numpy(array) for name, array in tensors.items()}
        for name, buffer in self._net.state_dict().items():
            if name.endswith("num_batches_tracked"):  # backends without the counter do not save it
                state.setdefault(name, buffer)
        try:
            self._net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"saved tensors do not fit this model: {exc}") from None
