"""Training behaviour every backend must share: what changes, what must not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tlcore

from .conftest import Tiny, build, make_tiny, options


def _changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray], key: str) -> set[str]:
    return {name for name in before if key in name and not np.array_equal(before[name], after[name])}


def _batchnorm_stats(state: dict[str, np.ndarray]) -> list[str]:
    return [name for name in state if name.endswith((".running_mean", ".running_var"))]


@pytest.mark.parametrize("augment", [False, True], ids=["cached", "augmented"])
def test_feature_extraction_leaves_backbone_unchanged(backend: tlcore.Backend, augment: bool) -> None:
    tiny = make_tiny(backend, augment=augment)
    model = build(backend, tiny)
    before = model.backbone_state()
    trainer = backend.make_trainer(model, options())
    phase = tlcore.Phase(name="head", freeze=tlcore.Frozen(), epochs=2, learning_rate=1e-2)
    history = trainer.fit(tiny.train, [phase], validation=tiny.validation)
    assert history.phases[0].cached_features is (not augment)
    after = model.backbone_state()
    assert before.keys() == after.keys()
    unchanged = [name for name in before if np.array_equal(before[name], after[name])]
    assert unchanged == list(before), "a frozen backbone must not change, BatchNorm statistics included"


def test_full_fine_tune_changes_weights_but_not_bn_stats_by_default(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    before = model.backbone_state()
    trainer = backend.make_trainer(model, options())
    trainer.fit(tiny.train, [tlcore.Phase(freeze=tlcore.Unfrozen(), epochs=1, learning_rate=1e-3)])
    after = model.backbone_state()
    stats = _batchnorm_stats(before)
    weights = [name for name in before if name not in stats and "num_batches" not in name]
    moved = [n for n in weights if not np.array_equal(before[n], after[n])]
    # A few units of a randomly initialised net sit in ReLU6's flat region and get no gradient.
    assert len(moved) >= 0.9 * len(weights), f"only {len(moved)} of {len(weights)} weight tensors moved"
    assert all(np.array_equal(before[n], after[n]) for n in stats), "BatchNorm stays in inference mode by default"


def test_train_bn_updates_statistics_of_unfrozen_layers_only(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    before = model.backbone_state()
    policy = tlcore.FineTuneAt("stage7", train_bn=True)
    trainer = backend.make_trainer(model, options())
    trainer.fit(tiny.train, [tlcore.Phase(freeze=policy, epochs=1, learning_rate=1e-3)])
    after = model.backbone_state()
    moved = {n for n in _batchnorm_stats(before) if not np.array_equal(before[n], after[n])}
    trainable_bn = {layer.name for layer in model.layers() if layer.is_batchnorm and layer.group in ("stage7", "top")}
    assert moved, "unfrozen BatchNorm with train_bn=True must update its statistics"
    assert {name.rsplit(".", 1)[0] for name in moved} <= trainable_bn, "frozen BatchNorm statistics never change"


def test_save_then_load_reproduces_predictions(backend: tlcore.Backend, tiny: Tiny, tmp_path: Path) -> None:
    model = build(backend, tiny)
    trainer = backend.make_trainer(model, options())
    trainer.fit(tiny.train, [tlcore.Phase(freeze=tlcore.LastN(10), epochs=1, learning_rate=1e-3)])
    images, _ = tiny.validation.all_prepared()
    path = model.save(tmp_path / "model.safetensors")
    loaded = backend.load_model(path)
    np.testing.assert_allclose(loaded.predict(images), model.predict(images), rtol=1e-5, atol=1e-5)
    assert loaded.head == model.head and loaded.backbone.name == model.backbone.name


def test_whole_model_exports_to_a_neutral_checkpoint_and_loads_back(
    backend: tlcore.Backend, tiny: Tiny, tmp_path: Path
) -> None:
    model = build(backend, tiny)
    backend.make_trainer(model, options()).fit(tiny.train, [tlcore.Phase(freeze=tlcore.LastN(10), epochs=1)])
    images, _ = tiny.validation.all_prepared()
    manifest = model.export(tmp_path / "model")
    assert manifest == tmp_path / "model.json" and (tmp_path / "model.safetensors").is_file()
    loaded = backend.load_model(manifest)
    np.testing.assert_allclose(loaded.predict(images), model.predict(images), rtol=1e-5, atol=1e-5)
    assert loaded.head == model.head and loaded.backbone.name == model.backbone.name
    backbone_only = model.export_backbone(tmp_path / "backbone")
    with pytest.raises(tlcore.CheckpointError, match="is a backbone checkpoint, not a whole model"):
        backend.load_model(backbone_only)
    tensors = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(tensors[:-4] + bytes(4))  # one weight changed
    with pytest.raises(tlcore.WeightsError, match="do not match their manifest"):
        backend.load_model(manifest)


def test_load_rejects_garbage_and_keeps_nothing_half_written(backend: tlcore.Backend, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(tlcore.CheckpointError, match="is not a readable tlcore model"):
        backend.load_model(garbage)
    with pytest.raises(tlcore.CheckpointError, match="no saved model at"):
        backend.load_model(tmp_path / "missing.safetensors")


def _run(backend: tlcore.Backend, seed: int) -> tuple[list[float], tlcore.Evaluation]:
    tiny = make_tiny(backend, augment=True)
    model = build(backend, tiny, seed=seed, dropout=0.2)
    trainer = backend.make_trainer(model, options(seed=seed))
    phases = [
        tlcore.Phase(name="head", freeze=tlcore.Frozen(), epochs=1, learning_rate=1e-2),
        tlcore.Phase(name="tune", freeze=tlcore.FineTuneAt("stage7"), epochs=1, learning_rate=1e-3),
    ]
    backend.seed(seed)
    history = trainer.fit(tiny.train, phases, validation=tiny.validation)
    losses = [e.loss for p in history.phases for e in p.epochs]
    return losses, trainer.evaluate(tiny.validation)


def test_same_seed_reproduces_metrics(backend: tlcore.Backend) -> None:
    first_losses, first = _run(backend, seed=3)
    second_losses, second = _run(backend, seed=3)
    np.testing.assert_allclose(first_losses, second_losses, rtol=1e-5)
    assert first.accuracy == second.accuracy
    np.testing.assert_allclose(first.loss, second.loss, rtol=1e-5)
    other_losses, _ = _run(backend, seed=4)
    assert not np.allclose(first_losses, other_losses, rtol=1e-5)


def test_gradual_unfreezing_opens_one_group_per_epoch(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    seen: list[int] = []
    trainer = backend.make_trainer(model, options())
    phase = tlcore.Phase(freeze=tlcore.GradualUnfreezing(every=1, start=1), epochs=3, learning_rate=1e-4)
    history = trainer.fit(tiny.train, [phase], on_epoch=lambda _phase, record: seen.append(record.trainable_layers))
    assert seen == sorted(seen) and len(set(seen)) == 3, "each epoch trains strictly more layers"
    assert history.phases[0].cached_features is False


def test_early_stopping_stops_and_keeps_best(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    trainer = backend.make_trainer(model, options())
    stop = tlcore.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9)  # nothing counts as improvement
    phase = tlcore.Phase(freeze=tlcore.Frozen(), epochs=5, learning_rate=1e-2, early_stopping=stop)
    history = trainer.fit(tiny.train, [phase], validation=tiny.validation)
    record = history.phases[0]
    assert record.stopped_early and len(record.epochs) == 2 and record.best_epoch == 0
    best_val_loss = record.epochs[0].val_loss
    evaluation = trainer.evaluate(tiny.validation)
    assert evaluation.loss == pytest.approx(best_val_loss, rel=1e-4), "weights of the best epoch are restored"


def test_evaluation_reports_per_class_accuracy_and_confusion(backend: tlcore.Backend, tiny: Tiny) -> None:
    model = build(backend, tiny)
    trainer = backend.make_trainer(model, options())
    trainer.fit(tiny.train, [tlcore.Phase(freeze=tlcore.Frozen(), epochs=3, learning_rate=3e-2)])
    evaluation = trainer.evaluate(tiny.validation)
    confusion = np.array(evaluation.confusion_matrix)
    assert confusion.shape == (3, 3) and confusion.sum() == len(tiny.dataset)
    assert evaluation.accuracy == pytest.approx(np.trace(confusion) / confusion.sum())
    assert len(evaluation.per_class_accuracy) == 3
