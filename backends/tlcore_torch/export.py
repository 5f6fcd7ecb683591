"""The torch model's ONNX export, through torch's own exporter (``torch.onnx.export(..., dynamo=True)``).

What is exported is :class:`ServingModule`: the model's :class:`TorchNet` in
evaluation mode behind a permute from NHWC, plus the head's output
activation, so the ONNX graph takes what :meth:`tlcore.Model.predict` takes
(NHWC float32 images, preprocessed as the backbone's spec says, any batch
size, the image size the model was built for) and returns what it returns.
torch's exporter goes through ``torch.export`` and needs ``onnxscript``;
the older TorchScript exporter (``dynamo=False``) is deprecated and not used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from tlcore import ConfigError
from tlcore.extend import ONNX_OPSET

__all__ = ["ServingModule", "export_requirements", "write_onnx"]


class ServingModule(nn.Module):
    """``activation(net(images.permute(0, 3, 1, 2)))``: :meth:`tlcore.Model.predict` as one module."""

    def __init__(self, net: nn.Module, output_activation: str) -> None:
        super().__init__()
        self.net = net
        self.output_activation = output_activation

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(images.permute(0, 3, 1, 2))
        if self.output_activation == "softmax":
            return torch.softmax(logits, dim=-1)
        if self.output_activation == "sigmoid":
            return torch.sigmoid(logits)
        return logits


def export_requirements(format: str) -> dict[str, str]:
    """``{module: pip name}`` an export in ``format`` needs: ONNX needs onnx and onnxscript."""
    if format == "onnx":
        return {"onnx": "onnx", "onnxscript": "onnxscript"}
    return {}


def write_onnx(net: nn.Module, output_activation: str, image_size: tuple[int, int], channels: int, path: Path) -> None:
    """Write ``net`` (plus ``output_activation``) to ``path`` as ONNX with a dynamic batch dimension."""
    device = next(net.parameters()).device
    sample = torch.zeros((2, *image_size, channels), dtype=torch.float32, device=device)
    was_training = net.training
    net.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes about its own internals
            program = torch.onnx.export(
                ServingModule(net, output_activation).eval(),
                (sample,),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=["images"],
                output_names=["predictions"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                verbose=False,
            )
    finally:
        net.train(was_training)
    if program is None:
        raise ConfigError("torch's ONNX exporter returned nothing; expected an ONNX program (torch >= 2.5).")
    program.save(str(path))
