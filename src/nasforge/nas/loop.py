"""The search loop: strategy, evaluator, executor, journal, scheduler and constraints.

::

    space = nf.build("space", "nb201")
    bench = nf.TabularBenchmark.from_csv("nb201_cifar10.csv", key="arch")
    result = nf.search(space, bench, strategy="local", budget=100, seed=0,
                       objective="val_acc", mode="max")
    result.best.key, result.best.metrics["test_acc"]

The loop is written on the public ask/tell of a strategy, so the same loop in a notebook is
``arch = strategy.ask(); strategy.tell(arch, evaluator.evaluate(arch)[objective])``.

How it runs: the scheduler hands out jobs ("new trial at budget b", "continue trial n to
budget b"); each job runs on the executor as one task (measure the architecture, check the
constraints that need no training, then train/evaluate); results come back to this one
process, which alone writes the journal, tells the strategy and updates the result.

Determinism: with ``deterministic=True`` (the default) results are delivered in job order
and, when the strategy or scheduler adapts to results, job ``j`` is handed out right after
the result of job ``j - workers`` — so the strategy sees the same results at the same
moments whatever the timing, and the same seed gives the same trials with any executor that
has the same number of workers. A strategy that ignores results (``random``) with no
scheduler proposes the same trials anyway, so free workers are refilled at once. Resuming
from a journal replays that sequence, taking recorded results instead of running them
again.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge._progress import progress_bar
from nasforge.errors import ConfigError, NasforgeError, TooManyFailuresError
from nasforge.execution.base import Executor, TaskResult
from nasforge.nas.callbacks import CallbackList, SearchCallback, SearchInfo
from nasforge.nas.evaluator import Evaluator
from nasforge.nas.journal import Journal
from nasforge.nas.objectives import (
    Constraint,
    Objectives,
    check_metrics,
    parse_constraints,
    violations,
)
from nasforge.nas.result import SearchResult, Trial, TrialStatus
from nasforge.nas.schedulers import FullBudget, Job, Scheduler
from nasforge.registry import available, get
from nasforge.registry import build as build_plugin
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Strategy
from nasforge.validation import check_bool, check_int

__all__ = ["check_setup", "search"]

logger = logging.getLogger(__name__)

#: Infeasible candidates in a row after which the constraints are judged unsatisfiable.
_MAX_CONSECUTIVE_INFEASIBLE = 500


def search(
    space: Space,
    evaluator: Evaluator,
    *,
    strategy: str | Strategy = "evolution",
    budget: int,
    seed: int = 0,
    objective: str | Sequence[str] = "val_acc",
    mode: str | Sequence[str] = "max",
    constraints: str | Sequence[str | Constraint] | None = None,
    scheduler: str | Scheduler | Mapping[str, Any] | None = None,
    executor: str | Executor | Mapping[str, Any] | None = None,
    journal: str | Path | None = None,
    resume: bool = False,
    max_consecutive_failures: int | None = 10,
    deterministic: bool = True,
    test: bool = True,
    strategy_options: Mapping[str, Any] | None = None,
    warm_start: Iterable[Arch | str] | None = None,
    progress: bool | None = None,
    callbacks: Sequence[SearchCallback] | None = None,
) -> SearchResult:
    """Search ``space`` until ``budget`` trials are done; return a :class:`SearchResult`.

    ``strategy``: a registered name (built with ``space``, ``seed``, ``strategy_options``)
    or a Strategy. ``objective``/``mode``: a metric and ``"max"``/``"min"``, or lists of
    them (the strategy is then told tuples; see ``nsga2``). ``constraints``: e.g.
    ``["params <= 100_000"]``; those on ``params``, ``macs``/``flops``, ``latency_ms`` are
    checked before training, and a candidate breaking one is infeasible and not counted.
    ``scheduler``: None (full budget), ``{"name": "hyperband", "min_budget": 1,
    "max_budget": 9}`` or a Scheduler. ``executor``: None, ``"process"``, ``"ray"``,
    ``{"name": ..., **options}`` or an Executor. ``journal``: a crash-safe record;
    ``resume=True`` continues it. A trial that fails is recorded and the search goes on,
    until ``max_consecutive_failures`` in a row (None: never). ``deterministic``: the same
    trials whatever the timing. ``test``: add the evaluator's test metrics to the best
    trial(s). ``warm_start``: archs the strategy begins with (:meth:`Strategy.warm_start`),
    e.g. the best of a pool ranked by a zero-cost proxy. ``progress``: a bar (None: when
    standard error is a terminal). ``callbacks``: search callbacks, e.g.
    ``[nf.TensorBoardTracker("runs")]``; one that raises is warned about, the search goes
    on (docs/trackers.md). Ctrl-C marks running trials interrupted and returns what was
    found. docs/search.md has the details.
    """
    _check_arguments(space, evaluator, budget, max_consecutive_failures, resume, journal)
    check_bool(deterministic, "deterministic")
    check_bool(test, "test")
    run = _Search(
        space=space,
        evaluator=evaluator,
        strategy=_make_strategy(space, strategy, seed, strategy_options, warm_start),
        scheduler=_make_plugin("scheduler", scheduler, Scheduler, FullBudget),
        budget=budget,
        objectives=Objectives.parse(objective, mode),
        constraints=parse_constraints(constraints),
        max_consecutive_failures=max_consecutive_failures,
        deterministic=deterministic,
        callbacks=CallbackList(callbacks),
    )
    run.check()
    return _complete(run, test, executor, journal, resume, progress, dict(strategy_options or {}))


def _complete(run: _Search, test: bool, *arguments: Any) -> SearchResult:
    """Run the search (``arguments`` go to :meth:`_Search.run`) and test its best trial(s);
    the callbacks' ``on_search_end`` follows however it ends."""
    try:
        run.run(*arguments)
        result = run.result()
        if test and not run.interrupted:
            _add_test_metrics(run.evaluator, result)
    except BaseException as exc:
        run.callbacks.end(run.result(), exc)
        raise
    run.callbacks.end(result, None)
    return result


