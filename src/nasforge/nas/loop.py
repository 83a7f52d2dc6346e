"""The search loop: one loop, written on the public ask/tell of a strategy.

::

    space = nf.build("space", "nb201")
    bench = nf.TabularBenchmark.from_csv("nb201_cifar10.csv", key="arch")
    result = nf.search(space, bench, strategy="local", budget=100, seed=0,
                       objective="val_acc", mode="max")
    result.best.key, result.best.metrics["test_acc"]

The same loop in a notebook is ``arch = strategy.ask(); strategy.tell(arch,
evaluator.evaluate(arch)[objective])``. Internally the loop hands batches of trials to a
runner (``run(trials) -> finished trials``): today a serial one; parallel executors,
journals and schedulers slot in behind the same seam.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nasforge.errors import ConfigError, NasforgeError
from nasforge.nas.evaluator import Evaluator
from nasforge.nas.result import SearchResult, Trial, TrialStatus
from nasforge.registry import build as build_plugin
from nasforge.space.base import Space
from nasforge.strategy.base import Strategy

__all__ = ["search"]

logger = logging.getLogger(__name__)

_MODES = ("max", "min")


class _SerialRunner:
    """Evaluates trials one after another in this process."""

    workers = 1

    def __init__(self, evaluator: Evaluator, objective: str) -> None:
        self.evaluator = evaluator
        self.objective = objective

    def run(self, trials: Sequence[Trial]) -> Iterator[Trial]:
        for trial in trials:
            trial.started = time.time()
            t0 = time.perf_counter()
            try:
                metrics = self.evaluator.evaluate(trial.arch)
            finally:
                trial.duration = time.perf_counter() - t0
            trial.metrics = _check_metrics(metrics, self.objective, trial)
            trial.status = TrialStatus.FINISHED
            yield trial


def search(
    space: Space,
    evaluator: Evaluator,
    *,
    strategy: str | Strategy = "evolution",
    budget: int,
    seed: int = 0,
    objective: str = "val_acc",
    mode: str = "max",
    strategy_options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search ``space`` for ``budget`` trials and return a :class:`SearchResult`.

    ``strategy`` is a registered name (built with ``space``, ``seed`` and
    ``strategy_options``) or a ready :class:`~nasforge.strategy.Strategy` instance (which
    keeps its own seed). Each trial's metrics come from ``evaluator.evaluate(arch)``; the
    strategy is told ``metrics[objective]`` (negated for ``mode="min"``). An exception from
    the evaluator stops the search; Ctrl-C stops it too, marks the running trial
    interrupted and returns what was found so far.
    """
    if not isinstance(space, Space):
        raise ConfigError.invalid("space", type(space).__name__, "a nasforge Space")
    if not callable(getattr(evaluator, "evaluate", None)):
        raise ConfigError.invalid(
            "evaluator",
            type(evaluator).__name__,
            "an object with evaluate(arch, budget=None) -> dict of metrics",
            hint="e.g. nf.TabularBenchmark.from_csv(path, key='arch')",
        )
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError.invalid("budget", budget, "a positive integer (number of trials)")
    if mode not in _MODES:
        raise ConfigError.invalid("mode", mode, "'max' or 'min'")
    if not isinstance(objective, str) or not objective:
        raise ConfigError.invalid("objective", objective, "a metric name such as 'val_acc'")
    strategy = _make_strategy(space, strategy, seed, strategy_options)
    sign = 1.0 if mode == "max" else -1.0
    runner = _SerialRunner(evaluator, objective)
    trials: list[Trial] = []
    bar = _progress_bar(budget, progress, strategy.name)
    start = time.perf_counter()
    best: float | None = None
    try:
        while len(trials) < budget:
            free = min(runner.workers, budget - len(trials))
            batch = [Trial(number=len(trials) + i, arch=strategy.ask()) for i in range(free)]
            trials.extend(batch)
            for trial in runner.run(batch):
                value = trial.metrics[objective]
                strategy.tell(trial.arch, sign * value if math.isfinite(value) else None)
                if math.isfinite(value) and (best is None or sign * value > sign * best):
                    best = value
                    logger.info(
                        "trial %d: new best %s=%.6g (%s)", trial.number, objective, value, trial.key
                    )
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({objective: f"{best:.4g}" if best is not None else "-"})
    except KeyboardInterrupt:
        logger.warning("search interrupted after %d trials", len(trials))
        for trial in trials:
            if trial.status is TrialStatus.RUNNING:
                trial.status = TrialStatus.INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    return SearchResult(
        trials=trials,
        objective=objective,
        mode=mode,
        strategy=strategy.name,
        seed=strategy.seed,
        duration=time.perf_counter() - start,
    )


def _make_strategy(
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


def _check_metrics(metrics: Any, objective: str, trial: Trial) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise ConfigError.invalid(
            "evaluator.evaluate()", type(metrics).__name__, "a dict of metric name -> float"
        )
    if objective not in metrics:
        raise ConfigError.invalid(
            "objective",
            objective,
            f"one of the evaluator's metrics {sorted(metrics)}",
        )
    out = {}
    for name, value in metrics.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            raise ConfigError.invalid(
                f"metrics[{name!r}] of trial {trial.number}", value, "a number"
            ) from None
    return out


def _progress_bar(total: int, enabled: bool, name: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"search ({name})", unit="trial", leave=False)
