"""The search loop's machinery: failures, constraints, schedulers, executors, journal."""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

import nasforge as nf
from nasforge.errors import JournalError
from nasforge.execution import Executor, Failure, TaskResult
from nasforge.nas import TrialStatus
from nasforge.nas.journal import read_journal
from nasforge.space import Choice, IntRange, Space


def toy_space() -> Space:
    return Space([Choice("op", ["a", "b", "c"]), IntRange("n", 1, 4)], name="toy")


class Toy:
    """Accuracy that grows with the budget (epochs); records every call."""

    def __init__(self, *, fail_op: str | None = None, nan_op: str | None = None) -> None:
        self.calls: list[tuple[str, float | None]] = []
        self.measured: list[str] = []
        self.fail_op = fail_op
        self.nan_op = nan_op

    def evaluate(self, arch, budget=None):
        self.calls.append((arch.key, budget))
        if arch["op"] == self.fail_op:
            raise RuntimeError(f"cannot train {arch.key}")
        if arch["op"] == self.nan_op:
            return {"acc": math.nan, "params": 1.0}
        base = {"a": 0.5, "b": 0.7, "c": 0.6}[arch["op"]] + 0.05 * arch["n"]
        epochs = 9 if budget is None else budget
        return {"acc": base * (1 - 0.5**epochs), "params": 100.0 * arch["n"]}

    def measure(self, arch):
        self.measured.append(arch.key)
        return {"params": 100.0 * arch["n"]}


def run(evaluator, **options):
    options = {"budget": 8, "objective": "acc", "progress": False, "strategy": "random", **options}
    return nf.search(toy_space(), evaluator, **options)


def test_failed_trials_are_recorded_and_the_search_goes_on():
    result = run(Toy(fail_op="a"), budget=12, seed=1)
    failed = [t for t in result.trials if t.status is TrialStatus.FAILED]
    assert failed and all(t.arch["op"] == "a" for t in failed)
    assert all("cannot train" in t.error for t in failed)
    assert len(result.trials) == 12 and result.best.arch["op"] != "a"


def test_nan_objective_is_a_failed_trial():
    result = run(Toy(nan_op="b"), budget=12, seed=1)
    nan = [t for t in result.trials if t.arch["op"] == "b"]
    assert nan and all(t.status is TrialStatus.FAILED for t in nan)
    assert "not a finite number" in nan[0].error


def test_serial_timeout_fails_the_trial_only():
    class Slow(Toy):
        def evaluate(self, arch, budget=None):
            if arch["op"] == "a":
                time.sleep(5)
            return super().evaluate(arch, budget)

    result = run(Slow(), budget=12, seed=1, executor={"name": "serial", "timeout": 0.2})
    slow = [t for t in result.trials if t.arch["op"] == "a"]
    assert slow and all(t.status is TrialStatus.FAILED for t in slow)
    assert "timeout" in slow[0].error
    assert any(t.finished for t in result.trials)


def test_cheap_constraints_are_checked_before_training():
    toy = Toy()
    result = run(toy, budget=6, seed=2, constraints=["params <= 200"])
    infeasible = [t for t in result.trials if t.status is TrialStatus.INFEASIBLE]
    assert infeasible, "seed 2 samples archs with n > 2"
    assert all(t.arch["n"] > 2 and "violates params <= 200" in t.error for t in infeasible)
    assert all(int(key.split("n=")[1]) <= 2 for key, _ in toy.calls)  # never trained
    assert sum(t.finished for t in result.trials) == 6  # infeasible ones do not count


def test_constraints_without_measure_are_checked_on_the_metrics():
    class NoMeasure(Toy):
        measure = None

    result = run(NoMeasure(), budget=12, seed=2, constraints=[("params", "<", 150)])
    statuses = {t.arch["n"]: t.status for t in result.trials}
    assert statuses.get(1, TrialStatus.FINISHED) is TrialStatus.FINISHED
    assert all(s is TrialStatus.INFEASIBLE for n, s in statuses.items() if n > 1)


