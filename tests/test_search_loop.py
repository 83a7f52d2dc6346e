"""The search loop's machinery: failures, constraints, schedulers, executors, journal."""

from __future__ import annotations

import itertools
import json
import math
import os
import time

import pytest

import nasforge as nf
from nasforge.errors import JournalError
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


def test_multi_objective_search_returns_a_pareto_front(tmp_path):
    result = run(
        Toy(),
        budget=12,
        seed=0,
        strategy="nsga2",
        strategy_options={"population_size": 4},
        objective=["acc", "params"],
        mode=["max", "min"],
    )
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
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot_pareto()
    assert ax.get_xlabel() == "acc" and ax.get_ylabel() == "params"


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


class Timed(Toy):
    """Logs each trial's start and end to a file (from any process); n=4 trials are slow."""

    def __init__(self, log: str) -> None:
        super().__init__()
        self.log = log

    def evaluate(self, arch, budget=None):
        start = time.time()
        time.sleep(1.5 if arch["n"] == 4 else 0.05)
        with open(self.log, "a") as fh:
            fh.write(f"{arch['n']} {start} {time.time()}\n")
        return super().evaluate(arch, budget)


@pytest.mark.parametrize(("strategy", "overtakes"), [("random", True), ("evolution", False)])
def test_workers_refill_at_once_only_when_the_strategy_ignores_results(
    tmp_path, strategy, overtakes
):
    log = tmp_path / "times.txt"
    run(Timed(str(log)), budget=10, seed=1, strategy=strategy, executor={"name": "process"})
    rows = [line.split() for line in log.read_text().splitlines()]
    slow = [(float(s), float(e)) for n, s, e in rows if n == "4"]
    assert slow, "seed 1 samples an n=4 arch"
    start, end = slow[0]
    during = [r for r in rows if r[0] != "4" and start < float(r[1]) < end]
    # random: the other worker goes on while the slow trial runs; evolution waits for it
    # (deterministic: trial j starts after the result of trial j - 2 is delivered)
    assert (len(during) > 2) is overtakes


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