def _check_arguments(
    space: Any,
    evaluator: Any,
    budget: Any,
    max_consecutive_failures: Any,
    resume: Any,
    journal: Any,
) -> None:
    if not isinstance(space, Space):
        raise ConfigError.invalid("space", type(space).__name__, "a nasforge Space")
    if not callable(getattr(evaluator, "evaluate", None)):
        raise ConfigError.invalid(
            "evaluator",
            type(evaluator).__name__,
            "an object with evaluate(arch, budget=None) -> dict of metrics",
            hint="e.g. nf.TabularBenchmark.from_csv(path, key='arch')",
        )
    check_int(budget, "budget", low=1, hint="the number of trials")
    check_int(max_consecutive_failures, "max_consecutive_failures", low=1, optional=True)
    check_bool(resume, "resume")
    if journal is not None and not isinstance(journal, str | os.PathLike):
        raise ConfigError.invalid("journal", journal, "a file path or None")
    if resume and journal is None:
        raise ConfigError.invalid("resume", resume, "False when no journal is given")


def check_setup(
    *,
    strategy: Strategy,
    scheduler: Scheduler,
    objectives: Objectives,
    constraints: Sequence[Constraint],
    metrics: Collection[str] | None = None,
    epochs: int | None = None,
) -> None:
    """The checks a search makes before it runs anything (also made by ``nasforge search``
    before it loads data): the objectives and constraints name metrics the evaluator
    returns (``metrics``, when known), a multi-objective search has a multi-objective
    strategy, and the scheduler's largest budget is at most the evaluator's ``epochs``."""
    check_metrics(metrics, objectives, constraints)
    if objectives.multi and not strategy.multi_objective:
        accepting = [n for n in available("strategy") if get("strategy", n).multi_objective]
        raise ConfigError.invalid(
            "strategy",
            strategy.name,
            f"a multi-objective strategy ({', '.join(accepting)}) for {len(objectives.names)} "
            "objectives",
            hint="use strategy='nsga2', or search one objective and constrain the others",
        )
    top = getattr(scheduler, "max_budget", None)
    if top is not None and isinstance(epochs, int) and top > epochs:
        raise ConfigError.invalid(
            "scheduler.max_budget",
            top,
            f"at most the evaluator's epochs ({epochs})",
            hint="the evaluator's epochs is the longest a trial trains",
        )


@dataclass
class _Outcome:
    """What one job produced: its metrics, an error, or the constraints it breaks; or, for
    a result read back from a journal, the recorded status and error."""

    metrics: dict[str, float]
    error: str | None = None
    broken: list[str] | None = None
    duration: float = 0.0
    recorded: TrialStatus | None = None


