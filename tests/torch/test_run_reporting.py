"""What a torch run reports: ``weights="none"`` recorded as random initialisation, progress labels, phase rates."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

import tlcore
from tlcore.data import Batches, Dataset, ImagePipeline

SIZE = (32, 32)


def _model(weights: str | None) -> tlcore.Model:
    backend = tlcore.get_backend("torch")
    spec = tlcore.load_plugins().backbone("efficientnet_lite0", "torch")
    return backend.build_model(spec, tlcore.HeadSpec(num_outputs=2), weights=weights, seed=0, image_size=SIZE)


@pytest.mark.parametrize("weights", ["none", "NONE"])
def test_build_model_takes_none_as_a_string(weights: str) -> None:
    model = _model(weights)
    assert model.weights is None and model.weights_sha256 is None
    reference = _model(None).state()
    state = model.state()
    assert all(np.array_equal(state[key], reference[key]) for key in reference)  # the same seeded draw


def test_unknown_weights_on_build_model_list_what_is_accepted() -> None:
    with pytest.raises(tlcore.WeightsError, match=r"Pass weights=None or \"none\" \(random initialisation\), a "):
        _model("nope")


def test_progress_names_phase_and_epoch_and_phase_rate_is_images_over_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("tqdm")
    model = _model(None)
    spec = model.backbone
    rng = np.random.default_rng(0)
    dataset = Dataset.from_arrays(rng.integers(0, 255, (20, *SIZE, 3), dtype=np.uint8), np.arange(20) % 2)
    train = Batches(dataset, ImagePipeline(spec.input, SIZE), batch_size=10, shuffle=True, seed=0)
    trainer = tlcore.get_backend("torch").make_trainer(model, tlcore.TrainerOptions(progress=True, device="cpu"))
    phases = [
        tlcore.Phase(name="head", freeze=tlcore.Frozen(), epochs=2, learning_rate=1e-3),
        tlcore.Phase(name="tune", freeze=tlcore.FineTuneAt("top"), epochs=1, learning_rate=1e-4),
    ]
    history = trainer.fit(train, phases, validation=train)
    labels = set(re.findall(r"phase \d/\d \w+: epoch \d/\d", capsys.readouterr().err))
    assert labels == {"phase 1/2 head: epoch 1/2", "phase 1/2 head: epoch 2/2", "phase 2/2 tune: epoch 1/1"}
    for phase in history.phases:
        assert [e.images for e in phase.epochs] == [20] * len(phase.epochs)
        assert phase.images_per_second == pytest.approx(20 * len(phase.epochs) / phase.seconds)
        for epoch in phase.epochs:  # each epoch's own rate: its training steps only
            assert epoch.images_per_second == pytest.approx(20 / epoch.seconds)
    assert history.to_dict()[0]["images_per_second"] == history.phases[0].images_per_second
