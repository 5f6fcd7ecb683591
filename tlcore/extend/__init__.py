"""The public API for backend and plugin authors, in one place.

Everything a plugin needs is importable from here (or from :mod:`tlcore`
and :mod:`tlcore.plugins`); nothing under ``tlcore._*`` and nothing inside a
backend package. A plugin package is a module with ``@hookimpl`` functions,
published in the ``tlcore`` entry-point group, that imports no framework at
import time.

What a plugin can register (one hook each, called with ``register=``):

- ``tlcore_register_backbones``: a neutral :class:`~tlcore.BackboneSpec` (what
  the architecture is: input, groups, BatchNorm values, weights sources,
  tensor-name layout), never which backend builds it;
- ``tlcore_register_builders``: a :class:`BuilderInfo` ``(backbone, backend,
  "module:function")`` per backend that builds it, for its own architecture
  or for one another plugin (or the core) describes;
- ``tlcore_register_backends``, ``..._heads``, ``..._freeze_policies``,
  ``..._datasets``, ``..._commands``: see :mod:`tlcore.plugins`.

The builder contract. A builder is ``builder(request: BuildRequest) ->
BuiltBackbone``:

- ``request.spec`` is the neutral spec, ``request.backend`` the backend's
  name (``torch``, ``keras-jax`` ...), ``request.image_size`` the
  ``(height, width)`` the model is built for (checked against
  ``spec.input.min_size``), and ``request.weights`` a :class:`WeightsChoice`
  already resolved from the user's ``weights=``: ``"none"`` (draw random
  weights; ``request.weights.random_init``), ``"named"`` (one of the spec's
  :class:`~tlcore.WeightsSource` names) or ``"file"`` (an existing file: a
  state dict, a neutral checkpoint's ``.json``, a framework file).
- It returns :class:`BuiltBackbone`: the framework's model (torch: an
  ``nn.Module`` NCHW -> NCHW feature map; Keras: a ``keras.Model`` NHWC ->
  NHWC for ``image_size``), ``layers`` as ``(canonical name, native layer)``
  for every layer that owns weights in forward order (or every layer, with
  ``native_indexing``, where indices must count as the framework counts),
  and ``group_of`` mapping each name to one of ``spec.groups``.
- The backend then sets every BatchNorm's epsilon and momentum from the spec,
  records each layer's kind and parameter count, checks the groups
  (:func:`check_layer_groups`), and loads the weights: named ones through
  :func:`named_weights_file` (a package's file, or a download checked
  against its sha256), files through its reader, neutral checkpoints with
  their sha256 and architecture checked; each renamed by
  :func:`canonical_state` and checked strictly (:func:`check_state_shapes`:
  every tensor ``<layer>.<tensor>`` in torch's layout, none missing, none
  extra). A builder that loads weights in a framework's own format sets
  ``weights_loaded=True`` (and ``weights_file``).

What a backend implements: :class:`Backend` (``build_model``,
``make_trainer``, ``versions``, ``device``); :class:`Model` (``native``,
``layers``, ``apply_freeze``, ``trainable_layers``, ``backbone_state``,
``head_state``, and the per-batch ``_predict_batch``, ``_features_batch``,
``_assign_state``: batching, ``predict``, ``features``, ``state``, ``save``,
``export`` and the strict ``load_state`` check are written once, in the
base class; ``_write_onnx`` writes opset :data:`ONNX_OPSET`); and a
:class:`~tlcore.Trainer` subclass with the per-step hooks
(the learning-rate schedule comes from :func:`tlcore.training.learning_rate_table`;
the trainer only applies it). Its backbone building calls :func:`build_native`
first; the head's initial weights come from :func:`initial_head_weights`, so
that they are the same on every backend.
"""

from tlcore._backend import Backend, Model
from tlcore._export import ONNX_OPSET
from tlcore._head_init import initial_head_weights
from tlcore._specs import BackboneSpec, HeadSpec, ImageInputSpec, LayerInfo, StateDictLayout, WeightsSource
from tlcore.extend._building import (
    BuildRequest,
    BuiltBackbone,
    WeightsChoice,
    build_native,
    canonical_state,
    check_image_size,
    check_layer_groups,
    check_state_shapes,
    choose_weights,
    named_weights_file,
)
from tlcore.plugins import (
    BackendInfo,
    BuilderInfo,
    CommandInfo,
    DatasetInfo,
    FreezePolicyInfo,
    HeadInfo,
    hookimpl,
)

__all__ = [
    "ONNX_OPSET",
    "BackboneSpec",
    "Backend",
    "BackendInfo",
    "BuildRequest",
    "BuilderInfo",
    "BuiltBackbone",
    "CommandInfo",
    "DatasetInfo",
    "FreezePolicyInfo",
    "HeadInfo",
    "HeadSpec",
    "ImageInputSpec",
    "LayerInfo",
    "Model",
    "StateDictLayout",
    "WeightsChoice",
    "WeightsSource",
    "build_native",
    "canonical_state",
    "check_image_size",
    "check_layer_groups",
    "check_state_shapes",
    "choose_weights",
    "hookimpl",
    "initial_head_weights",
    "named_weights_file",
]
