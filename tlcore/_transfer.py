"""The one-call API: a backbone, a head and its pipelines in one object that fits, evaluates and predicts.

    >>> model = tlcore.create_model("efficientnet_lite0", num_classes=10, backend="torch", image_size=64)
    >>> model.fit(splits.train, validation=splits.validation, phases=[tlcore.Phase(epochs=3)])
    >>> model.evaluate(splits.test).accuracy

The image size is said once: the training and evaluation pipelines come
from the backbone's input spec (preprocessing, resize filter, crop). Under
it are the building blocks (:meth:`Backend.build_model`,
:class:`~tlcore.data.ImagePipeline`, :class:`~tlcore.data.Batches`, the
backend's :class:`~tlcore.Trainer`), which keep working on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlcore._backend import Backend, Model, get_backend
from tlcore._errors import ConfigError, DataError
from tlcore._freeze import FreezePolicy, Frozen
from tlcore._specs import BackboneSpec, HeadSpec
from tlcore.training import Evaluation, History, Phase, Trainer, TrainerOptions

__all__ = ["TransferModel", "create_model"]

DEFAULT_WEIGHTS = "default"
"""``create_model``'s default weights: the backbone's first registered weights (``"imagenet"``), else random."""


def _size(image_size: int | Sequence[int] | None, spec: BackboneSpec) -> tuple[int, int]:
    if image_size is None:
        return spec.input.size
    if isinstance(image_size, bool):
        raise ConfigError(f"image_size must be a whole number of pixels or (height, width); got {image_size!r}.")
    if isinstance(image_size, int):
        return (image_size, image_size)
    size = tuple(image_size)
    if len(size) != 2 or not all(isinstance(side, int) and not isinstance(side, bool) for side in size):
        raise ConfigError(f"image_size must be a whole number of pixels or (height, width); got {image_size!r}.")
    return (size[0], size[1])


def _head(head: str | HeadSpec, num_classes: int, options: Mapping[str, Any]) -> HeadSpec:
    from tlcore._runner import head_from_preset

    if isinstance(head, HeadSpec):
        if head.num_outputs != num_classes:
            raise ConfigError(f"head has {head.num_outputs} outputs but num_classes={num_classes}; make them equal.")
        return head
    return head_from_preset(head, num_classes, options)


def create_model(
    backbone: str,
    num_classes: int,
    *,
    backend: str = "torch",
    image_size: int | Sequence[int] | None = None,
    weights: str | None = DEFAULT_WEIGHTS,
    head: str | HeadSpec = "linear",
    head_options: Mapping[str, Any] | None = None,
    crop_pct: float | None = None,
    seed: int = 0,
    device: str = "auto",
) -> TransferModel:
    """A pretrained ``backbone`` with a new ``num_classes`` head on ``backend``, ready to fit.

    ``image_size`` (pixels, or ``(height, width)``; default the backbone's)
    is the size the pipelines prepare and the model is built for.
    ``weights``: the backbone's first registered weights by default
    (``"imagenet"``), ``None`` or ``"none"`` for random, a registered name or
    a file. ``head`` is a head preset (``tlcore plugins`` lists them) with
    ``head_options`` (``{"dropout": 0.2}``), or a :class:`HeadSpec`.
    ``crop_pct`` overrides the evaluation centre crop of the backbone's spec
    (1.0 keeps the whole image, right for digits that fill their frame).
    """
    from tlcore.plugins import load_plugins

    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a whole number >= 1; got {num_classes!r}.")
    native = get_backend(backend)
    spec = load_plugins().backbone(backbone, native.name)
    if weights == DEFAULT_WEIGHTS:
        weights = spec.weight_names[0] if spec.weight_names else None
    head_spec = _head(head, num_classes, head_options or {})
    size = _size(image_size, spec)
    native.seed(seed)
    model = native.build_model(spec, head_spec, weights=weights, seed=seed, image_size=size)
    return TransferModel(native, model, crop_pct=crop_pct, seed=seed, device=device)


class TransferModel:
    """A built model with its pipelines: :meth:`fit` phases, :meth:`evaluate`, :meth:`predict`, save and export.

    ``model`` is the :class:`tlcore.Model` (``model.native``: the framework's
    own object). Data is a :class:`tlcore.data.Dataset` (an image folder, a
    split from :func:`tlcore.data.make_splits`) or ``(images, labels)``
    arrays: NHWC ``uint8`` 0..255 or float 0..1, any sizes for image files.
    """

    def __init__(
        self, backend: Backend, model: Model, *, crop_pct: float | None = None, seed: int = 0, device: str = "auto"
    ) -> None:
        from tlcore.data import ImagePipeline

        self.backend = backend
        self.model = model
        self.seed = seed
        self.device = device
        self.crop_pct = crop_pct
        self.eval_pipeline = ImagePipeline(model.backbone.input, model.image_size, crop_pct=crop_pct)
        self._trainer: Trainer | None = None

    @property
    def native(self) -> Any:
        """The framework's own model object (an ``nn.Module``, a ``keras.Model``)."""
        return self.model.native

    @property
    def image_size(self) -> tuple[int, int]:
        """The ``(height, width)`` the pipelines prepare and the model was built for."""
        return self.model.image_size

    def _dataset(self, data: Any, what: str) -> Any:
        from tlcore.data import Dataset, DatasetSource

        if isinstance(data, DatasetSource):
            data = data.train
        if isinstance(data, tuple) and len(data) == 2:
            data = Dataset.from_arrays(data[0], data[1], name=what)
        if not isinstance(data, Dataset):
            raise DataError(
                f"{what} must be a tlcore.data.Dataset (tlcore.data.load_image_folder, make_splits(...).train) or "
                f"an (images, labels) pair of arrays; got {type(data).__name__}."
            )
        if data.num_classes != self.model.head.num_outputs:
            raise DataError(
                f"{what} has {data.num_classes} classes but the model's head has {self.model.head.num_outputs} "
                "outputs: create the model with num_classes equal to the data's."
            )
        return data

    def _trainer_for(self, progress: bool) -> Trainer:
        options = TrainerOptions(seed=self.seed, device=self.device, progress=progress)
        self._trainer = self.backend.make_trainer(self.model, options)
        return self._trainer

    def fit(
        self,
        train: Any,
        *,
        validation: Any = None,
        phases: Sequence[Phase] | None = None,
        epochs: int = 5,
        learning_rate: float = 1e-3,
        freeze: FreezePolicy | None = None,
        augmentation: Any = None,
        batch_size: int = 32,
        workers: int | None = None,
        progress: bool = True,
    ) -> History:
        """Train on ``train`` phase by phase; return the history.

        Without ``phases``, one phase of ``epochs`` at ``learning_rate`` with
        ``freeze`` (default: the backbone frozen, the head trained on features
        computed once). ``augmentation`` (a :class:`tlcore.data.Augmentation`)
        applies in the phases that do not turn it off (``Phase(augment=False)``).
        """
        from tlcore.data import Augmentation, Batches, ImagePipeline

        train_data = self._dataset(train, "train")
        if phases is None:
            phases = [Phase(name="train", freeze=freeze or Frozen(), epochs=epochs, learning_rate=learning_rate)]
        if not phases or not all(isinstance(phase, Phase) for phase in phases):
            raise ConfigError(f"phases must be a non-empty list of tlcore.Phase; got {phases!r}.")
        if augmentation is not None and not isinstance(augmentation, Augmentation):
            raise ConfigError(f"augmentation must be a tlcore.data.Augmentation; got {augmentation!r}.")
        pipeline = ImagePipeline(
            self.model.backbone.input, self.image_size, augmentation or Augmentation(), crop_pct=self.crop_pct
        )
        batches = Batches(
            train_data, pipeline, batch_size=batch_size, shuffle=True, seed=self.seed, augment=True, workers=workers
        )
        checked = None if validation is None else self._dataset(validation, "validation")
        held_out = (
            None
            if checked is None
            else Batches(checked, self.eval_pipeline, batch_size=batch_size, seed=self.seed, workers=workers)
        )
        return self._trainer_for(progress).fit(batches, list(phases), validation=held_out)

    def evaluate(self, data: Any, *, batch_size: int = 64, workers: int | None = None) -> Evaluation:
        """Accuracy and loss on ``data`` (a Dataset or ``(images, labels)``), prepared as for evaluation."""
        from tlcore.data import Batches

        dataset = self._dataset(data, "data")
        trainer = self._trainer or self._trainer_for(progress=False)
        return trainer.evaluate(Batches(dataset, self.eval_pipeline, batch_size=batch_size, workers=workers))

    def _images(self, images: Any) -> Any:
        """``images`` as an array or LazyImages: a Dataset's images, or image files from paths."""
        from tlcore.data import Dataset, ImageFiles, LazyImages

        channels = self.model.backbone.input.channels
        if isinstance(images, Dataset):
            images = images.images
        elif isinstance(images, (str, Path)):
            images = ImageFiles([Path(images)], channels=channels)
        elif isinstance(images, list) and images and all(isinstance(i, (str, Path)) for i in images):
            images = ImageFiles([Path(i) for i in images], channels=channels)
        if isinstance(images, np.ndarray) and (images.ndim != 4 or images.shape[3] not in (1, 3)):
            raise DataError(f"images must be an NHWC array with 1 or 3 channels; got shape {images.shape}.")
        if not isinstance(images, (np.ndarray, LazyImages)) or len(images) == 0:
            raise DataError(
                "images must be a Dataset, an NHWC array (uint8 0..255 or float 0..1), an image file's path or a "
                f"non-empty list of paths; got {type(images).__name__}"
                + (" of length 0." if hasattr(images, "__len__") and len(images) == 0 else ".")
            )
        return images

    def prepare(self, images: Any) -> np.ndarray:
        """Images as the model takes them: resized, centre-cropped and normalised float32 NHWC."""
        return self.eval_pipeline.prepare(self._images(images))

    def predict(self, images: Any, *, batch_size: int = 64) -> np.ndarray:
        """The head's outputs (its output activation applied) for raw images, prepared ``batch_size`` at a time.

        ``images``: a Dataset, an NHWC array (uint8 0..255 or float 0..1), an
        image file's path, or a list of paths.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
        source = self._images(images)
        outputs = [
            self.model.predict(
                self.eval_pipeline.prepare_selection(
                    source, np.arange(start, min(start + batch_size, len(source))), None
                ),
                batch_size=batch_size,
            )
            for start in range(0, len(source), batch_size)
        ]
        return np.concatenate(outputs)

    def layers(self, freeze: FreezePolicy | None = None, *, epoch: int = 0) -> Any:
        """The layer table under ``freeze`` (print it, or ``.to_dict()``): what ``tlcore layers`` prints."""
        from tlcore._layers import layer_table

        return layer_table(self.model, freeze, epoch=epoch)

    def save(self, path: str | Path) -> Path:
        """Write the whole model (:meth:`tlcore.Model.save`); any backend loads it with ``Backend.load_model``."""
        return self.model.save(path)

    def export_onnx(self, path: str | Path) -> Path:
        """Write an ONNX file of the model (:meth:`tlcore.Model.export_onnx`)."""
        result: Path = self.model.export_onnx(path)
        return result

    def __repr__(self) -> str:
        size = "x".join(map(str, self.image_size))
        return (
            f"TransferModel({self.model.backbone.name} -> {self.model.head.num_outputs} classes on "
            f"{self.model.backend_name}, {size} px)"
        )