def test_unknown_objective_or_constraint_metric_is_a_config_error():
    with pytest.raises(nf.ConfigError, match=r"constraints must be one of the evaluator's"):
        run(Toy(), constraints="latencyms <= 5")
    with pytest.raises(nf.ConfigError, match=r"objective must be one of the evaluator's"):
        run(Toy(), objective="accuracy")
    with pytest.raises(nf.ConfigError, match="constraints"):
        run(Toy(), constraints="params = 5")
    with pytest.raises(nf.ConfigError, match="mode"):
        run(Toy(), objective=["acc", "params"], mode=["max"])


def test_successive_halving_promotes_the_best_third():
    toy = Toy()
    scheduler = {"name": "successive_halving", "min_budget": 1, "max_budget": 9}
    result = run(toy, budget=9, seed=0, scheduler=scheduler)
    budgets = [b for _, b in toy.calls]
    assert sorted(budgets) == [1] * 9 + [3] * 3 + [9]
    at_one = {k: v for k, v in [(t.key, t) for t in result.trials]}
    promoted = [k for k, b in toy.calls if b == 3]
    ranked = sorted(at_one, key=lambda k: -Toy().evaluate(toy_space().from_key(k), 1)["acc"])
    assert sorted(promoted) == sorted(ranked[:3])
    assert result.best.budget == 9 and result.best.key == next(k for k, b in toy.calls if b == 9)


def test_hyperband_runs_its_brackets_in_turn():
    toy = Toy()
    scheduler = nf.Hyperband(min_budget=1, max_budget=9, eta=3)
    assert [scheduler.bracket(s) for s in (2, 1, 0)] == [(9, [1, 3, 9]), (5, [3, 9]), (3, [9])]
    result = run(toy, budget=17, seed=0, scheduler=scheduler, strategy="grid")
    assert len(result.trials) == 17
    epochs = sum(b for _, b in toy.calls)
    # bracket 2: 9x1 + 3x3 + 1x9; bracket 1: 5x3 + 1x9; bracket 0: 3x9 (not continued)
    assert epochs == (9 + 9 + 9) + (15 + 9) + 27


@pytest.mark.parametrize("min_budget", [1.1e-308, 1e-12])
def test_brackets_refuse_absurdly_many_halvings(min_budget):
    with pytest.raises(nf.ConfigError, match=r"scheduler\.min_budget.*at most 30 halvings"):
        nf.Hyperband(min_budget=min_budget, max_budget=2, eta=2)
    assert nf.SuccessiveHalving(min_budget=2**-29, max_budget=2, eta=2).s_max == 30


def test_process_executor_gives_the_serial_results():
    serial = run(Toy(), budget=8, seed=5)
    parallel = run(Toy(), budget=8, seed=5, executor={"name": "process", "workers": 2})
    assert [(t.key, t.metrics) for t in parallel.trials] == [
        (t.key, t.metrics) for t in serial.trials
    ]


def test_deterministic_with_workers_even_for_evolution():
    def once():
        return run(
            Toy(),
            budget=10,
            seed=3,
            strategy="evolution",
            strategy_options={"population_size": 4, "sample_size": 2},
            executor={"name": "process", "workers": 2},
        )

    assert [t.key for t in once().trials] == [t.key for t in once().trials]


def test_crashed_worker_fails_its_trial():
    class Crashing(Toy):
        def evaluate(self, arch, budget=None):
            if arch["op"] == "a":
                os._exit(3)
            return super().evaluate(arch, budget)

    result = run(Crashing(), budget=10, seed=1, executor={"name": "process", "workers": 2})
    crashed = [t for t in result.trials if t.arch["op"] == "a"]
    assert crashed and all("exited with code 3" in t.error for t in crashed)


