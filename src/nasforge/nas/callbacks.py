"""Search callbacks: hooks that :func:`nasforge.search` calls as a search runs.

A :class:`SearchCallback` overrides the hooks it needs::

    class Printer(nf.SearchCallback):
        def on_trial_end(self, trial, replayed):
            print(trial.number, trial.status.value, trial.metrics.get("val_acc"))

    nf.search(space, evaluator, budget=10, callbacks=[Printer()])

The hooks run in the search's own process, in trial order when the search is
deterministic, whatever executor runs the trials (workers send their results back to
it). ``on_search_begin`` comes once the journal is read and the executor is made;
``on_trial_end`` once per trial when its result is final (failed and infeasible trials
included; with a multi-fidelity scheduler, once it is promoted no further);
``on_search_end`` however the search ends: with the result, or with the partial result
and the exception that stops it (which is raised again after the hooks).

A callback never stops a search: an exception in a hook is reported as a
:class:`CallbackWarning` (once per callback and hook) and the search goes on.

Resuming a journal replays the recorded trials through ``on_trial_end`` with
``replayed=True``, so a callback can skip what it saw in the earlier run (the trackers
in :mod:`nasforge.nas.trackers` do).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from nasforge.nas.result import SearchResult, Trial
    from nasforge.space.base import Space

__all__ = ["CallbackWarning", "SearchCallback", "SearchInfo"]

logger = logging.getLogger(__name__)


class CallbackWarning(UserWarning):
    """A search callback (or a tracker's Trainer hook) raised; the search or training went
    on without that call."""


@dataclass(frozen=True)
class SearchInfo:
    """What a search is, as :meth:`SearchCallback.on_search_begin` sees it.

    ``journal`` is the journal's path (None without one) and ``resumed`` whether this run
    continues it; ``scheduler`` is the scheduler's name and options.
    """

    space: Space
    evaluator: Any
    strategy: str
    objectives: tuple[str, ...]
    modes: tuple[str, ...]
    budget: int
    seed: int
    constraints: tuple[str, ...] = ()
    scheduler: Mapping[str, Any] = field(default_factory=dict)
    strategy_options: Mapping[str, Any] = field(default_factory=dict)
    journal: Path | None = None
    resumed: bool = False

    def describe(self) -> dict[str, str]:
        """The settings as flat strings (what trackers log as a search's parameters)."""
        options = {f"strategy.{k}": v for k, v in sorted(self.strategy_options.items())}
        return {
            "space": self.space.name,
            "evaluator": type(self.evaluator).__name__,
            "strategy": self.strategy,
            "objective": ",".join(self.objectives),
            "mode": ",".join(self.modes),
            "budget": str(self.budget),
            "seed": str(self.seed),
            "constraints": "; ".join(self.constraints) or "none",
            "scheduler": str(self.scheduler.get("name", "none")),
            **{k: str(v) for k, v in options.items()},
        }


class SearchCallback:
    """Base class of search callbacks; every hook is a no-op (see the module docstring)."""

    def on_search_begin(self, info: SearchInfo) -> None:
        """Before the first trial runs (after a resumed journal is read)."""

    def on_trial_end(self, trial: Trial, replayed: bool) -> None:
        """A trial's result is final; ``replayed``: read back from a resumed journal."""

    def on_search_end(self, result: SearchResult, error: BaseException | None) -> None:
        """The search is over: ``error`` is None, or the exception that ends it."""


def report_failure(owner: Any, hook: str, exc: Exception, reported: set[str]) -> None:
    """Warn that ``owner``'s ``hook`` raised ``exc`` (once per hook, tracked in
    ``reported``); log every failure with its traceback at debug level."""
    name = f"{type(owner).__name__}.{hook}"
    logger.debug("%s raised", name, exc_info=exc)
    if hook in reported:
        return
    reported.add(hook)
    warnings.warn(
        f"{name} raised {type(exc).__name__}: {exc}; going on without it (further "
        "failures of this hook are logged at debug level)",
        CallbackWarning,
        stacklevel=3,
    )


class CallbackList:
    """The callbacks of one search; calls each hook guarded (see the module docstring)."""

    def __init__(self, callbacks: Sequence[SearchCallback] | None) -> None:
        if callbacks is None:
            callbacks = ()
        if isinstance(callbacks, SearchCallback) or not isinstance(callbacks, Sequence):
            raise ConfigError.invalid(
                "callbacks", callbacks, "a list of nasforge.SearchCallback instances or None"
            )
        for callback in callbacks:
            if not isinstance(callback, SearchCallback):
                raise ConfigError.invalid(
                    "callbacks",
                    callback,
                    "instances of nasforge.SearchCallback",
                    hint="subclass nf.SearchCallback; trackers such as nf.TensorBoardTracker "
                    "are both",
                )
        self.callbacks = list(callbacks)
        self.begun = False
        self._reported: dict[int, set[str]] = {id(c): set() for c in self.callbacks}

    def begin(self, info: SearchInfo) -> None:
        self.begun = True
        self._call("on_search_begin", info)

    def trial_end(self, trial: Trial, replayed: bool) -> None:
        self._call("on_trial_end", trial, replayed)

    def end(self, result: SearchResult, error: BaseException | None) -> None:
        if self.begun:
            self._call("on_search_end", result, error)

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook)
            if getattr(type(callback), hook) is getattr(SearchCallback, hook):
                continue  # not overridden
            try:
                method(*args)
            except Exception as exc:
                report_failure(callback, hook, exc, self._reported[id(callback)])
