"""The scheduler conformance suite: driven as the search loop drives it, with synthetic
scores, failures and infeasible trials, every started trial becomes final exactly once,
budgets stay in range, trial numbers are consecutive and the jobs are reproducible; plus
``to_dict`` rebuilds it, pickling mid-run and a round trip through another process."""

from __future__ import annotations

import json
import pickle
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from nasforge.nas.schedulers import Job, Scheduler, Score
from nasforge.registry import build, name_of
from nasforge.testing._spawn import run_in_subprocess

__all__ = ["SchedulerConformance", "SchedulerRun", "finish_run", "synthetic_result"]

Factory = Callable[[], Scheduler]

#: What happened in a run: ("job", trial, budget, new) and ("final", trial) events.
Event = tuple[Any, ...]


def synthetic_result(trial: int, budget: float | None, *, fail_every: int = 5) -> float | None:
    """A deterministic score for ``trial`` at ``budget`` (higher budgets score a little
    higher), or None (failed) for every ``fail_every``-th trial."""
    if fail_every and trial % fail_every == fail_every - 1:
        return None
    noise = zlib.crc32(f"{trial}:{budget}".encode()) / 2**32
    return noise + 0.01 * (budget or 0.0)


@dataclass
class SchedulerRun:
    """Drives a scheduler like the search loop: up to ``workers`` jobs in flight, new
    trials until ``trials`` of them count (infeasible ones do not), results delivered in
    a fixed but not first-in-first-out order, and ``close()`` once no new trial may start.

    Every step checks the contract, so a run that completes is a run that conformed; the
    :attr:`events` tell two runs apart. Pickle a run to pickle its scheduler mid-way.
    """

    scheduler: Scheduler
    trials: int = 30
    workers: int = 3
    fail_every: int = 5
    infeasible_every: int = 7
    scores: Callable[..., Score] = synthetic_result
    events: list[Event] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    final: list[int] = field(default_factory=list)
    last_score: dict[int, Score] = field(default_factory=dict)
    budgets: dict[int, list[float | None]] = field(default_factory=dict)
    in_flight: deque[Job] = field(default_factory=deque)
    counted: int = 0
    closed: bool = False
    done: bool = False

    def run(self, steps: int | None = None) -> SchedulerRun:
        """Deliver ``steps`` results (all, when None); return self."""
        while not self.done and (steps is None or steps > 0):
            self.step()
            steps = None if steps is None else steps - 1
        return self

    def step(self) -> None:
        """Fill the free workers, then deliver one result (or close, or finish)."""
        while len(self.in_flight) < self.workers:
            can_start = self.counted < self.trials and not self.closed
            job = self.scheduler.next_job(len(self.started) if can_start else None)
            if job is None:
                break
            self._issue(job, can_start)
        if not self.in_flight:
            if not self.closed and self.counted >= self.trials:
                self.closed = True
                self._finalise(self.scheduler.close())
                return
            self.done = True
            assert self.counted == self.trials, (
                f"the scheduler stopped handing out jobs after {self.counted} of "
                f"{self.trials} trials with nothing running"
            )
            assert sorted(self.final) == sorted(self.started), (
                f"trials never final: {sorted(set(self.started) - set(self.final))}"
            )
            return
        # results come back out of order: every third delivery is the newest job's
        job = self.in_flight.pop() if len(self.events) % 3 == 0 else self.in_flight.popleft()
        infeasible = bool(
            self.infeasible_every
            and job.new
            and job.trial % self.infeasible_every == self.infeasible_every - 1
        )
        score = (
            None if infeasible else self.scores(job.trial, job.budget, fail_every=self.fail_every)
        )
        self.last_score[job.trial] = score
        if infeasible:
            self.counted -= 1
        final = self.scheduler.report(job.trial, score, infeasible=infeasible)
        if infeasible:
            assert job.trial in final, f"infeasible trial {job.trial} was not made final"
        self._finalise(final)

    def _issue(self, job: Job, can_start: bool) -> None:
        assert isinstance(job, Job), job
        running = {j.trial for j in self.in_flight}
        if job.new:
            assert can_start, f"new trial {job.trial} although no new trial may start"
            assert len(self.started) < 10 * self.trials + 10, "the run does not end"
            assert job.trial == len(self.started), (
                f"new trial {job.trial}, expected number {len(self.started)}"
            )
            self.started.append(job.trial)
            self.counted += 1
        else:
            assert job.trial in self.started, f"continues trial {job.trial}, never started"
            assert job.trial not in self.final, f"continues trial {job.trial}, already final"
            assert job.trial not in running, f"trial {job.trial} runs twice at once"
            assert self.last_score.get(job.trial) is not None, (
                f"continues trial {job.trial}, which failed"
            )
            previous = self.budgets[job.trial][-1]
            assert previous is not None and job.budget is not None and job.budget > previous, (
                f"continues trial {job.trial} at budget {job.budget} after {previous}"
            )
        self._check_budget(job.budget)
        self.budgets.setdefault(job.trial, []).append(job.budget)
        self.in_flight.append(job)
        self.events.append(("job", job.trial, job.budget, job.new))

    def _check_budget(self, budget: float | None) -> None:
        low = getattr(self.scheduler, "min_budget", None)
        high = getattr(self.scheduler, "max_budget", None)
        if low is None or high is None:
            assert budget is None, f"budget {budget} from a scheduler without budgets"
            return
        assert budget is not None and low - 1e-9 <= budget <= high + 1e-9, (
            f"budget {budget} outside [{low}, {high}]"
        )

    def _finalise(self, trials: list[int]) -> None:
        assert isinstance(trials, list), trials
        running = {j.trial for j in self.in_flight}
        for trial in trials:
            assert trial in self.started, f"trial {trial} made final but never started"
            assert trial not in self.final, f"trial {trial} made final twice"
            assert trial not in running, f"trial {trial} made final while it runs"
            self.final.append(trial)
            self.events.append(("final", trial))