class Interrupting(Toy):
    """Raises KeyboardInterrupt (as Ctrl-C would) on its ``stop_at``-th call."""

    def __init__(self, stop_at: int) -> None:
        super().__init__()
        self.stop_at = stop_at

    def evaluate(self, arch, budget=None):
        if len(self.calls) + 1 == self.stop_at:
            self.calls.append((arch.key, budget))
            raise KeyboardInterrupt
        return super().evaluate(arch, budget)


def test_resume_runs_only_what_is_missing_and_matches_an_uninterrupted_run(tmp_path):
    path = tmp_path / "search.jsonl"
    options = {"budget": 10, "seed": 4, "strategy": "evolution", "journal": path}
    options["strategy_options"] = {"population_size": 4, "sample_size": 2}
    first = run(Interrupting(stop_at=6), **options)
    assert [t.status for t in first.trials][-1] is TrialStatus.INTERRUPTED
    assert sum(t.finished for t in first.trials) == 5

    toy = Toy()
    resumed = run(toy, resume=True, **options)
    assert len(toy.calls) == 5  # the interrupted trial again, and four new ones
    assert sum(t.finished for t in resumed.trials) == 10
    full = run(Toy(), **{**options, "journal": tmp_path / "other.jsonl"})
    assert [(t.key, t.metrics) for t in resumed.trials] == [(t.key, t.metrics) for t in full.trials]
    contents = read_journal(path)
    finished = [r["number"] for r in contents.records if r.get("status") == "finished"]
    assert sorted(finished) == list(range(10))  # none finished twice
    statuses = [r["status"] for r in contents.records if r["type"] == "end"]
    assert statuses.count("interrupted") == 1


def test_resume_with_a_scheduler(tmp_path):
    path = tmp_path / "hb.jsonl"
    scheduler = {"name": "hyperband", "min_budget": 1, "max_budget": 9}
    options = {"budget": 17, "seed": 0, "scheduler": scheduler, "journal": path}
    run(Interrupting(stop_at=12), **options)
    toy = Toy()
    resumed = run(toy, resume=True, **options)
    full_toy = Toy()
    full = run(full_toy, **{**options, "journal": tmp_path / "other.jsonl"})
    assert len(toy.calls) == len(full_toy.calls) - 11
    assert [(t.key, t.budget, t.metrics) for t in resumed.trials] == [
        (t.key, t.budget, t.metrics) for t in full.trials
    ]


def test_resume_refuses_another_search_and_existing_journals(tmp_path):
    path = tmp_path / "search.jsonl"
    run(Toy(), budget=3, journal=path)
    with pytest.raises(JournalError, match=r"already exists.*resume=True"):
        run(Toy(), budget=3, journal=path)
    with pytest.raises(JournalError, match=r"different search.*objective"):
        run(Toy(), budget=3, journal=path, resume=True, objective="params", mode="min")
    other = Space([Choice("op", ["a", "b"]), IntRange("n", 1, 4)], name="toy")
    with pytest.raises(JournalError, match="space"):
        nf.search(other, Toy(), budget=3, objective="acc", journal=path, resume=True)
    with pytest.raises(nf.ConfigError, match="resume"):
        run(Toy(), resume=True)


def test_journal_reads_with_pandas(tmp_path):
    pandas = pytest.importorskip("pandas")
    path = tmp_path / "search.jsonl"
    run(Toy(fail_op="a"), budget=6, seed=1, journal=path)
    frame = pandas.read_json(path, lines=True)
    ends = frame[frame["type"] == "end"]
    assert len(ends) == 6 and set(ends["status"]) <= {"finished", "failed"}
    assert json.loads(path.read_text().splitlines()[0])["type"] == "header"


def _multi_objective_search():
    return run(
        Toy(),
        budget=12,
        seed=0,
        strategy="nsga2",
        strategy_options={"population_size": 4},
        objective=["acc", "params"],
        mode=["max", "min"],
    )


