"""The search machinery: the loop behind :func:`nasforge.search`, its trial records and
results, the evaluators it calls, and the crash-safe journal."""

from nasforge.nas.evaluator import Evaluator, TabularBenchmark, UnknownArchError
from nasforge.nas.loop import search
from nasforge.nas.result import SearchResult, Trial, TrialStatus

__all__ = [
    "Evaluator",
    "SearchResult",
    "TabularBenchmark",
    "Trial",
    "TrialStatus",
    "UnknownArchError",
    "search",
]
