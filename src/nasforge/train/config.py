"""Every training option in one place: :class:`TrainConfig`.

The Trainer, the evaluators that train, the compressors that fine-tune and both YAML
loaders take a ``TrainConfig`` (or build one from keyword arguments or a config section),
so an option is defined, defaulted, validated and normalised once::

    config = TrainConfig(epochs=20, lr=3e-3, lr_schedule="Cosine")   # names: any case
    config.lr_schedule                                               # 'cosine'
    nf.Trainer(data, config=config)          # the same as nf.Trainer(data, epochs=20, ...)
    config.replace(epochs=5)                 # a changed copy, validated again
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from nasforge.errors import ConfigError, close_matches
from nasforge.train.optim import OPTIMIZERS, SCHEDULES
from nasforge.validation import (
    check_callable,
    check_choice,
    check_int,
    check_number,
    is_number,
)

__all__ = ["LossLike", "OptimizerLike", "ScheduleLike", "TrainConfig", "resolve_device"]

OptimizerLike = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]
ScheduleLike = str | Callable[[torch.optim.Optimizer], Any] | None
LossLike = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when it is available, else the CPU; anything else is passed on."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str) and device.lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError.invalid("device", device, "'auto', 'cpu', 'cuda' or 'cuda:N'") from None


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained and evaluated. Every field is checked at construction.

    - ``epochs``, ``batch_size``, ``eval_batch_size``: positive integers.
    - ``optimizer``: ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` (any case), an
      optimizer class, or a callable ``params -> Optimizer``; ``lr`` > 0,
      ``weight_decay`` >= 0 and ``momentum`` (SGD, RMSprop) go to the named ones.
    - ``lr_schedule``: None, ``"none"``, ``"cosine"``, ``"step"``, ``"onecycle"`` (any case)
      or a callable ``optimizer -> scheduler`` stepped every epoch; a named schedule lasts
      ``schedule_epochs`` (default: the epochs of each ``fit``), so that training continued
      from a checkpoint follows the same curve.
    - ``loss``: ``"cross_entropy"`` (with ``label_smoothing`` in [0, 1)) or a callable
      ``(outputs, targets) -> loss``; ``grad_clip``: a maximum gradient norm, or None.
    - ``seed``: makes training reproducible; ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``...
    - ``progress``: progress bars on (True), off (False), or when standard error is a
      terminal (None); ``num_workers``: DataLoader worker processes for Datasets.
    """

    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 512
    optimizer: OptimizerLike = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_schedule: ScheduleLike = None
    schedule_epochs: int | None = None
    loss: LossLike = "cross_entropy"
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    device: str | torch.device = "auto"
    progress: bool | None = None
    num_workers: int = 0

    #: The option names, in order.
    FIELDS: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        check_int(self.epochs, "epochs", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        check_int(self.eval_batch_size, "eval_batch_size", low=1)
        if isinstance(self.optimizer, str):
            set_(self, "optimizer", check_choice(self.optimizer, "optimizer", tuple(OPTIMIZERS)))
        else:
            check_callable(
                self.optimizer, "optimizer", f"one of {sorted(OPTIMIZERS)}, a class or a callable"
            )
        set_(self, "lr", check_number(self.lr, "lr", low=0, low_open=True))
        set_(self, "weight_decay", check_number(self.weight_decay, "weight_decay", low=0))
        set_(self, "momentum", check_number(self.momentum, "momentum", low=0))
        schedule = self.lr_schedule
        if isinstance(schedule, str):
            schedule = check_choice(schedule, "lr_schedule", SCHEDULES)
            set_(self, "lr_schedule", None if schedule == "none" else schedule)
        else:
            expected = f"one of {list(SCHEDULES)}, a callable or None"
            check_callable(schedule, "lr_schedule", expected, optional=True)
        check_int(self.schedule_epochs, "schedule_epochs", low=1, optional=True)
        if isinstance(self.loss, str):
            set_(self, "loss", check_choice(self.loss, "loss", ("cross_entropy",)))
        else:
            check_callable(self.loss, "loss", "'cross_entropy' or a callable")
        smoothing = check_number(
            self.label_smoothing, "label_smoothing", low=0, high=1, high_open=True
        )
        set_(self, "label_smoothing", smoothing)
        clip = check_number(self.grad_clip, "grad_clip", low=0, low_open=True, optional=True)
        set_(self, "grad_clip", clip)
        check_int(self.seed, "seed", low=0)
        resolve_device(self.device)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ConfigError.invalid("progress", self.progress, "True, False or None (automatic)")
        check_int(self.num_workers, "num_workers", low=0)

    @classmethod
    def from_dict(
        cls, options: Mapping[str, Any], *, field: str | None = "training"
    ) -> TrainConfig:
        """A config from a mapping of options (a YAML section): unknown names and bad
        values raise :class:`ConfigError` naming ``field.option`` (``option`` without a
        ``field``)."""
        if not isinstance(options, Mapping):
            raise ConfigError.invalid(field or "options", options, "a mapping of training options")
        for key in options:
            if key not in cls.FIELDS:
                raise ConfigError.invalid(
                    f"{field}.{key}" if field else str(key),
                    options[key],
                    f"one of the training options {', '.join(cls.FIELDS)}",
                    ("unknown option." + close_matches(str(key), cls.FIELDS)).strip(),
                )
        try:
            return cls(**options)
        except ConfigError as exc:
            if field is None:
                raise
            raise exc.within(field) from None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and checked); unknown names raise ConfigError."""
        return TrainConfig.from_dict({**self.to_dict(), **changes}, field=None)

    def to_dict(self) -> dict[str, Any]:
        """The options as a dict (callables and devices as they are)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def describe(self) -> dict[str, Any]:
        """The options as plain JSON data (callables by their qualified name)."""
        return {name: _describe(getattr(self, name)) for name in self.FIELDS}


TrainConfig.FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def _describe(value: Any) -> Any:
    if value is None or isinstance(value, bool | str | int) or is_number(value):
        return value
    if isinstance(value, torch.device):
        return str(value)
    name = getattr(value, "__qualname__", type(value).__qualname__)
    return f"{getattr(value, '__module__', '?')}.{name}"
