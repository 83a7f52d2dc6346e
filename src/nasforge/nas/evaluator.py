"""The evaluator contract: what the search loop calls to score an architecture.

An evaluator turns an :class:`~nasforge.Arch` (and a budget) into a dict of metrics. The
concrete ones live in :mod:`nasforge.evaluators`; this module holds the contract the
search loop relies on, so that the loop never depends on any particular evaluator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from nasforge._deprecated import moved
from nasforge.errors import ConfigError
from nasforge.space.base import Arch

__all__ = ["Evaluator"]


class Evaluator(ABC):
    """Base class of evaluators: ``evaluate(arch, budget=None) -> dict[str, float]``.

    Only :meth:`evaluate` is required; any object with such a method is an Evaluator
    (``isinstance`` says so), subclass or not. ``budget`` is the fidelity (e.g. epochs) a
    multi-fidelity scheduler asks for; evaluators without fidelities ignore it. Raising an
    exception marks the trial as failed.

    The optional hooks below have safe defaults; :func:`nasforge.search` uses them when an
    evaluator provides them:

    - :attr:`metrics`: the names :meth:`evaluate` returns, so that a wrong objective or
      constraint fails before anything runs (None: not known in advance);
    - :meth:`measure`: metrics known without training (``params``, ``macs``,
      ``latency_ms``), so that constraints on them are checked before a trial trains;
    - :meth:`test` and :attr:`has_test`: metrics added to the chosen trials at the end;
    - :meth:`identity`: a JSON-able dict recorded in the journal (resuming with another
      evaluator is refused);
    - :attr:`continues_trials`: False when a larger budget retrains from scratch;
    - :attr:`timing_metrics`: metrics measured in wall-clock time, which differ from run
      to run (everything else must be the same for the same seed).
    """

    metrics: tuple[str, ...] | None = None
    has_test: bool = False
    continues_trials: bool = True
    timing_metrics: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        if cls is Evaluator:
            return callable(getattr(other, "evaluate", None)) or NotImplemented
        return NotImplemented

    @abstractmethod
    def evaluate(self, arch: Arch, budget: float | None = None) -> dict[str, float]:
        """The metrics of ``arch`` trained (or looked up) at ``budget``."""

    def measure(self, arch: Arch) -> dict[str, float]:
        """Metrics known without training (default: none)."""
        return {}

    def test(self, arch: Arch) -> dict[str, float]:
        """Test metrics of ``arch`` (only evaluators with :attr:`has_test` implement it)."""
        raise ConfigError(f"{type(self).__name__} has no test data", field="evaluator")

    def identity(self) -> dict[str, Any]:
        """What the metrics depend on besides the arch (recorded in a search's journal)."""
        return {"evaluator": type(self).__qualname__}


__getattr__ = moved(
    __name__,
    {
        "TabularBenchmark": "nasforge.evaluators.tabular",
        "UnknownArchError": "nasforge.errors",
    },
)