def test_multi_objective_search_returns_a_pareto_front():
    result = _multi_objective_search()
    front = result.pareto_front()
    assert front and result.objectives == ("acc", "params")
    for t in front:  # nothing finished beats a front member on both objectives
        assert not any(
            o.metrics["acc"] >= t.metrics["acc"]
            and o.metrics["params"] <= t.metrics["params"]
            and (o.metrics["acc"], o.metrics["params"]) != (t.metrics["acc"], t.metrics["params"])
            for o in result.finished
        )
    best_params = min(t.metrics["params"] for t in result.finished)
    assert any(t.metrics["params"] == best_params for t in front)
    volume = result.hypervolume([0.0, 1000.0])
    assert volume > 0 and volume >= max(
        t.metrics["acc"] * (1000 - t.metrics["params"]) for t in front
    )


def test_pareto_plot_shows_both_objectives():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    result = _multi_objective_search()
    ax = result.plot_pareto()
    assert ax.get_xlabel() == "acc" and ax.get_ylabel() == "params"
    (scatter,) = ax.collections  # every finished trial...
    finished = {(t.metrics["acc"], t.metrics["params"]) for t in result.finished}
    assert {tuple(p) for p in np.asarray(scatter.get_offsets()).tolist()} == finished
    (line,) = ax.lines  # ...and the front as a line, by the first objective
    front = sorted((t.metrics["acc"], t.metrics["params"]) for t in result.pareto_front())
    assert list(zip(line.get_xdata(), line.get_ydata(), strict=True)) == front
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_single_objective_strategies_refuse_several_objectives():
    toy = Toy()
    with pytest.raises(
        nf.ConfigError, match=r"multi-objective strategy \(bayesian, grid, nsga2, random\)"
    ):
        run(toy, strategy="evolution", objective=["acc", "params"], mode=["max", "min"])
    assert toy.calls == []


def test_test_metrics_are_added_to_the_chosen_trials_only():
    class WithTest(Toy):
        def test(self, arch):
            return {"test_acc": 0.5}

    result = run(WithTest(), budget=6, seed=0)
    assert [t for t in result.trials if "test_acc" in t.metrics] == [result.best]


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_gives_the_serial_results():
    pytest.importorskip("ray")
    serial = run(Toy(), budget=6, seed=5)
    tests_dir = os.path.dirname(os.path.abspath(__file__))  # Ray workers import Toy
    executor = {
        "name": "ray",
        "workers": 2,
        "init_options": {"runtime_env": {"env_vars": {"PYTHONPATH": tests_dir}}},
    }
    on_ray = run(Toy(), budget=6, seed=5, executor=executor)
    assert [(t.key, t.metrics) for t in on_ray.trials] == [
        (t.key, t.metrics) for t in serial.trials
    ]


def test_hyperband_ranks_multi_objective_trials_by_pareto_rank():
    toy = Toy()
    scheduler = {"name": "successive_halving", "min_budget": 1, "max_budget": 3}
    result = run(
        toy,
        budget=6,
        seed=0,
        strategy="nsga2",
        objective=["acc", "params"],
        mode=["max", "min"],
        scheduler=scheduler,
    )
    promoted = {k for k, b in toy.calls if b == 3}
    assert len(promoted) == 2 and len(result.trials) == 6
    for bracket in (result.trials[:3], result.trials[3:]):  # 3 trials at 1 epoch, 1 goes on
        points = {t.key: (Toy().evaluate(t.arch, 1)["acc"], -t.metrics["params"]) for t in bracket}
        (chosen,) = promoted & set(points)
        assert not any(
            q[0] >= points[chosen][0] and q[1] >= points[chosen][1] and q != points[chosen]
            for q in points.values()
        )  # nothing in its bracket dominates the promoted trial


