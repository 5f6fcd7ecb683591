"""The backend interface, and how the core finds and loads a backend.

A backend is registered by name with a lazy ``loader`` path; its framework is
imported only when :func:`get_backend` is first called for it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tlcore._errors import (
    BackendConflictError,
    BackendUnavailableError,
    CheckpointError,
    ConfigError,
    DataError,
    PluginError,
)
from tlcore._freeze import FreezePlan
from tlcore._specs import BackboneSpec, HeadSpec, LayerInfo

if TYPE_CHECKING:
    from tlcore.plugins import BackendInfo
    from tlcore.training import Trainer, TrainerOptions

__all__ = ["Backend", "Model", "get_backend"]


class Model(ABC):
    """A backbone plus head, built natively by a backend.

    ``native`` is the framework's own model object (an ``nn.Module``, a
    ``keras.Model``); users may keep using it directly. Inputs to every method
    are preprocessed float32 images in NHWC layout (the core's layout).

    What every backend shares is written here once: checking images and
    batching them for :meth:`predict` and :meth:`features` (a backend computes
    one batch: ``_predict_batch``, ``_features_batch``, inside
    ``_inference``), the saved state's assembly (:meth:`state`, :meth:`save`,
    :meth:`export`) and its strict check on loading (:meth:`check_state`; a
    backend assigns the checked tensors in ``_assign_state``).
    """

    backend_name: str
    backbone: BackboneSpec
    head: HeadSpec
    weights: str | None
    weights_sha256: str | None
    image_size: tuple[int, int]

    def _describe(
        self,
        backbone: BackboneSpec,
        head: HeadSpec,
        *,
        image_size: tuple[int, int],
        weights: str | None,
        weights_sha256: str | None,
    ) -> None:
        """Record the neutral facts every backend's model keeps (specs, input size, weights provenance)."""
        self.backbone = backbone
        self.head = head
        self.image_size = image_size
        self.weights = weights
        self.weights_sha256 = weights_sha256

    def check_plan(self, plan: FreezePlan) -> None:
        """Refuse a freeze plan that names layers this backbone does not have."""
        unknown = sorted(plan.trainable - {layer.name for layer in self.layers()})
        if unknown:
            raise CheckpointError(f"freeze plan names layers this backbone lacks: {unknown[:5]}")

    def activate(self, logits: np.ndarray) -> np.ndarray:
        """Apply the head's output activation to logits (the loss always uses the logits)."""
        if self.head.output_activation == "softmax":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        if self.head.output_activation == "sigmoid":
            return np.asarray(1.0 / (1.0 + np.exp(-logits)))
        return logits

    @property
    @abstractmethod
    def native(self) -> Any:
        """The framework's own model object."""

    @abstractmethod
    def layers(self) -> list[LayerInfo]:
        """The backbone's layers, in order, under stable names and groups."""

    @abstractmethod
    def apply_freeze(self, plan: FreezePlan) -> None:
        """Make exactly ``plan.trainable`` train; put every other BatchNorm in inference mode."""

    @abstractmethod
    def trainable_layers(self) -> set[str]:
        """Names of backbone layers whose parameters currently train."""

    @abstractmethod
    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        """Logits for one batch of checked NHWC float32 images, as numpy (called inside :meth:`_inference`)."""

    @abstractmethod
    def _features_batch(self, images: np.ndarray) -> np.ndarray:
        """The backbone's feature map for one batch of checked NHWC images, NHWC numpy (inside :meth:`_inference`)."""

    def _inference(self) -> contextlib.AbstractContextManager[object]:
        """The context per-batch calls run in: a backend switches to inference mode here (default: nothing)."""
        return contextlib.nullcontext()

    def _batched(self, compute: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int) -> np.ndarray:
        """``compute`` on ``images`` (checked by :meth:`check_images`) in batches of ``batch_size``, concatenated."""
        images = self.check_images(images)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
        with self._inference():
            outputs = [
                np.asarray(compute(images[start : start + batch_size])) for start in range(0, len(images), batch_size)
            ]
        return np.concatenate(outputs)

    def predict(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Logits (or the head's output activation applied) for NHWC float32 images, ``batch_size`` at a time."""
        return self.activate(self._batched(self._predict_batch, images, batch_size))

    def features(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """The backbone's feature map for NHWC images, in NHWC layout, ``batch_size`` at a time."""
        return self._batched(self._features_batch, images, batch_size)

    @abstractmethod
    def backbone_state(self) -> dict[str, np.ndarray]:
        """Every backbone parameter and BatchNorm statistic as numpy arrays.

        Keys are ``<layer name>.<tensor>`` with torch's tensor names (``weight``,
        ``bias``, ``running_mean``, ``running_var``), the same in every backend.
        """

    @abstractmethod
    def head_state(self) -> dict[str, np.ndarray]:
        """The head's tensors in torch's layout under torch's names (``head.out.weight``, ``head.hidden.0.bias``)."""

    def state(self) -> dict[str, np.ndarray]:
        """Every tensor of the model as :meth:`save` writes it: ``backbone.<layer>.<tensor>`` and ``head.*``.

        Torch's names and layout in every backend, so that any backend loads
        what another saved.
        """
        state = {f"backbone.{key}": value for key, value in self.backbone_state().items()}
        state.update(self.head_state())
        return state

    def save(self, path: str | Path) -> Path:
        """Write the whole model (:meth:`state`, head spec, image size, weights provenance) to ``path`` atomically."""
        from tlcore._checkpoint import model_metadata, write_checkpoint

        return write_checkpoint(path, self.state(), model_metadata(self, self.image_size))

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every tensor of :meth:`state` (a backend may override it to avoid copying the tensors)."""
        return {key: tuple(value.shape) for key, value in self.state().items()}

    def check_state(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Raise CheckpointError listing missing, unexpected and mis-shaped tensors against :meth:`state`.

        BatchNorm's ``num_batches_tracked`` counters may be absent, extra or
        of shape ``(1,)`` (only torch keeps them; torch reads them either way).
        """
        from tlcore.weights import shape_problems

        given = {key: tuple(np.shape(value)) for key, value in tensors.items()}
        problems = shape_problems(self._state_shapes(), given, given_as="given")
        if problems:
            raise CheckpointError(
                f"saved tensors do not fit this model: {'; '.join(problems)}. Expected the tensors Model.save "
                "writes for this backbone and head ('backbone.<layer>.<tensor>' and 'head.*', torch layout)."
            )

    def load_state(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Assign saved tensors (canonical names, torch layout); on a mismatch CheckpointError, nothing assigned."""
        self.check_state(tensors)
        self._assign_state(dict(tensors))

    @abstractmethod
    def _assign_state(self, tensors: dict[str, np.ndarray]) -> None:
        """Assign tensors that :meth:`check_state` accepted (``num_batches_tracked`` may be missing)."""

    def export_backbone(self, path: str | Path) -> Path:
        """Write the backbone's current weights as a neutral checkpoint; return the manifest's path.

        ``path`` is ``NAME`` (or ``NAME.json``): ``NAME.safetensors`` and
        ``NAME.json`` are written atomically. Every backend building the same
        architecture loads it with ``weights="NAME.json"``. The manifest keeps
        the source and license of the weights the model was built with.
        """
        from tlcore.checkpoints import export_fields, write_neutral

        fields = export_fields(self.backbone, self.weights, self.weights_sha256, backend=self.backend_name)
        return write_neutral(path, self.backbone_state(), fields)

    def export(self, path: str | Path) -> Path:
        """Write the whole model (backbone and head) as a neutral checkpoint; return the manifest's path.

        The tensors are ``backbone.<layer>.<tensor>`` and ``head.*`` in torch's
        layout, as :meth:`save` writes them; the manifest adds ``"contents":
        "model"``, the head spec and the image size to the backbone's fields.
        Every backend loads it with :meth:`Backend.load_model`.
        """
        from tlcore._checkpoint import model_metadata
        from tlcore.checkpoints import export_fields, write_neutral

        fields = export_fields(self.backbone, self.weights, self.weights_sha256, backend=self.backend_name)
        metadata = model_metadata(self, self.image_size)
        fields.update({"contents": "model", "head": metadata["head"], "image_size": metadata["image_size"]})
        return write_neutral(path, self.state(), fields)

    def export_onnx(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model as an ONNX file for serving (ONNX Runtime and others); return its path.

        The file computes what :meth:`predict` returns (logits with the
        head's output activation applied) from what :meth:`predict` takes:
        input ``images``, NHWC float32 images preprocessed as the backbone's
        spec says, any batch size, the height and width the model was built
        for; output ``predictions``. It is written atomically; an existing
        file is replaced only with ``overwrite``. Needs ``onnx`` and the
        framework's converter (:meth:`export_requirements`; ``pip install
        'tlcore[export]'`` installs them all).
        """
        from tlcore._export import write_export

        return write_export(self, "onnx", path, overwrite=overwrite)

    def export_saved_model(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model as a TensorFlow SavedModel folder (signature ``serve``); return its path.

        Input and output as :meth:`export_onnx`. Only backends that can write
        one do (keras-tensorflow, keras-jax; both need TensorFlow installed);
        the others raise ConfigError. The folder is moved into place when
        complete; an existing one is replaced only with ``overwrite``.
        """
        from tlcore._export import write_export

        return write_export(self, "saved_model", path, overwrite=overwrite)

    def export_requirements(self, format: str) -> dict[str, str]:
        """``{module: pip package}`` that exporting in ``format`` (``onnx``, ``saved_model``) needs on this backend."""
        return {"onnx": "onnx"} if format == "onnx" else {}

    def _write_onnx(self, path: Path) -> None:
        """Write the ONNX file :meth:`export_onnx` describes to ``path`` (a temporary file; the core renames it)."""
        raise ConfigError(f"backend {self.backend_name!r} cannot export ONNX; export on torch or a Keras backend.")

    def _write_saved_model(self, path: Path) -> None:
        """Write the SavedModel :meth:`export_saved_model` describes into the folder ``path`` (not yet existing)."""
        raise ConfigError(
            f"backend {self.backend_name!r} cannot write a TensorFlow SavedModel: only keras-tensorflow and "
            "keras-jax can. Export with format 'onnx', or load the model on one of those (Backend.load_model "
            "reads what any backend saved) and export it there."
        )

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """Validate a batch of preprocessed images; return it as contiguous float32."""
        channels = self.backbone.input.channels
        shape = getattr(images, "shape", None)
        if shape is None or len(shape) != 4 or shape[-1] != channels:
            raise DataError(
                f"images must have shape (N, H, W, {channels}); got shape {shape}. "
                "Prepare them with tlcore.data.ImagePipeline (NHWC, normalised float32)."
            )
        if shape[0] == 0:
            raise DataError("images is empty: got a batch of 0 images.")
        return np.ascontiguousarray(images, dtype=np.float32)

    def num_parameters(self) -> int:
        """Total parameter count of backbone and head."""
        return sum(int(v.size) for k, v in self.backbone_state().items() if "running" not in k)


class Backend(ABC):
    """A framework that builds models and trainers from the neutral specs."""

    name: str

    @abstractmethod
    def build_model(
        self,
        backbone: BackboneSpec,
        head: HeadSpec,
        *,
        weights: str | None,
        seed: int,
        image_size: tuple[int, int] | None = None,
    ) -> Model:
        """Build ``backbone`` (with ``weights``: None, a registered name or a file) plus ``head``.

        ``image_size`` (default: the backbone's) fixes the feature-map size that a
        ``flatten`` head sees. The head's initial weights are drawn from ``seed``.
        """

    def load_model(self, path: str | Path) -> Model:
        """Load a model saved by :meth:`Model.save` or exported by :meth:`Model.export` (by any backend).

        A neutral checkpoint (``NAME.json``) has its tensors checked against
        the manifest's sha256 first.
        """
        from tlcore._checkpoint import head_from_metadata, read_checkpoint
        from tlcore._errors import CheckpointError, TLCoreError
        from tlcore.checkpoints import is_neutral_checkpoint, read_neutral
        from tlcore.plugins import load_plugins

        if is_neutral_checkpoint(path):
            metadata, tensors = read_neutral(path)
            if metadata.get("contents") != "model":
                raise CheckpointError(
                    f"{str(path)!r} is a backbone checkpoint, not a whole model: build a model with "
                    f"weights={str(path)!r} instead (it has no head)."
                )
            metadata = {**metadata, "backbone": metadata["architecture"], **metadata.get("exported_by", {})}
        else:
            metadata, tensors = read_checkpoint(path)
        spec = load_plugins().backbone(metadata["backbone"], self.name)
        size = tuple(metadata["image_size"])
        model = self.build_model(
            spec, head_from_metadata(metadata), weights=None, seed=0, image_size=(size[0], size[1])
        )
        try:
            model.load_state(tensors)
        except TLCoreError as exc:
            raise CheckpointError(f"{str(path)!r} does not match {spec.name} with this head: {exc}") from None
        model.weights = metadata.get("weights")
        model.weights_sha256 = metadata.get("weights_sha256")
        return model

    @abstractmethod
    def make_trainer(self, model: Model, options: TrainerOptions) -> Trainer:
        """A trainer for ``model`` that runs phases natively."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework packages in use."""

    @abstractmethod
    def device(self) -> str:
        """Where computation runs (``cpu``, ``cuda:0`` ...)."""

    def peak_memory_bytes(self) -> int | None:
        """Peak accelerator memory since the process started, if the framework tracks it."""
        return None

    def seed(self, seed: int) -> None:  # noqa: B027  (optional hook: a framework may have no global RNG)
        """Seed the framework's own random number generators."""


class _Loaded:
    lock = threading.Lock()
    backends: ClassVar[dict[str, Backend]] = {}


def _missing(modules: Sequence[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _refuse_conflicts(name: str, info: BackendInfo) -> None:
    """Raise BackendConflictError if a module already imported would make backend ``name`` crash the process.

    Reads ``sys.modules`` only: finding out imports no framework.
    """
    for conflict in info.conflicts:
        if not conflict.applies(sys.modules):
            continue
        safe_order = (
            f", or import {conflict.unless_loaded[0]} before {conflict.module}" if conflict.unless_loaded else ""
        )
        raise BackendConflictError(
            f"backend {name!r} cannot be loaded in this process: {conflict.module!r} is already imported, and "
            f"{conflict.reason}. tlcore refuses rather than let the process crash. Run the {name} backend in a "
            f"process of its own (one `tlcore run` per backend; `tlcore bench` already runs each backend in its "
            f"own process){safe_order}.",
            backend=name,
            module=conflict.module,
        )


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``, importing its framework on first use.

    Raises :class:`~tlcore.BackendConflictError`, before importing anything,
    if a module already imported would make this backend crash the process
    (the backend's :attr:`~tlcore.plugins.BackendInfo.conflicts`).
    """
    from tlcore.plugins import import_object, load_plugins

    with _Loaded.lock:
        if name in _Loaded.backends:
            return _Loaded.backends[name]
    info = load_plugins().backend(name)
    missing = _missing(info.requires)
    if missing:
        hint = info.install_hint or f"pip install 'tlcore[{name}]'"
        raise BackendUnavailableError(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed. Install it with: {hint}"
        )
    _refuse_conflicts(name, info)
    factory = import_object(info.loader, what=f"backend {name!r}")
    backend = factory()
    if not isinstance(backend, Backend):
        raise PluginError(f"backend {name!r}: {info.loader} built {backend!r}, which is not a tlcore.Backend.")
    with _Loaded.lock:
        _Loaded.backends[name] = backend
    return backend
