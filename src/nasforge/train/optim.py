"""Optimizers and learning-rate schedules by name: the one place each is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError

__all__ = ["OPTIMIZERS", "SCHEDULES", "make_optimizer", "make_schedule"]

#: Optimizers by name: ``(params, lr, weight_decay, momentum) -> Optimizer``.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr, wd, momentum: torch.optim.SGD(
        params, lr=lr, weight_decay=wd, momentum=momentum, nesterov=momentum > 0
    ),
    "adam": lambda params, lr, wd, momentum: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd, momentum: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
    "rmsprop": lambda params, lr, wd, momentum: torch.optim.RMSprop(
        params, lr=lr, weight_decay=wd, momentum=momentum
    ),
}
#: Learning-rate schedules by name; ``onecycle`` steps every batch, the others every epoch.
SCHEDULES: tuple[str, ...] = ("none", "cosine", "step", "onecycle")


def make_optimizer(
    model: nn.Module, optimizer: Any, *, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    """The optimizer of ``model``'s trainable parameters: ``optimizer`` is a name of
    :data:`OPTIMIZERS`, an optimizer class (given ``lr`` and ``weight_decay``) or a callable
    ``params -> Optimizer``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters", field="model")
    if isinstance(optimizer, str):
        return OPTIMIZERS[optimizer](params, lr, weight_decay, momentum)
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(params, lr=lr, weight_decay=weight_decay)
    built = optimizer(params)
    if not isinstance(built, torch.optim.Optimizer):
        raise ConfigError.invalid(
            "optimizer", built, "a callable returning a torch.optim.Optimizer"
        )
    return built


def make_schedule(
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    *,
    epochs: int,
    steps_per_epoch: int,
    max_lr: float,
) -> tuple[Any, bool]:
    """``(scheduler, steps_every_batch)`` for ``schedule``: None, a name of
    :data:`SCHEDULES` (lasting ``epochs``) or a callable ``optimizer -> scheduler`` stepped
    every epoch. ``cosine`` anneals to zero over ``epochs``; ``step`` divides the rate by 10
    every third of them; ``onecycle`` rises to ``max_lr`` and falls again, batch by batch."""
    if schedule is None or schedule == "none":
        return None, False
    if callable(schedule):
        return schedule(optimizer), False
    lr_scheduler = torch.optim.lr_scheduler
    if schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), False
    if schedule == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), False
    if schedule == "onecycle":
        onecycle = lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=max(1, steps_per_epoch)
        )
        return onecycle, True
    raise ConfigError.invalid("lr_schedule", schedule, f"one of {list(SCHEDULES)} or a callable")