class _Search:
    """The state of one search run; see the module docstring for the order of events."""

    def __init__(
        self,
        *,
        space: Space,
        evaluator: Evaluator,
        strategy: Strategy,
        scheduler: Scheduler,
        budget: int,
        objectives: Objectives,
        constraints: tuple[Constraint, ...],
        max_consecutive_failures: int | None,
        deterministic: bool,
        callbacks: CallbackList | None = None,
    ) -> None:
        self.space = space
        self.callbacks = callbacks if callbacks is not None else CallbackList(None)
        self.replayed: set[int] = set()  # trials whose last result came from the journal
        self.evaluator = evaluator
        self.strategy = strategy
        self.scheduler = scheduler
        self.budget = budget
        self.objectives = objectives
        self.constraints = constraints
        measurable = callable(getattr(evaluator, "measure", None))
        self.cheap = tuple(c for c in constraints if c.cheap) if measurable else ()
        self.max_failures = max_consecutive_failures
        self.deterministic = deterministic
        self.trials: dict[int, Trial] = {}
        self.scores: dict[int, Any] = {}
        self.jobs: list[Job] = []
        self.results: dict[int, _Outcome] = {}  # finished jobs not yet delivered, by job index
        self.delivered = 0  # jobs delivered (in order when deterministic)
        self.live_jobs: set[int] = set()  # job indices running on the executor
        self.recorded: dict[tuple[int, float | None], dict[str, Any]] = {}
        self.recorded_archs: dict[int, Arch] = {}
        self.counted = 0  # trials that are not infeasible: what `budget` counts
        self.failures = 0  # consecutive
        self.infeasible_run = 0  # consecutive
        self.closed = False
        self.interrupted = False
        self.started = time.perf_counter()
        self.bar: Any = None
        self.best: float | None = None

    def check(self) -> None:
        """Refuse a setup that cannot work before anything runs (see :func:`check_setup`)."""
        check_setup(
            strategy=self.strategy,
            scheduler=self.scheduler,
            objectives=self.objectives,
            constraints=self.constraints,
            metrics=getattr(self.evaluator, "metrics", None),
            epochs=getattr(self.evaluator, "epochs", None),
        )
        retrains = getattr(self.evaluator, "continues_trials", True) is False
        if self.scheduler.adaptive and retrains:
            logger.warning(
                "the %s scheduler promotes trials to larger budgets, but the evaluator "
                "retrains them from scratch; give TrainEvaluator a checkpoint_dir to continue "
                "them",
                self.scheduler.name,
            )

    def identity(self, strategy_options: dict[str, Any]) -> dict[str, Any]:
        """What identifies this search in its journal (resuming another one is refused)."""
        identity = {
            "space": self.space.to_dict(),
            **self.objectives.to_dict(),
            "constraints": [str(c) for c in self.constraints],
            "strategy": self.strategy.name,
            "strategy_options": strategy_options,
            "seed": self.strategy.seed,
            "scheduler": self.scheduler.to_dict(),
        }
        if callable(getattr(self.evaluator, "identity", None)):
            identity["evaluator"] = self.evaluator.identity()
        return identity

    def run(
        self,
        executor: Any,
        journal: str | os.PathLike[str] | None,
        resume: bool,
        progress: bool | None,
        strategy_options: dict[str, Any],
    ) -> None:
        """Open the journal (taking its recorded results when resuming), make the executor,
        run the loop, and close both whatever happens."""
        identity = self.identity(strategy_options)
        log = Journal(journal, identity, resume=resume) if journal is not None else None
        try:
            if log is not None:
                self.load(log)
            workers = _make_plugin("executor", executor, Executor, None)
            try:
                self.callbacks.begin(self.info(identity, journal, resume))
                self.execute(workers, log, progress)
            finally:
                workers.shutdown()
        finally:
            if log is not None:
                log.close()

    def info(
        self, identity: dict[str, Any], journal: str | os.PathLike[str] | None, resume: bool
    ) -> SearchInfo:
        """What the search callbacks are told when the search begins."""
        return SearchInfo(
            space=self.space,
            evaluator=self.evaluator,
            strategy=self.strategy.name,
            objectives=self.objectives.names,
            modes=self.objectives.modes,
            budget=self.budget,
            seed=self.strategy.seed,
            constraints=tuple(identity["constraints"]),
            scheduler=identity["scheduler"],
            strategy_options=identity["strategy_options"],
            journal=None if journal is None else Path(journal).resolve(),
            resumed=resume,
        )

    # --- resume ----------------------------------------------------------------------------
    def load(self, journal: Journal) -> None:
        """Take the recorded results of a resumed journal; mark unfinished jobs interrupted."""
        contents = journal.contents
        for r in contents.records:
            self.recorded_archs[r["number"]] = self.space.arch(r["arch"])
            if r["type"] == "end" and r["status"] != TrialStatus.INTERRUPTED.value:
                self.recorded[(r["number"], _budget_key(r.get("budget")))] = r
        for r in contents.unfinished:
            journal.ended({**r, "status": TrialStatus.INTERRUPTED.value})
            logger.warning(
                "trial %d was running when the search stopped; it will run again", r["number"]
            )
        if self.recorded:
            logger.info("resuming: %d recorded results", len(self.recorded))

    # --- the loop --------------------------------------------------------------------------
    def execute(self, executor: Executor, journal: Journal | None, progress: bool | None) -> None:
        self.executor = executor
        self.journal = journal
        # One task function holding the evaluator: executors that ship functions to workers
        # once (Ray's object store) then do not send the evaluator and its data every trial.
        self.task = functools.partial(_run_job, self.evaluator)
        self.bar = progress_bar(
            progress, total=self.budget, desc=f"search ({self.strategy.name})", unit="trial"
        )
        try:
            while True:
                while self._free_slots() > 0:
                    job = self._next_job()
                    if job is None:
                        break
                    self._issue(job)
                if not self.live_jobs and not self.results:
                    if self._close():
                        continue
                    break
                ready = self._deliverable()
                if ready is None:
                    self._collect()
                else:
                    self._deliver(ready)
        except KeyboardInterrupt:
            self.interrupted = True
            logger.warning("search interrupted after %d trials", len(self.trials))
            for trial in self.trials.values():
                if trial.status is TrialStatus.RUNNING:
                    trial.status = TrialStatus.INTERRUPTED
                    if journal is not None:
                        journal.ended(trial.to_dict())
        finally:
            self.bar.close()

    def _free_slots(self) -> int:
        """How many jobs may start now.

        Deterministic with an adaptive strategy or scheduler: job ``j`` starts only once the
        result of job ``j - workers`` is delivered, so proposals see the same results
        whatever the timing. Otherwise a job starts whenever a worker is free.
        """
        workers = self.executor.workers
        if self.deterministic and (self.strategy.adaptive or self.scheduler.adaptive):
            return workers - (len(self.jobs) - self.delivered)
        return workers - len(self.live_jobs)

    def _deliverable(self) -> int | None:
        """The job whose result is delivered next: the next in order when deterministic,
        else the earliest finished one; None when it has not come back yet."""
        if self.deterministic:
            return self.delivered if self.delivered in self.results else None
        return min(self.results) if self.results else None

    def _next_job(self) -> Job | None:
        can_start = self.counted < self.budget and not self.closed
        return self.scheduler.next_job(len(self.trials) if can_start else None)

    def _close(self) -> bool:
        """At the budget, tell the scheduler no new trials come; True if that freed jobs."""
        if self.closed or self.counted < self.budget:
            return False
        self.closed = True
        self._tell(self.scheduler.close())
        return True

    def _issue(self, job: Job) -> None:
        index = len(self.jobs)
        self.jobs.append(job)
        if job.new:
            arch = self.strategy.ask()
            recorded = self.recorded_archs.get(job.trial)
            if recorded is not None and recorded != arch:
                logger.debug("trial %d: the journal's arch replaces %s", job.trial, arch.key)
                arch = recorded
            self.trials[job.trial] = Trial(number=job.trial, arch=arch)
            self.counted += 1
        trial = self.trials[job.trial]
        trial.status = TrialStatus.RUNNING
        trial.budget = job.budget
        record = self.recorded.get((job.trial, _budget_key(job.budget)))
        if record is not None:
            trial.started = trial.started or record.get("started", 0.0)
            self.results[index] = _Outcome(
                metrics={k: _float(v) for k, v in (record.get("metrics") or {}).items()},
                error=record.get("error"),
                duration=record.get("duration", 0.0) - trial.duration,
                recorded=TrialStatus(record["status"]),
            )
            return
        trial.started = trial.started or time.time()
        if self.journal is not None:
            self.journal.started(trial.to_dict())
        cheap = self.cheap if job.new else ()
        self.executor.submit(index, self.task, trial.arch, job.budget, cheap)
        self.live_jobs.add(index)

    def _collect(self) -> None:
        for task in self.executor.wait():
            self.live_jobs.discard(task.task_id)
            self.results[task.task_id] = _outcome(task)

    def _deliver(self, index: int) -> None:
        outcome = self.results.pop(index)
        self.delivered += 1
        job = self.jobs[index]
        trial = self.trials[job.trial]
        live = (job.trial, _budget_key(job.budget)) not in self.recorded
        if live:
            self.replayed.discard(trial.number)
        else:
            self.replayed.add(trial.number)
        trial.duration += outcome.duration
        score = self._settle(trial, outcome)
        if live and self.journal is not None:
            self.journal.ended(trial.to_dict())
        infeasible = trial.status is TrialStatus.INFEASIBLE
        if infeasible:
            self.counted -= 1
        self.scores[trial.number] = score
        self._tell(self.scheduler.report(trial.number, score, infeasible=infeasible))
        self._check_failures(trial)

    def _settle(self, trial: Trial, outcome: _Outcome) -> Any:
        """Set the trial's status and metrics from ``outcome``; return its score."""
        trial.metrics = dict(outcome.metrics)
        trial.error = outcome.error
        if outcome.recorded is not None:
            trial.status = outcome.recorded
            finished = outcome.recorded is TrialStatus.FINISHED
            return self.objectives.score(trial.metrics) if finished else None
        if outcome.error is not None:
            trial.status = TrialStatus.FAILED
            return None
        broken = outcome.broken
        if broken is None:
            missing = self.objectives.missing(trial.metrics) + [
                c.metric for c in self.constraints if c.holds(trial.metrics) is None
            ]
            if missing:
                raise ConfigError.invalid(
                    "objective" if missing[0] in self.objectives.names else "constraints",
                    missing[0],
                    f"one of the evaluator's metrics {sorted(trial.metrics)}",
                )
            broken = violations(self.constraints, trial.metrics)
        if broken:
            trial.status = TrialStatus.INFEASIBLE
            trial.error = "violates " + ", ".join(broken)
            return None
        score = self.objectives.score(trial.metrics)
        if score is None:
            trial.status = TrialStatus.FAILED
            bad = {n: trial.metrics[n] for n in self.objectives.names}
            trial.error = f"the objective is not a finite number: {bad}"
            return None
        trial.status = TrialStatus.FINISHED
        return score

    def _tell(self, final: list[int]) -> None:
        for number in final:
            trial = self.trials[number]
            score = self.scores.get(number)
            self.strategy.tell(trial.arch, score)
            self.callbacks.trial_end(trial, trial.number in self.replayed)
            if trial.status is TrialStatus.INFEASIBLE:
                continue
            self._log_best(trial, score)
            self.bar.update(1)
            shown = "-" if self.best is None else f"{self.best:.4g}"
            self.bar.set_postfix({self.objectives.names[0]: shown})

    def _log_best(self, trial: Trial, score: Any) -> None:
        if score is None or self.objectives.multi:
            return
        if self.best is None or score > self.best:
            self.best = score
            name = self.objectives.names[0]
            logger.info(
                "trial %d: new best %s=%.6g (%s)",
                trial.number,
                name,
                trial.metrics[name],
                trial.key,
            )

    def _check_failures(self, trial: Trial) -> None:
        if trial.status is TrialStatus.INFEASIBLE:
            self.infeasible_run += 1
            if self.infeasible_run >= _MAX_CONSECUTIVE_INFEASIBLE:
                raise ConfigError.invalid(
                    "constraints",
                    [str(c) for c in self.constraints],
                    "constraints that some architecture of the space satisfies",
                    hint=f"{self.infeasible_run} candidates in a row broke them; loosen them",
                )
            return
        self.infeasible_run = 0
        if trial.status is not TrialStatus.FAILED:
            self.failures = 0
            return
        self.failures += 1
        logger.warning("trial %d failed: %s", trial.number, _last_line(trial.error))
        if self.max_failures is not None and self.failures >= self.max_failures:
            raise TooManyFailuresError(
                f"{self.failures} trials failed in a row; the last one (trial {trial.number}, "
                f"{trial.key}) with: {_last_line(trial.error)}. HINT: see each trial's error "
                "in the result or journal; raise max_consecutive_failures to go on anyway",
                result=self.result(),
            )

    def result(self) -> SearchResult:
        return SearchResult(
            trials=[self.trials[n] for n in sorted(self.trials)],
            objective=self.objectives.names[0],
            mode=self.objectives.modes[0],
            objectives=self.objectives.names,
            modes=self.objectives.modes,
            strategy=self.strategy.name,
            seed=self.strategy.seed,
            duration=time.perf_counter() - self.started,
            space=self.space,
            evaluator=self.evaluator,
        )


