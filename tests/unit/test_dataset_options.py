"""A dataset's options are checked against its loader before it is called; what a loader returns is checked after."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tlcore import ConfigError, DataError, PluginError
from tlcore.data import Dataset, DatasetSource
from tlcore.plugins import DatasetInfo, _hookspecs, hookimpl, load_plugins, register_plugin
from tlcore.plugins._datasets import check_options, describe_options

IMAGE_FOLDER_OPTIONS = "Its options: path (str | Path, required), channels (int, default 3), size (default None)."


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    image = pytest.importorskip("PIL.Image")
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        image.new("RGB", (4, 4)).save(tmp_path / name / "1.png")
    return tmp_path


def test_a_wrong_typed_option_names_key_value_types_and_the_options() -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugins().open_dataset("image-folder", path=5)
    assert str(caught.value) == (
        f"dataset 'image-folder': option path=5 is of type int; expected str | Path. {IMAGE_FOLDER_OPTIONS}"
    )


def test_a_wrong_typed_int_option(folder: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("option channels='3' is of type str; expected int.")):
        load_plugins().open_dataset("image-folder", path=str(folder), channels="3")


def test_size_is_refused_with_data_image_size_named(folder: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_plugins().open_dataset("image-folder", path=str(folder), size=64)
    message = str(caught.value)
    assert message.startswith("image folder: the size option (64) is gone: photos of any size are resized")
    assert "from data.image_size" in message and "Remove options.size from the recipe." in message


def test_an_unknown_option_is_named_with_a_suggestion_and_the_options(folder: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugins().open_dataset("image-folder", path=str(folder), chanels=1)
    assert str(caught.value) == (
        f"dataset 'image-folder' has no option 'chanels'. Did you mean 'channels'? {IMAGE_FOLDER_OPTIONS}"
    )


def test_an_option_of_a_dataset_without_options() -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugins().open_dataset("digits", colour=True)
    assert str(caught.value) == "dataset 'digits' has no option 'colour'. It takes no options."


def test_a_missing_required_option_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugins().open_dataset("image-folder")
    assert str(caught.value) == (
        "dataset 'image-folder' needs the option 'path' (in a recipe: [data] options = { path = ... }). "
        f"{IMAGE_FOLDER_OPTIONS}"
    )


def test_good_options_open_the_dataset(folder: Path) -> None:
    source = load_plugins().open_dataset("image-folder", path=str(folder), channels=1)
    assert isinstance(source, DatasetSource) and source.class_names == ("cat", "dog")


def _loader(rate: float = 0.5, count: int = 2, mode: str | None = None) -> None:
    """A loader with typed options."""


def test_ints_fit_floats_and_bools_fit_no_number() -> None:
    check_options(_loader, {"rate": 1, "count": 3, "mode": None}, what="dataset 'x'")
    for key, value in (("count", True), ("rate", False), ("rate", "0.5"), ("mode", 3)):
        with pytest.raises(ConfigError, match=f"option {key}={value!r} is of type {type(value).__name__}"):
            check_options(_loader, {key: value}, what="dataset 'x'")
    assert describe_options(_loader) == (
        "rate (float, default 0.5), count (int, default 2), mode (str | None, default None)"
    )


def _loader_of(result: object) -> Callable[[], object]:
    def load() -> object:
        return result

    return load


def _returns(result: object, name: str) -> None:
    class Plugin:
        @hookimpl
        def tlcore_register_datasets(self, register: Callable[[DatasetInfo], None]) -> None:
            register(DatasetInfo(name, _loader_of(result)))

    register_plugin(Plugin(), name=f"{name}-plugin")


@pytest.mark.usefixtures("fresh_plugins")
def test_a_loader_returning_a_bare_dataset_is_a_plugin_error_naming_plugin_and_dataset() -> None:
    dataset = Dataset.from_arrays(np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1]), name="bare")
    _returns(dataset, "bare")
    with pytest.raises(PluginError) as caught:
        load_plugins().open_dataset("bare")
    message = str(caught.value)
    assert message.startswith("dataset 'bare' (plugin 'bare-plugin'): its loader ")
    assert message.endswith(
        "returned Dataset; expected a tlcore.data.DatasetSource (a Dataset alone is returned as "
        "DatasetSource(train=dataset))."
    )
    _returns(DatasetSource(train=dataset), "wrapped")
    assert load_plugins().open_dataset("wrapped").train is dataset


def test_the_hook_and_the_info_say_loaders_return_a_dataset_source() -> None:
    for documented in (_hookspecs.tlcore_register_datasets, DatasetInfo):
        text = inspect.getdoc(documented) or ""
        assert "DatasetSource" in text, documented
        assert "returning a :class:`~tlcore.data.Dataset`" not in text and "-> Dataset`" not in text
