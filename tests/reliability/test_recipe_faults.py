"""Bad recipes and bad ``tlcore run`` arguments are refused before the first training step.

Each case runs ``tlcore run`` in-process on a tiny recipe (digits at 32 px,
efficientnet_lite0 without weights, torch) and checks the exit code (2), the
message (the recipe key, the value and what is allowed), that stderr holds
no traceback, and that the trainer never began a phase nor took a step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from tlcore import ConfigError
from tlcore._cli import main

TORCH = ("torch", "sklearn")

TINY_RECIPE = """
name = "tiny-faults"
seed = 1

[backbone]
name = "efficientnet_lite0"
weights = "none"

[data]
dataset = "digits"
image_size = 32
labels_per_class = 4
test_fraction = 0.5
batch_size = 16

[[phases]]
name = "head"
freeze = "frozen"
epochs = 1

[[phases]]
name = "tune"
freeze = { policy = "fine_tune_at", at = "stage7" }
epochs = 2
learning_rate = 1e-4
"""

GOOD_FREEZE = 'freeze = { policy = "fine_tune_at", at = "stage7" }'


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any phase start or training step fail the test (it must not happen)."""
    from tlcore_torch.trainer import TorchTrainer

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("training began although the recipe is invalid")

    monkeypatch.setattr(TorchTrainer, "_begin_phase", refuse)
    monkeypatch.setattr(TorchTrainer, "_train_step", refuse)


def _run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recipe: str, *, out: Path | None = None
) -> tuple[int, str]:
    file = tmp_path / "recipe.toml"
    file.write_text(recipe)
    target = tmp_path / "out" if out is None else out
    code = main(["run", str(file), "--backend", "torch", "--out", str(target), "--no-progress"])
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return code, error


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("freeze", "expected"),
    [
        (
            'freeze = { policy = "fine_tune_at", at = 100000 }',
            "ConfigError: phases[1].freeze (phase 'tune', backbone efficientnet_lite0 with 98 layers): "
            "fine_tune_at=100000 is out of range: this backbone has 98 layers (0..98, or -98..-1 from the end). "
            "Give an index in that range, a layer name or one of the groups: stem, stage1",
        ),
        (
            'freeze = { policy = "fine_tune_at", at = "stage9" }',
            "ConfigError: phases[1].freeze (phase 'tune', backbone efficientnet_lite0 with 98 layers): "
            "fine_tune_at='stage9' names no layer or group of this backbone. Did you mean 'stage7'? "
            "Groups: stem, stage1, stage2, stage3, stage4, stage5, stage6, stage7, top; "
            "layers: stem_conv ... top_bn (or an index 0..98).",
        ),
        (
            'freeze = { policy = "fine_tune_at", at = "layer4" }',
            "phases[1].freeze (phase 'tune', backbone efficientnet_lite0 with 98 layers): "
            "fine_tune_at='layer4' names no layer or group of this backbone. Groups: stem, stage1",
        ),
        (
            'freeze = { policy = "groups", groups = ["stage7", "layer4"] }',
            "phases[1].freeze (phase 'tune', backbone efficientnet_lite0 with 98 layers): "
            "group 'layer4' is not a group of this backbone. Groups: stem, stage1",
        ),
        (
            'freeze = { policy = "regex", pattern = "^layer4" }',
            "phases[1].freeze (phase 'tune', backbone efficientnet_lite0 with 98 layers): regex='^layer4' matches "
            "no layer; layer names look like 'stem_conv', 'block5a_expand_bn', 'top_bn'. Fix the pattern, "
            'or use freeze = "frozen" to train only the head.',
        ),
        (
            # Epoch 0 of the phase is fine; the schedule's epoch 1 names a group that does not exist.
            'freeze = { policy = "gradual", schedule = { 0 = "top", 1 = "stage9" } }',
            "phases[1].freeze (phase 'tune', backbone efficientnet_lite0 with 98 layers): "
            "fine_tune_at='stage9' names no layer or group of this backbone. Did you mean 'stage7'?",
        ),
    ],
    ids=["index-out-of-range", "unknown-group", "torchvision-group", "groups", "regex-matches-nothing", "gradual"],
)
def test_a_bad_freeze_policy_of_a_later_phase_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], freeze: str, expected: str
) -> None:
    code, error = _run(tmp_path, capsys, TINY_RECIPE.replace(GOOD_FREEZE, freeze))
    assert code == 2
    assert expected in error
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
def test_an_unknown_learning_rate_group_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = TINY_RECIPE.replace("learning_rate = 1e-4", "learning_rate = 1e-4\nlr_multipliers = { stage99 = 0.1 }")
    code, error = _run(tmp_path, capsys, recipe)
    assert code == 2
    assert (
        "ConfigError: phases[1].lr_multipliers (backbone efficientnet_lite0): phase 'tune': lr_multipliers names "
        "'stage99', which is not a group of this backbone. Did you mean 'stage7'? Expected one of: head, backbone, "
        "stem, stage1, stage2, stage3, stage4, stage5, stage6, stage7, top." in error
    )


