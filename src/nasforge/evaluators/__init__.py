"""Evaluators: turn an architecture into metrics.

- :class:`TabularBenchmark` (``tabular``): metrics looked up in a table (NAS-Bench-201).
- :class:`TrainEvaluator` (``train``): build the architecture, train it, measure it.

Every evaluator follows the contract of :class:`nasforge.nas.Evaluator`; a new one goes in
this package and registers with ``@register("evaluator", name)``.
"""

from nasforge.evaluators.tabular import TabularBenchmark
from nasforge.evaluators.training import TrainEvaluator
from nasforge.nas.evaluator import Evaluator

__all__ = ["Evaluator", "TabularBenchmark", "TrainEvaluator"]
