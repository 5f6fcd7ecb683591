"""A .pth holding more than tensors is refused, and tlcore never advises loading it unsafely."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import pytest

import tlcore

pytestmark = pytest.mark.requires("torch")


class Payload:
    """Unpickling this would create a folder: the stand-in for code a malicious file runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.makedirs, (str(self.marker),))


def refusal(path: Path, refers_to: str) -> str:
    return (
        f"weights file {str(path)!r} holds Python objects other than tensors (it refers to {refers_to}), and tlcore "
        "loads only tensors from a .pth or .pt file: unpickling other objects can run any code, so it is refused. "
        "If you trust the file, convert it to safetensors in a trusted environment (there, load the model with the "
        "code that made it and write safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')), then "
        "pass the .safetensors file."
    )


def test_a_malicious_pth_is_refused_without_unsafe_advice(tmp_path: Path) -> None:
    import torch
    from tlcore_torch.weights import read_state_dict

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.ones(2), "payload": Payload(marker)}, path)
    with pytest.raises(tlcore.WeightsError) as caught:
        read_state_dict(path)
    assert str(caught.value) == refusal(path, "os.makedirs")
    assert not marker.exists(), "nothing in the file ran"
    shown = "".join(traceback.format_exception(caught.value))
    assert "weights_only=False" not in shown and "set to `False`" not in shown, "torch's own advice is not shown"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_checkpoint_with_other_python_objects_gets_the_same_refusal(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from tlcore_torch.weights import read_state_dict

    path = tmp_path / "checkpoint.pt"
    torch.save({"conv.weight": torch.ones(2), "epoch": np.float64(3.0)}, path)
    with pytest.raises(tlcore.WeightsError) as caught:
        read_state_dict(path)
    message = str(caught.value)
    refers_to = message.split("(it refers to ", 1)[1].split(")", 1)[0]
    assert refers_to.startswith("numpy.") and refers_to.endswith(".scalar")  # numpy 2: numpy._core.multiarray
    assert message == refusal(path, refers_to)
    assert "weights_only" not in str(caught.value)
