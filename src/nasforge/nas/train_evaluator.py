"""Deprecated: :class:`TrainEvaluator` moved to :mod:`nasforge.evaluators.training` and
:class:`LatencyOptions` to :mod:`nasforge.measure`."""

from nasforge._deprecated import moved

__getattr__ = moved(
    __name__,
    {"TrainEvaluator": "nasforge.evaluators.training", "LatencyOptions": "nasforge.measure"},
)