def test_bayesian_learns_to_avoid_infeasible_regions():
    space = nf.build("space", "mlp")

    class Sized:
        def params(self, arch):
            dims = [64, *(arch[f"width_{i}"] for i in range(1, arch["depth"] + 1)), 10]
            return float(sum(a * b + b for a, b in itertools.pairwise(dims)))

        def measure(self, arch):
            return {"params": self.params(arch)}

        def evaluate(self, arch, budget=None):
            return {"acc": math.log(self.params(arch)), "params": self.params(arch)}

    infeasible = {}
    for name in ("bayesian", "random"):
        result = nf.search(
            space,
            Sized(),
            strategy=name,
            budget=25,
            seed=0,
            objective="acc",
            constraints=["params <= 10_000"],
            progress=False,
        )
        infeasible[name] = sum(t.status is TrialStatus.INFEASIBLE for t in result.trials)
    assert infeasible["bayesian"] < 0.75 * infeasible["random"]


class WaitsForOthers(Toy):
    """The first n=4 trial waits (up to ``patience`` seconds) until three other trials
    have finished, then records how many did; every other trial leaves a marker when done.
    Works from any process: the markers are files."""

    def __init__(self, directory: Path, patience: float) -> None:
        super().__init__()
        self.directory = directory
        self.patience = patience

    def _done(self) -> int:
        return len(list(self.directory.glob("done-*")))

    def evaluate(self, arch, budget=None):
        if arch["n"] == 4 and _claim(self.directory / "slow"):
            before, deadline = self._done(), time.monotonic() + self.patience
            while self._done() - before < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            (self.directory / "overtaken").write_text(str(self._done() - before))
        else:
            (self.directory / f"done-{arch.key}").touch()
        return super().evaluate(arch, budget)


