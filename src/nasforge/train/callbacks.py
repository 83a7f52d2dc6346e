"""Trainer callbacks: typed no-op hooks, early stopping and checkpoints.

A callback overrides only the hooks it needs; the Trainer calls just those. Hooks get the
Trainer and the mutable :class:`TrainState`; a hook may set ``state.stop = True`` to end
training after the current epoch, or (in :meth:`Callback.on_loss`) replace ``state.loss``
to add a loss term, which is how distillation and regularisers join training.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from nasforge._io import atomic_torch_save
from nasforge.errors import CheckpointError, ConfigError
from nasforge.validation import check_bool, check_choice, check_int, check_number, check_str

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

logger = logging.getLogger(__name__)

HOOKS: tuple[str, ...] = (
    "on_fit_begin",
    "on_fit_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_loss",
    "on_after_backward",
    "on_batch_end",
)


@dataclass
class TrainState:
    """What the training loop knows; callbacks read it and may change some of it."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    epochs: int = 0
    epoch: int = 0  # index of the current epoch, 0-based
    batch: int = 0  # index of the current batch within the epoch
    global_step: int = 0
    inputs: Any = None
    targets: Any = None
    outputs: Any = None
    loss: Any = None
    metrics: dict[str, float] = field(default_factory=dict)  # of the last finished epoch
    history: list[dict[str, float]] = field(default_factory=list)
    stop: bool = False


class Callback:
    """Base class of Trainer callbacks; every hook is a no-op."""

    def on_fit_begin(self, trainer: Engine, state: TrainState) -> None:
        """Before the first epoch (the optimizer exists, the model is on its device)."""

    def on_fit_end(self, trainer: Engine, state: TrainState) -> None:
        """After the last epoch, also when training stopped early."""

    def on_epoch_begin(self, trainer: Engine, state: TrainState) -> None:
        """Before the first batch of an epoch."""

    def on_epoch_end(self, trainer: Engine, state: TrainState) -> None:
        """After validation; ``state.metrics`` holds the epoch's metrics."""

    def on_batch_begin(self, trainer: Engine, state: TrainState) -> None:
        """Before the forward pass; ``state.inputs``/``state.targets`` are on the device."""

    def on_loss(self, trainer: Engine, state: TrainState) -> None:
        """After the loss is computed, before backward; may replace ``state.loss``."""

    def on_after_backward(self, trainer: Engine, state: TrainState) -> None:
        """After ``loss.backward()``, before the optimizer step (gradients are set)."""

    def on_batch_end(self, trainer: Engine, state: TrainState) -> None:
        """After the optimizer step."""


def overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` implements ``hook`` (so the loop can skip no-ops)."""
    return getattr(type(callback), hook) is not getattr(Callback, hook)


def _resolve_mode(monitor: str, mode: str, owner: str) -> Literal["min", "max"]:
    check_str(monitor, f"{owner}.monitor")
    mode = check_choice(mode, f"{owner}.mode", ("min", "max", "auto"))
    if mode == "auto":
        return "min" if "loss" in monitor else "max"
    return mode  # type: ignore[return-value]


def _monitored(state: TrainState, monitor: str, owner: str) -> float:
    if monitor not in state.metrics:
        raise ConfigError(
            f"{owner} monitors {monitor!r}, but the epoch metrics are "
            f"{sorted(state.metrics)}. HINT: give the Trainer validation data to monitor "
            "val_* metrics, or monitor a train_* metric.",
            field="monitor",
        )
    return state.metrics[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best=True`` the model ends with the weights of its best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        self.mode = _resolve_mode(monitor, mode, "EarlyStopping")
        self.monitor = monitor
        self.patience = check_int(patience, "EarlyStopping.patience", low=1)
        self.min_delta = check_number(min_delta, "EarlyStopping.min_delta", low=0)
        self.restore_best = check_bool(restore_best, "EarlyStopping.restore_best")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self._best_weights: dict[str, torch.Tensor] | None = None

    def on_fit_begin(self, trainer: Engine, state: TrainState) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self._best_weights = -1, 0, None

    def on_epoch_end(self, trainer: Engine, state: TrainState) -> None:
        value = _monitored(state, self.monitor, "EarlyStopping")
        improved = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best:
                self._best_weights = copy.deepcopy(state.model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience:
            logger.info(
                "early stopping after epoch %d: %s has not improved on %.4g (epoch %d) "
                "for %d epochs",
                state.epoch + 1,
                self.monitor,
                self.best,
                self.best_epoch + 1,
                self.patience,
            )
            state.stop = True

    def on_fit_end(self, trainer: Engine, state: TrainState) -> None:
        if self.restore_best and self._best_weights is not None:
            state.model.load_state_dict(self._best_weights)


class ModelCheckpoint(Callback):
    """Save a checkpoint after every epoch (``save="last"``) or on improvement (``"best"``).

    The file is a plain dict of state_dicts and numbers, written atomically (a crash never
    leaves a half-written checkpoint), and loads with ``torch.load(weights_only=True)``;
    ``Trainer.fit(model, resume_from=path)`` continues training from it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        save: Literal["best", "last"] = "last",
    ) -> None:
        self.save = check_choice(save, "ModelCheckpoint.save", ("best", "last"))
        if not isinstance(path, str | os.PathLike):
            raise ConfigError.invalid("ModelCheckpoint.path", path, "a file path")
        self.path = Path(path)
        self.monitor = monitor
        self.mode = _resolve_mode(monitor, mode, "ModelCheckpoint")
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, trainer: Engine, state: TrainState) -> None:
        if self.save == "best":
            value = _monitored(state, self.monitor, "ModelCheckpoint")
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        save_checkpoint(self.path, state)


def save_checkpoint(path: str | os.PathLike[str], state: TrainState) -> None:
    """Atomically write the model, optimizer and scheduler state after ``state.epoch``."""
    payload = {
        "format": "nasforge.checkpoint/1",
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
        "epoch": state.epoch + 1,  # epochs completed
        "metrics": dict(state.metrics),
        "history": [dict(h) for h in state.history],
        "rng": torch.get_rng_state(),
    }
    atomic_torch_save(payload, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :class:`ModelCheckpoint` (with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc}). "
            "HINT: the file is truncated or was not written by nasforge; delete it to "
            "start over."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != "nasforge.checkpoint/1":
        raise CheckpointError(
            f"{str(path)!r} is not a nasforge checkpoint (expected a dict with "
            "format 'nasforge.checkpoint/1')"
        )
    return payload
