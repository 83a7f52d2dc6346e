"""The search machinery: the loop behind :func:`nasforge.search`, the evaluator contract it
calls, trial records and results, schedulers, objectives and the crash-safe journal.

The concrete evaluators live in :mod:`nasforge.evaluators`. Names load on first use, so
that listing the schedulers does not load the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge._deprecated import moved
from nasforge._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "Evaluator": "nasforge.nas.evaluator",
    "search": "nasforge.nas.loop",
    "Constraint": "nasforge.nas.objectives",
    "Objectives": "nasforge.nas.objectives",
    "SearchResult": "nasforge.nas.result",
    "Trial": "nasforge.nas.result",
    "TrialStatus": "nasforge.nas.result",
    "ASHA": "nasforge.nas.schedulers",
    "FullBudget": "nasforge.nas.schedulers",
    "Hyperband": "nasforge.nas.schedulers",
    "Scheduler": "nasforge.nas.schedulers",
    "SuccessiveHalving": "nasforge.nas.schedulers",
    "UnknownArchError": "nasforge.errors",
}
#: Old names of this package that moved up a layer (a DeprecationWarning on use).
_MOVED = {"TabularBenchmark": "nasforge.evaluators.tabular"}

__all__ = [
    "ASHA",
    "Constraint",
    "Evaluator",
    "FullBudget",
    "Hyperband",
    "Objectives",
    "Scheduler",
    "SearchResult",
    "SuccessiveHalving",
    "Trial",
    "TrialStatus",
    "UnknownArchError",
    "search",
]

if TYPE_CHECKING:
    from nasforge.errors import UnknownArchError
    from nasforge.nas.evaluator import Evaluator
    from nasforge.nas.loop import search
    from nasforge.nas.objectives import Constraint, Objectives
    from nasforge.nas.result import SearchResult, Trial, TrialStatus
    from nasforge.nas.schedulers import ASHA, FullBudget, Hyperband, Scheduler, SuccessiveHalving

_lazy, __dir__ = lazy_exports(__name__, globals(), _LAZY)
_moved = moved(__name__, _MOVED)


def __getattr__(name: str) -> Any:
    return _moved(name) if name in _MOVED else _lazy(name)
