"""On keras.applications backbones, layer indices count Keras's own ``base_model.layers``, as the tutorials do.

The reference is the Keras transfer-learning tutorial's own code, run with
Keras: ``base_model.trainable = True`` then ``layer.trainable = False`` for
``base_model.layers[:fine_tune_at]`` (and for all but the last N layers),
counting the trainable parameters Keras reports. tlcore's side is ``tlcore
layers ... --json`` and the built model's own trainable weights after the
policy is applied. Both run in one keras-tensorflow process (this file is
also its script: ``python test_layer_indices.py OUT.json``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import run_keras_script

CASES = {  # backbone: (image size, fine_tune_at values, last_n values)
    "keras_mobilenet_v2": (96, [100, 0, 1, 153, 154, -20], [20]),
    "keras_resnet50": (64, [143, 81], [10]),
}
CONSTRUCTORS = {"keras_mobilenet_v2": "MobileNetV2", "keras_resnet50": "ResNet50"}


def _keras_reference(base: Any, freeze: str) -> dict[str, Any]:
    """The tutorial's code on a keras.applications model: ``fine_tune_at=K`` or ``last_n=N``."""
    import numpy as np

    kind, value = freeze.split("=")
    layers = base.layers
    base.trainable = True
    for layer in layers:  # as freshly built: the model is reused across cases
        layer.trainable = True
    frozen = layers[: int(value)] if kind == "fine_tune_at" else layers[: len(layers) - int(value)]
    for layer in frozen:
        layer.trainable = False
    return {
        "count": len(layers),
        "trainable_parameters": int(sum(np.prod(v.shape) for v in base.trainable_weights)),
        "frozen": [index for index, layer in enumerate(layers) if not layer.trainable],
    }


def _tlcore_side(model: Any, freeze: str) -> dict[str, Any]:
    """tlcore's table for the same policy, and the built model's own trainable weights once it is applied."""
    import numpy as np

    from tlcore._layers import freeze_from_text, layer_table

    policy = freeze_from_text(freeze)
    table = layer_table(model, policy).to_dict()
    model.apply_freeze(policy.plan(model.layers()))
    return {
        "count": len(table["layers"]),
        "trainable_parameters": table["trainable_parameters"],
        "native_trainable_parameters": int(sum(np.prod(v.shape) for v in model.native.backbone.trainable_weights)),
        "frozen": [row["index"] for row in table["layers"] if not row["trainable"]],
        "indexing": table["indexing"],
    }


def _script(out: str) -> None:
    import keras

    import tlcore
    from tlcore._cli import main

    backend = tlcore.get_backend("keras-tensorflow")
    report: dict[str, Any] = {}
    for name, (size, starts, lasts) in CASES.items():
        base = getattr(keras.applications, CONSTRUCTORS[name])(
            input_shape=(size, size, 3), include_top=False, weights=None
        )
        spec = tlcore.load_plugins().backbone(name, backend.name)
        model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=2), weights=None, seed=0, image_size=(size, size))
        for freeze in [f"fine_tune_at={k}" for k in starts] + [f"last_n={n}" for n in lasts]:
            report[f"{name} {freeze}"] = {
                "keras": _keras_reference(base, freeze),
                "tlcore": _tlcore_side(model, freeze),
            }
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            main(["layers", name, "--backend", backend.name, "--image-size", str(size), "--freeze",
                  f"fine_tune_at={starts[0]}", "--json"])  # fmt: skip
        report[f"{name} command"] = json.loads(printed.getvalue())[0]
    Path(out).write_text(json.dumps(report))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        pytest.skip("needs keras and tensorflow")
    return run_keras_script(__file__, "tensorflow", tmp_path_factory.mktemp("layer_indices"), timeout=600)


@pytest.mark.parametrize(
    "case", [f"{n} fine_tune_at={s}" for n, (_, starts, _) in CASES.items() for s in starts]
    + [f"{n} last_n={k}" for n, (_, _, lasts) in CASES.items() for k in lasts],
)  # fmt: skip
def test_indices_freeze_what_the_keras_tutorial_freezes(case: str, report: dict[str, Any]) -> None:
    keras, ours = report[case]["keras"], report[case]["tlcore"]
    assert ours["count"] == keras["count"], "the table lists every layer of base_model.layers"
    assert ours["frozen"] == keras["frozen"]
    assert ours["trainable_parameters"] == keras["trainable_parameters"]
    assert ours["native_trainable_parameters"] == keras["trainable_parameters"]
    assert "base_model.layers" in ours["indexing"]


def test_mobilenet_v2_fine_tune_at_100_is_the_tutorials_experiment(report: dict[str, Any]) -> None:
    keras = report["keras_mobilenet_v2 fine_tune_at=100"]["keras"]
    assert keras["count"] == 154
    assert keras["trainable_parameters"] == 1_861_440
    command = report["keras_mobilenet_v2 command"]
    assert command["policy"] == "fine_tune_at=100"
    assert command["trainable_parameters"] == 1_861_440
    assert len(command["layers"]) == 154 and command["layers"][0]["layer_type"] == "InputLayer"


if __name__ == "__main__":
    _script(sys.argv[1])