def _run_job(
    evaluator: Any, arch: Arch, budget: float | None, cheap: tuple[Constraint, ...]
) -> dict[str, Any]:
    """One job, as it runs on a worker: the cheap constraint check, then the evaluation."""
    if cheap:
        measured = dict(evaluator.measure(arch))
        broken = violations(cheap, measured)
        if broken:
            return {"metrics": measured, "broken": broken}
    metrics = evaluator.evaluate(arch) if budget is None else evaluator.evaluate(arch, budget)
    return {"metrics": metrics}


def _outcome(task: TaskResult) -> _Outcome:
    if not task.ok:
        error = f"{task.failure.value}: {task.error}" if task.failure else str(task.error)
        return _Outcome(metrics={}, error=error, duration=task.duration)
    value = task.value
    metrics = value["metrics"]
    if not isinstance(metrics, Mapping):
        raise ConfigError.invalid(
            "evaluator.evaluate()", type(metrics).__name__, "a dict of metric name -> float"
        )
    clean: dict[str, float] = {}
    for name, number in metrics.items():
        try:
            clean[str(name)] = float(number)
        except (TypeError, ValueError):
            raise ConfigError.invalid(
                f"metrics[{name!r}]", number, "a number", hint="evaluate() must return floats"
            ) from None
    return _Outcome(metrics=clean, broken=value.get("broken"), duration=task.duration)