def _claim(path: Path) -> bool:
    """Create ``path``; True for the one caller that created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


@pytest.mark.parametrize(
    ("strategy", "overtakes", "patience"), [("random", True, 120.0), ("evolution", False, 3.0)]
)
def test_workers_refill_at_once_only_when_the_strategy_ignores_results(
    tmp_path, strategy, overtakes, patience
):
    """random: the other worker goes on while a slow trial runs (the slow trial waits for
    three of its trials); evolution is deterministic: trial j starts after the result of
    trial j - 2 is delivered, so while slow trial 1 runs only trial 0 (started with it) and
    trial 2 can finish (it never sees three, and gives up after ``patience``)."""
    evaluator = WaitsForOthers(tmp_path, patience)
    result = run(evaluator, budget=10, seed=1, strategy=strategy, executor={"name": "process"})
    assert result.trials[1].arch["n"] == 4, "seed 1 samples an n=4 arch second"
    finished_meanwhile = int((tmp_path / "overtaken").read_text())
    if overtakes:
        assert finished_meanwhile >= 3
    else:
        assert finished_meanwhile <= 2


class Declared(Toy):
    """A Toy that declares its metrics and identity, as TrainEvaluator does."""

    metrics = ("acc", "params")

    def __init__(self, version: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.version = version

    def identity(self):
        return {"evaluator": "toy", "version": self.version}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"objective": "accuracy"}, r"objective must be one of the evaluator's metrics.*'acc'"),
        ({"constraints": "latency_ms <= 5"}, r"constraints must be a constraint on one of"),
        ({"constraints": "flops <= 5"}, r"constraints must be a constraint on one of"),
    ],
)
def test_metrics_the_evaluator_does_not_return_fail_before_anything_runs(options, message):
    toy = Declared()
    with pytest.raises(nf.ConfigError, match=message):
        run(toy, **options)
    assert toy.calls == [] and toy.measured == []


def test_serial_with_workers_reproduces_a_parallel_search():
    options = {
        "budget": 10,
        "seed": 3,
        "strategy": "evolution",
        "strategy_options": {"population_size": 4, "sample_size": 2},
    }
    serial = run(Toy(), **options, executor={"name": "serial", "workers": 2})
    parallel = run(Toy(), **options, executor={"name": "process", "workers": 2})
    one_worker = run(Toy(), **options)
    assert [t.key for t in serial.trials] == [t.key for t in parallel.trials]
    assert [t.key for t in one_worker.trials] != [t.key for t in parallel.trials]


class Overfitting(Toy):
    """Validation accuracy that falls with more epochs: the low rungs look best."""

    def evaluate(self, arch, budget=None):
        metrics = super().evaluate(arch, budget)
        epochs = 9 if budget is None else budget
        return {**metrics, "acc": 1.0 + 0.01 * arch["n"] - 0.1 * epochs}


def test_best_and_pareto_front_come_from_the_largest_budget():
    scheduler = {"name": "successive_halving", "min_budget": 1, "max_budget": 9}
    result = run(Overfitting(), budget=9, seed=0, scheduler=scheduler)
    assert max(t.metrics["acc"] for t in result.finished) > result.best.metrics["acc"]
    assert result.best.budget == 9 and {t.budget for t in result.final} == {9}
    multi = run(
        Overfitting(),
        budget=9,
        seed=0,
        scheduler=scheduler,
        strategy="nsga2",
        objective=["acc", "params"],
        mode=["max", "min"],
    )
    assert multi.pareto_front() and {t.budget for t in multi.pareto_front()} == {9}


def test_resume_refuses_another_evaluator(tmp_path):
    path = tmp_path / "search.jsonl"
    run(Declared(version=1), budget=3, journal=path)
    with pytest.raises(JournalError, match=r"different search.*evaluator"):
        run(Declared(version=2), budget=4, journal=path, resume=True)
    assert len(run(Declared(version=1), budget=4, journal=path, resume=True).trials) == 4


def test_a_scheduler_without_continuation_warns(caplog):
    class Retraining(Toy):
        continues_trials = False

    scheduler = {"name": "successive_halving", "min_budget": 1, "max_budget": 9}
    with caplog.at_level("WARNING", logger="nasforge"):
        run(Retraining(), budget=3, scheduler=scheduler)
    assert "retrains them from scratch" in caplog.text


def test_without_determinism_workers_refill_at_once_even_for_evolution(tmp_path):
    """deterministic=False delivers results as they come and refills a free worker at
    once: the other worker finishes three trials while a slow one runs (compare
    test_workers_refill_at_once_only_when_the_strategy_ignores_results)."""
    evaluator = WaitsForOthers(tmp_path, patience=120.0)
    result = run(
        evaluator,
        budget=10,
        seed=1,
        strategy="evolution",
        executor={"name": "process"},
        deterministic=False,
    )
    assert int((tmp_path / "overtaken").read_text()) >= 3
    assert sorted(t.number for t in result.trials) == list(range(10))
    assert all(t.status is TrialStatus.FINISHED for t in result.trials)


class WithTest(Toy):
    def __init__(self) -> None:
        super().__init__()
        self.tested: list[str] = []

    def test(self, arch):
        self.tested.append(arch.key)
        return {"test_acc": 0.5}


def test_test_false_adds_no_test_metrics():
    evaluator = WithTest()
    result = run(evaluator, budget=6, seed=0, test=False)
    assert evaluator.tested == []
    assert not any("test_acc" in t.metrics for t in result.trials)
    assert result.best is not None


def test_test_metrics_go_to_every_pareto_optimal_trial():
    evaluator = WithTest()
    result = run(
        evaluator,
        budget=10,
        seed=0,
        strategy="nsga2",
        objective=["acc", "params"],
        mode=["max", "min"],
    )
    front = result.pareto_front()
    assert len(front) > 1
    assert [t for t in result.trials if "test_acc" in t.metrics] == front
    assert sorted(evaluator.tested) == sorted(t.key for t in front)


@pytest.mark.parametrize(
    ("constraint", "smallest_n"),
    [(nf.Constraint("params", ">=", 300), 3), (nf.Constraint("params", ">", 300), 4)],
)
def test_lower_bound_constraints_as_constraint_objects(constraint, smallest_n):
    toy = Toy()
    result = run(toy, budget=3, seed=0, constraints=[constraint])
    finished = [t for t in result.trials if t.finished]
    infeasible = [t for t in result.trials if t.status is TrialStatus.INFEASIBLE]
    assert len(finished) == 3 and all(t.arch["n"] >= smallest_n for t in finished)
    assert infeasible and all(t.arch["n"] < smallest_n for t in infeasible)
    assert all(t.error == f"violates {constraint}" for t in infeasible)
    assert {k for k, _ in toy.calls} == {t.key for t in finished}  # measured, not trained
    assert str(constraint) == f"params {constraint.op} 300"


def test_a_constraint_on_a_trained_metric_is_checked_after_training():
    toy = Toy()
    result = run(toy, budget=4, seed=0, constraints=[nf.Constraint("acc", ">", 0.75)])
    infeasible = [t for t in result.trials if t.status is TrialStatus.INFEASIBLE]
    assert infeasible and all(t.metrics["acc"] <= 0.75 for t in infeasible)
    assert all(t.error == "violates acc > 0.75" for t in infeasible)
    assert all(t.metrics["acc"] > 0.75 for t in result.finished)
    assert {t.key for t in infeasible} <= {k for k, _ in toy.calls}  # trained, then judged
    again = run(Toy(), budget=4, seed=0, constraints=["acc > 0.75"])
    assert [(t.key, t.status) for t in again.trials] == [(t.key, t.status) for t in result.trials]


def test_successive_halving_bracket_size():
    toy = Toy()
    scheduler = {"name": "successive_halving", "min_budget": 1, "max_budget": 9}
    run(toy, budget=8, seed=0, scheduler={**scheduler, "bracket_size": 4})
    budgets = [b for _, b in toy.calls]
    # two brackets of 4 trials: 4 at 1 epoch, the best 4 // 3 = 1 on at 3, then at 9
    assert sorted(budgets) == [1] * 8 + [3] * 2 + [9] * 2
    first_bracket = [k for k, b in toy.calls if b == 1][:4]
    best = max(first_bracket, key=lambda k: Toy().evaluate(toy_space().from_key(k), 1)["acc"])
    assert next(k for k, b in toy.calls if b == 9) == best
    default = Toy()  # one bracket of 9, closed at 8 trials: 2 on at 3, 1 at 9
    run(default, budget=8, seed=0, scheduler=scheduler)
    assert sorted(b for _, b in default.calls) == [1] * 8 + [3] * 2 + [9]
    with pytest.raises(nf.ConfigError, match="bracket_size"):
        run(Toy(), scheduler={**scheduler, "bracket_size": 0})


@pytest.fixture
def screen_scheduler():
    """The `Screen` scheduler of docs/search.md, registered as "screen" for one test."""
    from nasforge.nas.schedulers import Job

    @nf.register("scheduler", "screen")
    class Screen(nf.Scheduler):
        """Every trial for `low` epochs; those at or above the running median go on to `high`."""

        name = "screen"

        def __init__(self, *, low=1, high=5):
            self.low, self.high = low, high
            self.scores, self.promoted, self.queue = [], set(), []

        def next_job(self, new_trial):
            if self.queue:
                return Job(self.queue.pop(0), self.high, new=False)
            if new_trial is None:
                return None
            return Job(new_trial, self.low, new=True)

        def report(self, trial, score, *, infeasible=False):
            if infeasible or score is None or trial in self.promoted:
                return [trial]
            self.scores.append(score)
            if score >= statistics.median(self.scores):
                self.promoted.add(trial)
                self.queue.append(trial)
                return []
            return [trial]

        def to_dict(self):
            return {"name": self.name, "low": self.low, "high": self.high}

    yield Screen
    nf.unregister("scheduler", "screen")


def test_a_custom_scheduler_from_the_docs(screen_scheduler, tmp_path):
    toy = Toy()
    strategy = nf.build("strategy", "random", space=toy_space(), seed=0)
    path = tmp_path / "search.jsonl"
    result = run(toy, budget=8, strategy=strategy, scheduler={"name": "screen"}, journal=path)
    first = [(k, b) for k, b in toy.calls if b == 1]
    assert len(first) == 8 and len({k for k, _ in first}) == 8  # every trial at low first
    scores, promoted = [], []
    for key, _ in first:  # the running-median rule, trial by trial
        scores.append(Toy().evaluate(toy_space().from_key(key), 1)["acc"])
        if scores[-1] >= statistics.median(scores):
            promoted.append(key)
    assert [k for k, b in toy.calls if b == 5] == promoted
    assert {t.key: t.budget for t in result.trials} == {
        k: 5 if k in promoted else 1 for k, _ in first
    }
    assert len(strategy.history) == 8  # the strategy hears of each trial once
    assert result.best.budget == 5 and result.best.key in promoted
    assert read_journal(path).identity["scheduler"] == {"name": "screen", "low": 1, "high": 5}
    instance = run(Toy(), budget=8, seed=0, scheduler=screen_scheduler(high=5))
    assert [(t.key, t.budget) for t in instance.trials] == [
        (t.key, t.budget) for t in result.trials
    ]


def test_executor_given_by_name_runs_trials_in_worker_processes():
    serial = Toy()
    expected = run(serial, budget=6, seed=5, executor="serial")
    assert len(serial.calls) == 6
    toy = Toy()
    result = run(toy, budget=6, seed=5, executor="process")
    assert toy.calls == []  # evaluated in the workers, not in this process
    assert [(t.key, t.metrics) for t in result.trials] == [
        (t.key, t.metrics) for t in expected.trials
    ]


class NewestFirst(Executor):
    """A user's executor: runs queued tasks in this process when waited on, newest first,
    so results come back out of submission order."""

    def __init__(self, *, workers: int = 2, timeout: float | None = None) -> None:
        super().__init__(workers=workers, timeout=timeout)
        self.queue: list = []
        self.submitted = 0
        self.shutdowns = 0

    @property
    def running(self) -> int:
        return len(self.queue)

    def submit(self, task_id, fn, *args):
        self.queue.append((task_id, fn, args))
        self.submitted += 1

    def wait(self):
        if not self.queue:
            return []
        task_id, fn, args = self.queue.pop()
        try:
            return [TaskResult(task_id, value=fn(*args))]
        except Exception as exc:
            return [TaskResult(task_id, failure=Failure.EXCEPTION, error=repr(exc))]

    def shutdown(self):
        self.shutdowns += 1
        self.queue.clear()


def test_a_custom_executor_runs_the_search():
    options = {
        "budget": 10,
        "seed": 3,
        "strategy": "evolution",
        "strategy_options": {"population_size": 4, "sample_size": 2},
    }
    executor = NewestFirst(workers=2)
    result = run(Toy(fail_op="c"), executor=executor, **options)
    # the same trials as any two-worker executor: results are delivered in job order
    reference = run(Toy(fail_op="c"), executor={"name": "serial", "workers": 2}, **options)
    assert [(t.key, t.status) for t in result.trials] == [
        (t.key, t.status) for t in reference.trials
    ]
    assert executor.submitted == 10 and executor.shutdowns == 1
    failed = [t for t in result.trials if t.arch["op"] == "c"]
    assert failed and all("cannot train" in t.error for t in failed)
    nf.register("executor", "newest_first")(NewestFirst)
    try:
        by_name = run(Toy(fail_op="c"), executor={"name": "newest_first", "workers": 2}, **options)
    finally:
        nf.unregister("executor", "newest_first")
    assert [t.key for t in by_name.trials] == [t.key for t in result.trials]
