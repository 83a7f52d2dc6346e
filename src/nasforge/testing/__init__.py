"""Conformance suites that plugin authors reuse (needs pytest).

Each kind of plugin has a pytest base class; subclass it in your own tests, name your
registered plugin (or override the ``factory`` fixture) and every ``test_*`` of the suite
checks one part of the contract, pickling and a round trip through a spawned process
included::

    from nasforge.testing import SchedulerConformance, StrategyConformance

    class TestMyStrategy(StrategyConformance):
        strategy = "mine"                 # a registered name ...
        options = {"population": 8}       # ... and constructor options

    class TestMyScheduler(SchedulerConformance):
        scheduler = "mine"
        options = {"min_budget": 1, "max_budget": 9}

- :class:`StrategyConformance`: ``factory(space, seed) -> Strategy``
- :class:`SpaceConformance`: ``factory() -> Space``
- :class:`EvaluatorConformance`: ``space_and_evaluator`` fixture ``-> (Space, Evaluator)``
- :class:`CompressorConformance`: ``factory(teacher) -> Compressor``
- :class:`SchedulerConformance`: ``factory() -> Scheduler``
- :class:`ExecutorConformance`: ``factory() -> Executor``

:func:`run_in_subprocess` runs a function on pickled arguments in a fresh spawned process.
Names load lazily: importing one suite does not import the others (nor PyTorch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge._lazy import lazy_exports

if TYPE_CHECKING:
    from nasforge.testing._spawn import run_in_subprocess
    from nasforge.testing.compressor import CompressorConformance
    from nasforge.testing.evaluator import EvaluatorConformance
    from nasforge.testing.executor import ExecutorConformance
    from nasforge.testing.scheduler import SchedulerConformance
    from nasforge.testing.space import SpaceConformance
    from nasforge.testing.strategy import (
        EquivalenceSpace,
        StrategyConformance,
        conformance_spaces,
        synthetic_score,
    )

_LAZY: dict[str, str] = {
    "run_in_subprocess": "nasforge.testing._spawn",
    "CompressorConformance": "nasforge.testing.compressor",
    "EvaluatorConformance": "nasforge.testing.evaluator",
    "ExecutorConformance": "nasforge.testing.executor",
    "SchedulerConformance": "nasforge.testing.scheduler",
    "SpaceConformance": "nasforge.testing.space",
    "EquivalenceSpace": "nasforge.testing.strategy",
    "StrategyConformance": "nasforge.testing.strategy",
    "conformance_spaces": "nasforge.testing.strategy",
    "synthetic_score": "nasforge.testing.strategy",
}

__all__ = [
    "CompressorConformance",
    "EquivalenceSpace",
    "EvaluatorConformance",
    "ExecutorConformance",
    "SchedulerConformance",
    "SpaceConformance",
    "StrategyConformance",
    "conformance_spaces",
    "run_in_subprocess",
    "synthetic_score",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
