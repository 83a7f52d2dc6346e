"""The search loop (:func:`search`), its results and the evaluators it calls.

``nasforge.search`` is both this package and the function :func:`nasforge.search`; the
package module is callable (it forwards to the function), so ``nf.search(...)`` works no
matter which of the two an earlier import left on the ``nasforge`` namespace.
"""

import sys
import types
from typing import Any

from nasforge.search.evaluator import Evaluator, TabularBenchmark, UnknownArchError
from nasforge.search.loop import search
from nasforge.search.result import SearchResult, Trial, TrialStatus

__all__ = [
    "Evaluator",
    "SearchResult",
    "TabularBenchmark",
    "Trial",
    "TrialStatus",
    "UnknownArchError",
    "search",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> SearchResult:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
