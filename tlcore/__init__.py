"""tlcore: one transfer-learning recipe, every framework, the same result.

The core is framework-neutral: it imports no framework, ever. Backends
(``torch``, and Keras 3 on JAX, TensorFlow or torch) come as plugins and
import their framework on first use.

    >>> import tlcore
    >>> recipe = tlcore.load_recipe("recipes/quickstart.toml")
    >>> result = tlcore.run_recipe(recipe, backend="torch", out="runs/quickstart")
"""

from tlcore._backend import Backend, Model, get_backend
from tlcore._errors import (
    BackendConflictError,
    BackendUnavailableError,
    CheckpointError,
    ConfigError,
    DataError,
    PluginError,
    RecipeError,
    RunFolderError,
    TLCoreError,
    UnknownBackboneError,
    UnknownBackendError,
    UnknownDatasetError,
    UnknownFreezePolicyError,
    UnknownHeadError,
    UnknownNameError,
    WeightsError,
)
from tlcore._freeze import (
    FineTuneAt,
    FreezePlan,
    FreezePolicy,
    Frozen,
    GradualUnfreezing,
    LastN,
    RegexPolicy,
    TrainGroups,
    Unfrozen,
)
from tlcore._recipe import AugmentationConfig, BackboneConfig, DataConfig, HeadConfig, Recipe, load_recipe, parse_recipe
from tlcore._runner import RunResult, make_head, open_dataset, peak_host_memory_bytes, run_recipe
from tlcore._specs import BackboneSpec, HeadSpec, ImageInputSpec, LayerInfo, StateDictLayout, WeightsSource
from tlcore._transfer import TransferModel, create_model
from tlcore.plugins import load_plugins
from tlcore.training import EarlyStopping, Evaluation, History, Phase, Trainer, TrainerOptions

__version__ = "0.1.0"

__all__ = [
    "AugmentationConfig",
    "BackboneConfig",
    "BackboneSpec",
    "Backend",
    "BackendConflictError",
    "BackendUnavailableError",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "DataError",
    "EarlyStopping",
    "Evaluation",
    "FineTuneAt",
    "FreezePlan",
    "FreezePolicy",
    "Frozen",
    "GradualUnfreezing",
    "HeadConfig",
    "HeadSpec",
    "History",
    "ImageInputSpec",
    "LastN",
    "LayerInfo",
    "Model",
    "Phase",
    "PluginError",
    "Recipe",
    "RecipeError",
    "RegexPolicy",
    "RunFolderError",
    "RunResult",
    "StateDictLayout",
    "TLCoreError",
    "TrainGroups",
    "Trainer",
    "TrainerOptions",
    "TransferModel",
    "Unfrozen",
    "UnknownBackboneError",
    "UnknownBackendError",
    "UnknownDatasetError",
    "UnknownFreezePolicyError",
    "UnknownHeadError",
    "UnknownNameError",
    "WeightsError",
    "WeightsSource",
    "__version__",
    "create_model",
    "get_backend",
    "load_plugins",
    "load_recipe",
    "make_head",
    "open_dataset",
    "parse_recipe",
    "peak_host_memory_bytes",
    "run_recipe",
]