def _add_test_metrics(evaluator: Any, result: SearchResult) -> None:
    """Add ``evaluator.test`` metrics to the best trial (every Pareto-optimal one with
    several objectives), when the evaluator has test data."""
    if not callable(getattr(evaluator, "test", None)):
        return
    if not getattr(evaluator, "has_test", True):
        logger.info("the evaluator has no test data: no test metrics for the chosen trials")
        return
    chosen = result.pareto_front() if len(result.objectives) > 1 else [result.best]
    for trial in chosen:
        if trial is not None:
            trial.metrics.update({k: float(v) for k, v in evaluator.test(trial.arch).items()})


def _make_strategy(
    space: Space,
    strategy: str | Strategy,
    seed: int,
    options: Mapping[str, Any] | None,
    warm_start: Iterable[Arch | str] | None = None,
) -> Strategy:
    built = _build_strategy(space, strategy, seed, options)
    if warm_start is not None:
        built.warm_start(warm_start)
    return built


def _build_strategy(
    space: Space, strategy: str | Strategy, seed: int, options: Mapping[str, Any] | None
) -> Strategy:
    if isinstance(strategy, Strategy):
        if options:
            raise ConfigError.invalid(
                "strategy_options",
                dict(options),
                "None when strategy is an instance",
                hint="pass the options to the strategy's constructor instead",
            )
        if strategy.space is not space and strategy.space != space:
            raise ConfigError.invalid("strategy", strategy, "a strategy built on the same space")
        return strategy
    if not isinstance(strategy, str):
        raise ConfigError.invalid(
            "strategy", strategy, "a registered strategy name or a Strategy instance"
        )
    built = build_plugin("strategy", strategy, space=space, seed=seed, **dict(options or {}))
    if not isinstance(built, Strategy):
        raise NasforgeError(f"strategy {strategy!r} did not build a Strategy (got {built!r})")
    return built


def _make_plugin(kind: str, spec: Any, base: type, default: type | None) -> Any:
    """A plugin from None (the default), a name, ``{"name": ..., **options}`` or an instance."""
    if isinstance(spec, base):
        return spec
    if spec is None:
        return default() if default is not None else build_plugin(kind, "serial")
    if isinstance(spec, str):
        return build_plugin(kind, spec)
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        options = {k: v for k, v in spec.items() if k != "name"}
        return build_plugin(kind, spec["name"], **options)
    raise ConfigError.invalid(
        kind,
        spec,
        f"a registered {kind} name, a mapping {{'name': ..., **options}} or a {base.__name__}",
    )


def _float(value: Any) -> float:
    """A metric read back from JSON, where NaN and infinities were stored as null."""
    return math.nan if value is None else float(value)


def _budget_key(budget: Any) -> float | None:
    return None if budget is None else float(budget)


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""
