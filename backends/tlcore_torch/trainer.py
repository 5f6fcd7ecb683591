"""The torch trainer: torch's own optimizers, ``LambdaLR`` over the core's schedule, autocast, under the shared loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any, SupportsFloat

import numpy as np
import torch
import torch.nn.functional as F

from tlcore import CheckpointError, TLCoreError
from tlcore.io import atomic_path
from tlcore.training import LearningRateScales, Phase, Trainer, TrainerOptions, learning_rate_table
from tlcore_torch.model import TorchModel

ParamGroups = list[dict[str, Any]]


def parameter_groups(model: TorchModel, scales: LearningRateScales, *, head_only: bool) -> ParamGroups:
    """The model's parameters grouped by learning-rate factor (``scale`` in each group), head first.

    Frozen parameters are included: they get no gradient, so torch skips them,
    and the groups stay the same when gradual unfreezing changes what trains.
    """
    by_scale: dict[float, list[torch.nn.Parameter]] = {scales.head: list(model.native.head.parameters())}
    if not head_only:
        for info, module in model.named_layers():
            by_scale.setdefault(scales.of(info.name), []).extend(module.parameters(recurse=False))
    return [{"params": params, "scale": scale} for scale, params in by_scale.items()]


def make_optimizer(phase: Phase, groups: ParamGroups) -> torch.optim.Optimizer:
    """The phase's optimizer, with every default that frameworks disagree on passed explicitly.

    Each group's learning rate is the phase's times the group's ``scale``.
    """
    groups = [{**group, "lr": phase.learning_rate * group["scale"]} for group in groups]
    if phase.optimizer in ("adam", "adamw"):
        kind = torch.optim.Adam if phase.optimizer == "adam" else torch.optim.AdamW
        return kind(
            groups,
            lr=phase.learning_rate,
            betas=phase.adam_betas,
            eps=phase.adam_epsilon,
            weight_decay=phase.weight_decay,
        )
    return torch.optim.SGD(
        groups,
        lr=phase.learning_rate,
        momentum=phase.momentum,
        nesterov=phase.nesterov,
        weight_decay=phase.weight_decay,
    )


class TableFactor:
    """``LambdaLR``'s factor at step ``k``: the core's rate after ``k`` steps over the phase's rate.

    A callable object rather than a closure, so that the scheduler's
    ``state_dict`` keeps it.
    """

    def __init__(self, rates: np.ndarray, base: float) -> None:
        self.factors = (np.asarray(rates, dtype=np.float64) / base).tolist()

    def __call__(self, step: int) -> float:
        return float(self.factors[min(step, len(self.factors) - 1)])


def make_schedule(
    phase: Phase, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The phase's schedule (:func:`tlcore.training.learning_rate_table`) applied by torch's ``LambdaLR``.

    ``LambdaLR`` multiplies each group's initial rate (the phase's times the
    group's ``scale``) by the table's rate over the phase's, so every group
    follows the table at its factor. The table is torch's own schedulers'
    rates; through the factor they agree to float64 rounding.
    """
    factor = TableFactor(learning_rate_table(phase, total_steps), phase.learning_rate)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class TorchTrainer(Trainer):
    """Runs phases on a :class:`TorchModel` (CUDA and mixed precision when available)."""

    def __init__(self, model: TorchModel, options: TrainerOptions) -> None:
        super().__init__(model, options)
        self.torch_model = model
        self.net = model.native
        self.device = model.device
        use_amp = options.mixed_precision and self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if use_amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedule: torch.optim.lr_scheduler.LRScheduler | None = None
        self.label_smoothing = 0.0

    def _tensor(self, inputs: np.ndarray, cached: bool) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        if self.device.type == "cuda":  # page-locked, so the copy to the GPU runs asynchronously
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True)
        return x if cached else x.permute(0, 3, 1, 2)

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return torch.autocast(device_type=self.device.type, enabled=False)
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _begin_phase(self, phase: Phase, total_steps: int, cached: bool) -> None:
        self.optimizer = make_optimizer(phase, parameter_groups(self.torch_model, self.lr_scales, head_only=cached))
        self.schedule = make_schedule(phase, self.optimizer, total_steps)
        self.label_smoothing = phase.label_smoothing

    def _train_step(self, inputs: np.ndarray, labels: np.ndarray, cached: bool) -> tuple[SupportsFloat, SupportsFloat]:
        if self.optimizer is None:
            raise TLCoreError("internal: train step before a phase began")
        if not self.net.training:  # switching walks every module: about 1 ms, as long as a head step
            self.net.train()
        x = self._tensor(inputs, cached)
        y = torch.from_numpy(labels).to(self.device)
        with self._autocast():
            logits = self.net.head(x) if cached else self.net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.schedule is not None:
            self.schedule.step()
        with torch.no_grad():  # read after the epoch: no wait for the device at every step
            return loss.detach() * len(labels), (logits.argmax(dim=1) == y).sum()

    def _predict_step(self, inputs: np.ndarray, cached: bool) -> np.ndarray:
        if self.net.training:
            self.net.eval()
        with torch.no_grad(), self._autocast():
            x = self._tensor(inputs, cached)
            logits = self.net.head(x) if cached else self.net(x)
        return np.asarray(logits.float().cpu().numpy())

    def _features_step(self, images: np.ndarray) -> np.ndarray:
        if self.net.training:
            self.net.eval()
        with torch.no_grad(), self._autocast():
            features = self.net.backbone(self._tensor(images, cached=False))
        return np.asarray(features.float().cpu().numpy())

    def _learning_rate(self) -> float:
        if self.optimizer is None:
            return 0.0
        group = self.optimizer.param_groups[0]  # the phase's rate: the group's, without its factor
        return float(group["lr"]) / float(group["scale"])

    def _snapshot(self, head_only: bool = False) -> tuple[bool, dict[str, torch.Tensor]]:
        module = self.net.head if head_only else self.net
        return head_only, {k: v.detach().clone() for k, v in module.state_dict().items()}

    def _restore(self, snapshot: Any) -> None:
        head_only, state = snapshot
        (self.net.head if head_only else self.net).load_state_dict(state)

    def _end_phase(self) -> None:
        self.optimizer = None
        self.schedule = None

    state_suffix = ".pt"

    def _save_training_state(self, path: Path, snapshot: Any) -> None:
        state: dict[str, Any] = {
            "model": self.net.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
            state["scaler"] = self.scaler.state_dict()
        if self.schedule is not None:
            state["schedule"] = self.schedule.state_dict()
        if snapshot is not None:
            state["snapshot_head_only"], state["snapshot"] = snapshot
        with atomic_path(path) as temporary:
            torch.save(state, temporary)

    def _load_training_state(self, path: Path, has_snapshot: bool) -> Any:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state["model"])
            if self.optimizer is not None:
                self.optimizer.load_state_dict(state["optimizer"])
                self.scaler.load_state_dict(state["scaler"])
            if self.schedule is not None:
                self.schedule.load_state_dict(state["schedule"])
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(f"cannot resume from {path}: {error}. Start over with --restart.") from None
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if not has_snapshot:
            return None
        return bool(state["snapshot_head_only"]), state["snapshot"]
