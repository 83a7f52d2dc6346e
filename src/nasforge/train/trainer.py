"""Deprecated: the Trainer moved to :mod:`nasforge.trainer` (``nf.Trainer``); the training
engine under it is :mod:`nasforge.train.engine`."""

from nasforge._deprecated import moved

__getattr__ = moved(
    __name__,
    {
        "Trainer": "nasforge.trainer",
        "History": "nasforge.train.engine",
        "resolve_device": "nasforge.train.config",
        "OptimizerLike": "nasforge.train.config",
    },
)
