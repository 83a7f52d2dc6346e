"""Training: the fit/evaluate engine, its options (:class:`TrainConfig`), callbacks and
metrics. The user-facing :class:`nasforge.Trainer` builds on :class:`Engine`."""

from nasforge._deprecated import moved
from nasforge.train.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    TrainState,
    load_checkpoint,
    save_checkpoint,
)
from nasforge.train.config import TrainConfig, resolve_device
from nasforge.train.engine import Engine, History
from nasforge.train.metrics import ConfusionMatrix

__all__ = [
    "Callback",
    "ConfusionMatrix",
    "EarlyStopping",
    "Engine",
    "History",
    "ModelCheckpoint",
    "TrainConfig",
    "TrainState",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]

__getattr__ = moved(__name__, {"Trainer": "nasforge.trainer"})