@pytest.mark.requires(*TORCH)
def test_the_python_api_checks_every_phase_before_reading_a_batch() -> None:
    import tlcore
    from tlcore.plugins import load_plugins
    from tlcore.training import Phase, TrainerOptions

    backend = tlcore.get_backend("torch")
    spec = load_plugins().backbone("efficientnet_lite0", "torch")
    model = backend.build_model(spec, tlcore.HeadSpec(num_outputs=3), weights=None, seed=0, image_size=(32, 32))
    trainer = backend.make_trainer(model, TrainerOptions(progress=False))
    phases = [Phase(name="head"), Phase(name="tune", freeze=tlcore.FineTuneAt("layer4"))]
    untouched = cast(Any, object())  # any use of the batches would fail with an AttributeError
    with pytest.raises(ConfigError, match=r"^phases\[1\]\.freeze \(phase 'tune', .*'layer4' names no layer"):
        trainer.fit(untouched, phases, validation=untouched)
    assert trainer.history.phases == []


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
def test_an_image_size_no_machine_can_train_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, error = _run(tmp_path, capsys, TINY_RECIPE.replace("image_size = 32", "image_size = 100000"))
    assert code == 2
    assert (
        "ConfigError: data.image_size=100000 is too large: tlcore allows 32..4096 pixels for efficientnet_lite0 "
        "(its default is 224); one batch needs at least 15.4 TB (data.batch_size=16 x 100000 x 100000 x 3 channels "
        "x 4 bytes x 8 for activations)" in error
    )
    assert "available. Use a smaller data.image_size." in error


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
def test_an_image_size_beyond_this_machines_memory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tlcore._runner.available_memory_bytes", lambda: 500_000_000)
    recipe = TINY_RECIPE.replace("image_size = 32", "image_size = 1024")
    code, error = _run(tmp_path, capsys, recipe)
    assert code == 2
    assert (
        "ConfigError: data.image_size=1024 does not fit in memory: one batch needs at least 1.6 GB "
        "(data.batch_size=16 x 1024 x 1024 x 3 channels x 4 bytes x 8 for activations), more than the 0.5 GB "
        "this machine has available. Lower data.image_size or data.batch_size." in error
    )


def test_available_memory_is_known_on_linux() -> None:
    from tlcore._runner import available_memory_bytes

    available = available_memory_bytes()
    if Path("/proc/meminfo").exists():
        assert available is not None and available > 0


def test_a_folder_given_as_the_recipe_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "quick.toml").write_text(TINY_RECIPE)
    code = main(["run", str(tmp_path / "recipes"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error
    assert (
        f"RecipeError: recipe file {str(tmp_path / 'recipes')!r} is a directory; expected a .toml recipe file. "
        "It holds quick.toml." in error
    )


def test_a_recipe_that_is_not_text_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "model.toml"
    recipe.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    code = main(["run", str(recipe), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error
    assert f"RecipeError: recipe file {str(recipe)!r} is not UTF-8 text" in error


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
def test_an_output_folder_under_a_file_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "out"
    code, error = _run(tmp_path, capsys, TINY_RECIPE, out=out)
    assert code == 2
    assert f"cannot write the output folder {str(out)!r} (Not a directory)" in error


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
def test_an_output_folder_under_proc_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("needs /proc")
    out = Path("/proc/tlcore-run-out")
    code, error = _run(tmp_path, capsys, TINY_RECIPE, out=out)
    assert code == 2
    assert f"cannot write the output folder {str(out)!r} (" in error


@pytest.mark.requires(*TORCH)
@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('weights = "none"', 'weights = "/nonexistent/lite0.safetensors"'),
            "WeightsError: weights file '/nonexistent/lite0.safetensors' for 'efficientnet_lite0' does not exist.",
        ),
        (
            ("test_fraction = 0.5", "test_fraction = 0.5\noptions = { colour = true }"),
            "ConfigError: dataset 'digits' has no option 'colour'. It takes no options.",
        ),
        (
            ("image_size = 32", "image_size = 16"),
            "ConfigError: data.image_size=16 is too small for efficientnet_lite0: it needs at least 32 pixels.",
        ),
        (
            ("epochs = 1", "epochs = 0"),
            "RecipeError: recipe key 'phases[0]': phase 'head': epochs must be at least 1; got 0.",
        ),
    ],
    ids=["missing-weights-file", "unknown-dataset-option", "image-too-small", "no-epochs"],
)
def test_other_bad_values_are_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], expected: str
) -> None:
    code, error = _run(tmp_path, capsys, TINY_RECIPE.replace(*change))
    assert code == 2
    assert expected in error