def finish_run(payload: bytes) -> list[Event]:
    """Unpickle a :class:`SchedulerRun` and run it to the end; its events (what the suite
    runs in a spawned process)."""
    run: SchedulerRun = pickle.loads(payload)
    return run.run().events


def _other_result(trial: int, budget: float | None, *, fail_every: int = 5) -> float | None:
    score = synthetic_result(trial + 1000, budget, fail_every=fail_every)
    return None if score is None else -score


class SchedulerConformance:
    """Pytest base class: every ``test_*`` checks one part of the scheduler contract.

    Name a registered scheduler and its options, or override the ``factory`` fixture::

        from nasforge.testing import SchedulerConformance

        class TestMyScheduler(SchedulerConformance):
            scheduler = "mine"
            options = {"min_budget": 1, "max_budget": 27}

    Budgets must lie in ``[scheduler.min_budget, scheduler.max_budget]`` when it has those
    attributes, and be None otherwise.
    """

    #: Registered scheduler name (used by the default ``factory`` fixture).
    scheduler: ClassVar[str | None] = None
    #: Constructor options for the default factory.
    options: ClassVar[dict[str, Any]] = {}
    #: New trials per run (the search budget).
    trials: ClassVar[int] = 30
    #: Jobs in flight at once.
    workers: ClassVar[int] = 3

    @pytest.fixture
    def factory(self) -> Factory:
        """``factory() -> Scheduler``; override to build your scheduler yourself."""
        if self.scheduler is None:
            pytest.fail("set `scheduler = 'name'` or override the `factory` fixture")
        name, options = self.scheduler, dict(self.options)
        return lambda: build("scheduler", name, **options)

    def _run(self, factory: Factory, **settings: Any) -> SchedulerRun:
        return SchedulerRun(factory(), trials=self.trials, workers=self.workers, **settings)

    def test_every_trial_becomes_final_once(self, factory: Factory) -> None:
        """Also: budgets in range, consecutive trial numbers, failed and infeasible
        trials (the run checks every step)."""
        run = self._run(factory).run()
        assert run.started == list(range(len(run.started)))

    def test_one_worker(self, factory: Factory) -> None:
        run = SchedulerRun(factory(), trials=self.trials, workers=1).run()
        assert run.started == list(range(len(run.started)))

    def test_every_trial_failing(self, factory: Factory) -> None:
        """Failed trials are never continued: every job starts a new trial."""
        run = self._run(factory, fail_every=1, infeasible_every=0).run()
        assert all(event[3] for event in run.events if event[0] == "job")

    def test_same_scores_same_jobs(self, factory: Factory) -> None:
        assert self._run(factory).run().events == self._run(factory).run().events

    def test_non_adaptive_jobs_ignore_scores(self, factory: Factory) -> None:
        scheduler = factory()
        if getattr(scheduler, "adaptive", True):
            pytest.skip("adaptive: the jobs depend on the scores")
        jobs = [e for e in self._run(factory).run().events if e[0] == "job"]
        other = self._run(factory, scores=_other_result).run()
        assert [e for e in other.events if e[0] == "job"] == jobs

    def test_to_dict_rebuilds_it(self, factory: Factory) -> None:
        scheduler = factory()
        data = scheduler.to_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) == data
        name = name_of("scheduler", type(scheduler))
        if name is None:
            pytest.skip(f"{type(scheduler).__name__} is not registered: nothing rebuilds it")
        assert data["name"] == name
        # the registry takes the name positionally: build(kind, name, /, **options)
        rebuilt = build("scheduler", name, **{k: v for k, v in data.items() if k != "name"})
        assert type(rebuilt) is type(scheduler)
        assert rebuilt.to_dict() == data
        assert SchedulerRun(rebuilt, trials=self.trials).run().events == (
            SchedulerRun(factory(), trials=self.trials).run().events
        )

    def test_pickle_mid_run_continues_identically(self, factory: Factory) -> None:
        run = self._run(factory).run(steps=self.trials // 2)
        copy = pickle.loads(pickle.dumps(run))
        assert copy.scheduler.to_dict() == run.scheduler.to_dict()
        assert copy.run().events == run.run().events

    def test_continues_in_another_process(self, factory: Factory) -> None:
        """Pickled mid-run, it hands out the same jobs in a spawned process."""
        run = self._run(factory).run(steps=self.trials // 2)
        there = run_in_subprocess(finish_run, pickle.dumps(run))
        assert there == run.run().events
