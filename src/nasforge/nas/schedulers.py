"""Multi-fidelity schedulers: which trial runs next, and for how long.

A scheduler hands the search loop :class:`Job` s — "start a new trial at budget b" or
"continue trial n up to budget b" — and learns their scores. Budgets are the evaluator's
fidelity, e.g. epochs for the training evaluator, which continues a promoted trial from its
checkpoint instead of retraining it.

- ``successive_halving`` (Jamieson & Talwalkar 2016): brackets of ``eta**k`` new trials at
  ``min_budget``; the best ``1/eta`` of each rung go on to ``eta`` times the budget, up to
  ``max_budget``.
- ``hyperband`` (Li et al. 2018): cycles through successive-halving brackets that start at
  different budgets, from the most aggressive (many trials at ``min_budget``) to plain full
  budget runs, hedging against low fidelities that rank trials badly.
- ``asha`` (Li et al. 2020): asynchronous successive halving. Whenever a worker is free, a
  trial in the top ``1/eta`` of a rung's results so far goes on to the next rung (the
  highest rung first); when none can, a new trial starts at the lowest rung. No rung waits
  to fill: while new trials may start, there is always a job for a free worker.

Successive halving and Hyperband rungs are synchronous. Ranking uses the scores the
strategy sees (maximised): a float, or for several objectives a tuple, ranked by
non-domination then crowding distance (NSGA-II's order). Failed trials rank last and are
never promoted; infeasible trials do not take a place in a rung. With several workers, a
new bracket starts while an older one waits for its rung to complete, so workers idle less.

Write your own by subclassing :class:`Scheduler` and registering it::

    @nf.register("scheduler", "mine")
    class Mine(Scheduler): ...
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nasforge._options import Configurable
from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.validation import check_int, check_number

__all__ = ["ASHA", "FullBudget", "Hyperband", "Job", "Scheduler", "SuccessiveHalving"]

#: What a scheduler ranks: a float to maximise, a tuple of them, or None (failed).
Score = float | tuple[float, ...] | None


@dataclass(frozen=True)
class Job:
    """Run ``trial`` up to ``budget`` (None: the evaluator's default); ``new`` when the trial
    does not exist yet (the loop asks the strategy for its architecture)."""

    trial: int
    budget: float | None
    new: bool


class Scheduler(Configurable):
    """Base class. The loop calls :meth:`next_job` whenever a worker is free and
    :meth:`report` with every result, and tells the strategy about the trials that
    :meth:`report` returns as final (they will not run again). Constructor options are
    recorded automatically; :meth:`to_dict` gives them with the name."""

    name = "scheduler"
    #: Whether the jobs handed out depend on the results reported (see Strategy.adaptive).
    adaptive = True

    def __init__(self) -> None:
        """A scheduler without options; subclasses take theirs as keyword arguments."""

    def next_job(self, new_trial: int | None) -> Job | None:
        """The next job, or None when nothing can run until a result comes back.

        ``new_trial`` is the number a new trial would get, or None when the search may not
        start new trials (its budget is reached).
        """
        raise NotImplementedError

    def report(self, trial: int, score: Score, *, infeasible: bool = False) -> list[int]:
        """Record the result of ``trial``'s last job; return the trials now final."""
        raise NotImplementedError

    def close(self) -> list[int]:
        """No new trials from now on (the search budget is reached); return the trials
        that this makes final."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """Settings that identify the schedule (stored in a journal's identity): the name
        and the constructor options."""
        return {"name": self.name, **self.options}


@register("scheduler", "none")
class FullBudget(Scheduler):
    """No multi-fidelity: every trial runs once at the evaluator's full budget."""

    name = "none"
    adaptive = False

    def next_job(self, new_trial: int | None) -> Job | None:
        return None if new_trial is None else Job(new_trial, None, new=True)

    def report(self, trial: int, score: Score, *, infeasible: bool = False) -> list[int]:
        return [trial]


@dataclass
class _Bracket:
    """One successive-halving bracket: ``size`` new trials, rungs at ``budgets``."""

    size: int
    budgets: list[float]
    eta: int
    rungs: list[list[int]] = field(default_factory=list)
    scores: list[dict[int, Score]] = field(default_factory=list)
    queue: deque[Job] = field(default_factory=deque)
    decided: int = 0  # rungs whose promotions are decided
    closed: bool = False  # no more new trials (the search budget is reached)

    def __post_init__(self) -> None:
        self.rungs = [[] for _ in self.budgets]
        self.scores = [{} for _ in self.budgets]

    @property
    def done(self) -> bool:
        return self.decided == len(self.budgets) and not self.queue

    def next_job(self, new_trial: int | None) -> Job | None:
        if self.queue:
            return self.queue.popleft()
        if new_trial is not None and not self.closed and len(self.rungs[0]) < self.size:
            self.rungs[0].append(new_trial)
            return Job(new_trial, self.budgets[0], new=True)
        return None

    def report(self, trial: int, score: Score, infeasible: bool) -> list[int]:
        rung = max(i for i, members in enumerate(self.rungs) if trial in members)
        if infeasible:  # frees its place in the rung
            self.rungs[rung].remove(trial)
            return [trial, *self.settle()]
        self.scores[rung][trial] = score
        return self.settle()

    def settle(self) -> list[int]:
        """Decide every rung that is complete, in order; return the trials now final."""
        final: list[int] = []
        while self.decided < len(self.budgets) and self._complete(self.decided):
            i = self.decided
            self.decided += 1
            if i + 1 == len(self.budgets):
                final += self.rungs[i]
                break
            chosen = self._promotable(i)
            self.rungs[i + 1] = chosen
            self.queue.extend(Job(t, self.budgets[i + 1], new=False) for t in chosen)
            final += [t for t in self.rungs[i] if t not in chosen]
            if not chosen:  # every trial of the rung failed: the bracket ends here
                self.decided = len(self.budgets)
        return final

    def _complete(self, i: int) -> bool:
        members = self.rungs[i]
        full = i > 0 or self.closed or len(members) >= self.size
        return full and all(t in self.scores[i] for t in members)

    def _promotable(self, i: int) -> list[int]:
        scored = [t for t in self.rungs[i] if self.scores[i][t] is not None]
        keep = max(1, len(self.rungs[i]) // self.eta)
        order = rank([self.scores[i][t] for t in scored])
        return [scored[j] for j in order[:keep]]


MAX_HALVINGS = 30  # a bracket of eta**30 trials is already far beyond any search


class _Rungs(Scheduler):
    """Shared options: budgets from ``min_budget`` to ``max_budget``, ``eta`` times apart."""

    def __init__(self, *, min_budget: float, max_budget: float, eta: int = 3) -> None:
        check_number(min_budget, "scheduler.min_budget", low=0, low_open=True)
        check_number(max_budget, "scheduler.max_budget", low=min_budget, hint="min_budget or more")
        check_int(eta, "scheduler.eta", low=2)
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.eta = eta
        self.integral = isinstance(min_budget, int) and isinstance(max_budget, int)
        #: rungs above the lowest: the largest s with min_budget * eta**s <= max_budget
        self.s_max = math.floor(
            (math.log(max_budget) - math.log(min_budget)) / math.log(eta) + 1e-9
        )
        if self.s_max > MAX_HALVINGS:
            raise ConfigError.invalid(
                "scheduler.min_budget",
                min_budget,
                f"at least max_budget / eta**{MAX_HALVINGS} (at most {MAX_HALVINGS} halvings)",
                f"with max_budget={max_budget} and eta={eta}, {self._too_many()}",
            )

    def _too_many(self) -> str:
        """What ``s_max`` above the limit would mean (for the error message)."""
        return f"a bracket would start {self.eta}**{self.s_max} trials"

    def _budgets(self, s: int) -> list[float]:
        budgets = [self.max_budget * self.eta ** (i - s) for i in range(s + 1)]
        return [max(1, round(b)) for b in budgets] if self.integral else budgets

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_budget={self.min_budget}, "
            f"max_budget={self.max_budget}, eta={self.eta})"
        )


class _Brackets(_Rungs):
    """Shared machinery: brackets opened in a fixed cycle, older brackets served first."""

    def __init__(self, *, min_budget: float, max_budget: float, eta: int = 3) -> None:
        super().__init__(min_budget=min_budget, max_budget=max_budget, eta=eta)
        self._brackets: list[_Bracket] = []
        self._owner: dict[int, _Bracket] = {}
        self._opened = 0

    def _shapes(self) -> Sequence[int]:
        """The cycle of brackets, by their number of halvings ``s``."""
        raise NotImplementedError

    def bracket(self, s: int) -> tuple[int, list[float]]:
        """Size and rung budgets of the bracket with ``s`` halvings."""
        raise NotImplementedError

    def next_job(self, new_trial: int | None) -> Job | None:
        self._brackets = [b for b in self._brackets if not b.done]
        for b in self._brackets:
            job = b.next_job(new_trial)
            if job is not None:
                if job.new:
                    self._owner[job.trial] = b
                return job
        if new_trial is None:
            return None
        shapes = self._shapes()
        size, budgets = self.bracket(shapes[self._opened % len(shapes)])
        self._opened += 1
        opened = _Bracket(size, budgets, self.eta)
        self._brackets.append(opened)
        job = opened.next_job(new_trial)
        assert job is not None
        self._owner[job.trial] = opened
        return job

    def report(self, trial: int, score: Score, *, infeasible: bool = False) -> list[int]:
        return self._owner[trial].report(trial, score, infeasible)

    def close(self) -> list[int]:
        final: list[int] = []
        for b in self._brackets:
            b.closed = True
            final += b.settle()
        return final


@register("scheduler", "successive_halving")
class SuccessiveHalving(_Brackets):
    """Brackets of ``eta**s_max`` trials from ``min_budget`` to ``max_budget``; see the
    module docstring. ``bracket_size`` overrides the number of trials per bracket."""

    name = "successive_halving"

    def __init__(
        self,
        *,
        min_budget: float,
        max_budget: float,
        eta: int = 3,
        bracket_size: int | None = None,
    ) -> None:
        super().__init__(min_budget=min_budget, max_budget=max_budget, eta=eta)
        self.bracket_size = check_int(bracket_size, "scheduler.bracket_size", low=1, optional=True)

    def _shapes(self) -> Sequence[int]:
        return [self.s_max]

    def bracket(self, s: int) -> tuple[int, list[float]]:
        return self.bracket_size or self.eta**s, self._budgets(s)


@register("scheduler", "hyperband")
class Hyperband(_Brackets):
    """Successive-halving brackets with ``s = s_max, ..., 0`` halvings in turn, bracket
    ``s`` starting ``ceil((s_max + 1) / (s + 1) * eta**s)`` trials at
    ``max_budget * eta**-s`` (Li et al. 2018)."""

    name = "hyperband"

    def _shapes(self) -> Sequence[int]:
        return list(range(self.s_max, -1, -1))

    def bracket(self, s: int) -> tuple[int, list[float]]:
        size = math.ceil((self.s_max + 1) / (s + 1) * self.eta**s)
        return size, self._budgets(s)


@register("scheduler", "asha")
class ASHA(_Rungs):
    """Asynchronous successive halving (Li et al. 2020): rungs at ``max_budget * eta**-k``
    for ``k = s_max, ..., 0``, as successive halving's first bracket, but no rung waits.

    Whenever a worker is free, the best trial of the highest rung that has one in the top
    ``len(rung) // eta`` of its results so far (failed trials included) and not promoted
    yet goes on to the next rung; otherwise a new trial starts at the lowest rung. A trial
    that is not promoted now may be later, once the rung has more results, so trials below
    ``max_budget`` become final only when the search's budget is reached and nothing can be
    promoted any more; trials reaching ``max_budget``, failed and infeasible ones are final
    at once.
    """

    name = "asha"

    def __init__(self, *, min_budget: float, max_budget: float, eta: int = 3) -> None:
        super().__init__(min_budget=min_budget, max_budget=max_budget, eta=eta)
        #: the budget of each rung, lowest first
        self.budgets = self._budgets(self.s_max)
        self._results: list[dict[int, Score]] = [{} for _ in self.budgets]
        self._promoted: list[set[int]] = [set() for _ in self.budgets]
        self._top: list[list[int] | None] = [None for _ in self.budgets]  # cached ranking
        self._running: dict[int, int] = {}  # trial -> the rung its job runs at
        self._waiting: set[int] = set()  # not final, not running: may still be promoted
        self._closed = False

    def _too_many(self) -> str:
        return f"there would be {self.s_max + 1} rungs"

    def next_job(self, new_trial: int | None) -> Job | None:
        found = self._promotable()
        if found is not None:
            trial, rung = found
            self._promoted[rung].add(trial)
            self._waiting.discard(trial)
            self._running[trial] = rung + 1
            return Job(trial, self.budgets[rung + 1], new=False)
        if new_trial is None:
            return None
        self._running[new_trial] = 0
        return Job(new_trial, self.budgets[0], new=True)

    def report(self, trial: int, score: Score, *, infeasible: bool = False) -> list[int]:
        rung = self._running.pop(trial)
        final: list[int] = []
        if infeasible:  # takes no place in the rung
            final.append(trial)
        else:
            self._results[rung][trial] = score
            self._top[rung] = None
            if score is None or rung + 1 == len(self.budgets):
                final.append(trial)
            else:
                self._waiting.add(trial)
        return final + self._settle()

    def close(self) -> list[int]:
        self._closed = True
        return self._settle()

    def promotable(self, rung: int) -> list[int]:
        """The trials of ``rung`` that would go on now, best first: those in the top
        ``len(rung) // eta`` of its results, not failed and not promoted yet."""
        top = self._top[rung]
        if top is None:
            results = self._results[rung]
            trials = list(results)
            best = rank([results[t] for t in trials])[: len(trials) // self.eta]
            top = self._top[rung] = [trials[i] for i in best if results[trials[i]] is not None]
        return [t for t in top if t not in self._promoted[rung]]

    def _promotable(self) -> tuple[int, int] | None:
        """The next promotion, ``(trial, rung)``, from the highest rung that has one."""
        for rung in range(len(self.budgets) - 2, -1, -1):
            chosen = self.promotable(rung)
            if chosen:
                return chosen[0], rung
        return None

    def _settle(self) -> list[int]:
        """Once no new trial may start, nothing runs and nothing can be promoted, the
        waiting trials are final."""
        if not self._closed or self._running or self._promotable() is not None:
            return []
        final = sorted(self._waiting)
        self._waiting.clear()
        return final


def rank(scores: Sequence[Score]) -> list[int]:
    """Indices of ``scores`` best first: floats by value (higher first), tuples by
    non-domination rank then crowding distance; None last; ties by position."""
    present = [i for i, s in enumerate(scores) if s is not None]
    missing = [i for i, s in enumerate(scores) if s is None]
    if not present:
        return missing
    if not isinstance(scores[present[0]], tuple):
        ordered = sorted(present, key=lambda i: (-float(scores[i]), i))  # type: ignore[arg-type]
        return ordered + missing
    import numpy as np

    from nasforge.pareto import crowding_distance, non_dominated_sort

    points = np.array([scores[i] for i in present], dtype=float)
    ordered = []
    for front in non_dominated_sort(points):
        crowd = crowding_distance(points[front])
        ordered += [present[front[j]] for j in sorted(range(len(front)), key=lambda j: -crowd[j])]
    return ordered + missing
