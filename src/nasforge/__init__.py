"""nasforge: neural architecture search and model compression over PyTorch.

``import nasforge`` is cheap: the registry and errors load at once, everything that needs
PyTorch loads on first use of its name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nasforge._version import __version__
from nasforge.errors import (
    CheckpointError,
    ConfigError,
    MissingDependencyError,
    NasforgeError,
    RegistryError,
    TrainingDivergedError,
)
from nasforge.registry import KINDS, available, build, get, register, unregister

# Public name -> module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "seed_everything": "nasforge._seed",
    "DataBundle": "nasforge.data.bundle",
    "load_dataset": "nasforge.data.bundle",
    "TensorLoader": "nasforge.data.loaders",
    "Callback": "nasforge.train.callbacks",
    "EarlyStopping": "nasforge.train.callbacks",
    "ModelCheckpoint": "nasforge.train.callbacks",
    "TrainState": "nasforge.train.callbacks",
    "load_checkpoint": "nasforge.train.callbacks",
    "History": "nasforge.train.trainer",
    "Trainer": "nasforge.train.trainer",
}

__all__ = [
    "KINDS",
    "Callback",
    "CheckpointError",
    "ConfigError",
    "DataBundle",
    "EarlyStopping",
    "History",
    "MissingDependencyError",
    "ModelCheckpoint",
    "NasforgeError",
    "RegistryError",
    "TensorLoader",
    "TrainState",
    "Trainer",
    "TrainingDivergedError",
    "__version__",
    "available",
    "build",
    "get",
    "load_checkpoint",
    "load_dataset",
    "register",
    "seed_everything",
    "unregister",
]

if TYPE_CHECKING:
    from nasforge._seed import seed_everything
    from nasforge.data.bundle import DataBundle, load_dataset
    from nasforge.data.loaders import TensorLoader
    from nasforge.train.callbacks import (
        Callback,
        EarlyStopping,
        ModelCheckpoint,
        TrainState,
        load_checkpoint,
    )
    from nasforge.train.trainer import History, Trainer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nasforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
