"""Evaluators: turn an architecture into metrics.

- :class:`TabularBenchmark` (``tabular``): metrics looked up in a table (NAS-Bench-201).
- :class:`TrainEvaluator` (``train``): build the architecture, train it, measure it;
  :func:`retrain` trains one arch stand-alone for good.
- :class:`SupernetEvaluator` (``supernet``): score the architecture with the inherited
  weights of a supernet trained once (weight sharing).
- :class:`ZeroCostProxy`: score the architecture untrained, in a fraction of a second
  (:class:`Synflow` ``synflow``, :class:`NASWOT` ``naswot``, :class:`SNIP` ``snip``), e.g.
  to warm-start a search with the best of a ranked pool.

Every evaluator follows the contract of :class:`nasforge.nas.Evaluator`; a new one goes in
this package and registers with ``@register("evaluator", name)``.
"""

from nasforge.evaluators.proxies import NASWOT, SNIP, Synflow, ZeroCostProxy
from nasforge.evaluators.supernet import SupernetEvaluator
from nasforge.evaluators.tabular import TabularBenchmark
from nasforge.evaluators.training import TrainEvaluator, retrain
from nasforge.nas.evaluator import Evaluator

__all__ = [
    "NASWOT",
    "SNIP",
    "Evaluator",
    "SupernetEvaluator",
    "Synflow",
    "TabularBenchmark",
    "TrainEvaluator",
    "ZeroCostProxy",
    "retrain",
]
