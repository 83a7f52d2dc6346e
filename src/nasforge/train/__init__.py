"""Training: the Trainer, its callbacks and metrics."""

from nasforge.train.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    TrainState,
    load_checkpoint,
    save_checkpoint,
)
from nasforge.train.metrics import ConfusionMatrix
from nasforge.train.trainer import History, Trainer, resolve_device

__all__ = [
    "Callback",
    "ConfusionMatrix",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "TrainState",
    "Trainer",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]
