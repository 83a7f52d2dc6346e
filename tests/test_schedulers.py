"""Schedulers (nasforge.nas.schedulers) driven directly through next_job/report/close,
as the search loop drives them: which job comes next, and which trials become final."""

from __future__ import annotations

import copy

import pytest
import yaml

import nasforge as nf
from nasforge.nas.schedulers import ASHA, FullBudget, Hyperband, Job, SuccessiveHalving, rank
from nasforge.space import Choice, IntRange, Space
from nasforge.testing import SchedulerConformance


def start(scheduler, trials):
    """Ask for one new trial per number in ``trials``; return the jobs."""
    return [scheduler.next_job(t) for t in trials]


def test_full_budget_runs_every_trial_once_at_the_default_budget():
    scheduler = FullBudget()
    assert scheduler.next_job(4) == Job(4, None, new=True)
    assert scheduler.next_job(None) is None
    assert scheduler.report(4, 0.5) == [4]
    assert scheduler.report(5, None, infeasible=True) == [5]
    assert scheduler.close() == []
    assert scheduler.to_dict() == {"name": "none"}
    assert not FullBudget.adaptive and nf.get("scheduler", "none") is FullBudget


def test_successive_halving_promotes_the_best_third_rung_by_rung():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=9)
    assert scheduler.s_max == 2 and scheduler.bracket(2) == (9, [1, 3, 9])
    assert start(scheduler, range(9)) == [Job(t, 1, new=True) for t in range(9)]
    scores = [0.5, 0.9, 0.1, 0.8, 0.3, 0.7, 0.2, 0.6, 0.4]
    for trial in range(8):
        assert scheduler.report(trial, scores[trial]) == []  # the rung is not complete
    assert scheduler.next_job(None) is None  # nothing to do until the last result
    final = scheduler.report(8, scores[8])
    assert sorted(final) == [0, 2, 4, 6, 7, 8]  # all but the best 9 // 3 = 3
    promoted = [scheduler.next_job(None) for _ in range(3)]
    assert promoted == [Job(1, 3, new=False), Job(3, 3, new=False), Job(5, 3, new=False)]
    assert scheduler.next_job(None) is None
    assert scheduler.report(1, 0.2) == []
    assert scheduler.report(5, 0.3) == []
    assert sorted(scheduler.report(3, 0.1)) == [1, 3]  # 5 goes on to the full budget
    assert scheduler.next_job(None) == Job(5, 9, new=False)
    assert scheduler.report(5, 0.0) == [5]
    assert scheduler.next_job(None) is None
    assert scheduler.next_job(9) == Job(9, 1, new=True)  # a new bracket


def test_a_second_bracket_opens_while_the_first_waits():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=4, eta=2)
    assert scheduler.bracket(2) == (4, [1, 2, 4])
    jobs = start(scheduler, range(6))
    assert [j.budget for j in jobs] == [1] * 6 and all(j.new for j in jobs)
    for trial in range(4):
        scheduler.report(trial, float(trial))
    # the older bracket is served first
    assert scheduler.next_job(6) == Job(3, 2, new=False)
    assert scheduler.next_job(6) == Job(2, 2, new=False)
    assert scheduler.next_job(6) == Job(6, 1, new=True)
    assert scheduler.report(6, 1.0) == []  # it belongs to the second bracket


def test_failed_trials_rank_last_and_are_never_promoted():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=3)
    start(scheduler, range(3))
    scheduler.report(0, None)
    scheduler.report(1, -5.0)
    assert sorted(scheduler.report(2, None)) == [0, 2]
    assert scheduler.next_job(None) == Job(1, 3, new=False)


def test_a_rung_where_every_trial_failed_ends_the_bracket():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=9)
    start(scheduler, range(9))
    final = []
    for trial in range(9):
        final += scheduler.report(trial, None)
    assert sorted(final) == list(range(9))
    assert scheduler.next_job(None) is None
    assert scheduler.next_job(9) == Job(9, 1, new=True)  # the next bracket


def test_an_infeasible_trial_is_final_and_frees_its_place():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=3)
    start(scheduler, range(3))
    assert scheduler.report(1, None, infeasible=True) == [1]
    assert scheduler.next_job(7) == Job(7, 1, new=True)  # takes the freed place
    scheduler.report(0, 0.1)
    scheduler.report(2, 0.3)
    assert sorted(scheduler.report(7, 0.2)) == [0, 7]
    assert scheduler.next_job(None) == Job(2, 3, new=False)


def test_close_decides_the_rungs_that_can_no_longer_fill():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=9)
    start(scheduler, range(4))
    for trial, score in enumerate([0.1, 0.4, 0.3, 0.2]):
        scheduler.report(trial, score)
    assert sorted(scheduler.close()) == [0, 2, 3]  # 4 // 3 = 1 goes on
    assert scheduler.next_job(None) == Job(1, 3, new=False)
    assert scheduler.next_job(None) is None
    assert scheduler.report(1, 0.5) == []
    assert scheduler.next_job(None) == Job(1, 9, new=False)


def test_close_with_a_result_still_missing_waits_for_it():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=3)
    start(scheduler, range(2))
    scheduler.report(0, 0.5)
    assert scheduler.close() == []
    assert scheduler.report(1, 0.7) == [0]
    assert scheduler.next_job(None) == Job(1, 3, new=False)


def test_bracket_size_overrides_the_trials_per_bracket():
    scheduler = SuccessiveHalving(min_budget=1, max_budget=9, bracket_size=4)
    assert scheduler.bracket(2) == (4, [1, 3, 9])
    start(scheduler, range(4))
    for trial in range(3):
        scheduler.report(trial, float(trial))
    assert sorted(scheduler.report(3, 10.0)) == [0, 1, 2]
    assert scheduler.next_job(None) == Job(3, 3, new=False)


def test_budgets_are_whole_for_integer_bounds_and_exact_otherwise():
    assert SuccessiveHalving(min_budget=1, max_budget=10).bracket(2) == (9, [1, 3, 10])
    _, budgets = SuccessiveHalving(min_budget=1.0, max_budget=10).bracket(2)
    assert budgets == pytest.approx([10 / 9, 10 / 3, 10])
    assert SuccessiveHalving(min_budget=2, max_budget=8, eta=2).bracket(2) == (4, [2, 4, 8])
    assert SuccessiveHalving(min_budget=1, max_budget=2, eta=3).s_max == 0


def test_hyperband_cycles_from_the_most_aggressive_bracket():
    scheduler = Hyperband(min_budget=1, max_budget=9)
    assert [scheduler.bracket(s) for s in (2, 1, 0)] == [(9, [1, 3, 9]), (5, [3, 9]), (3, [9])]
    budgets = [j.budget for j in start(scheduler, range(9 + 5 + 3 + 1))]
    assert budgets == [1] * 9 + [3] * 5 + [9] * 3 + [1]
    wide = Hyperband(min_budget=1, max_budget=16, eta=2)
    assert [wide.bracket(s)[0] for s in (4, 3, 2, 1, 0)] == [16, 10, 7, 5, 5]


def test_options_are_recorded_for_the_journal():
    scheduler = nf.build("scheduler", "successive_halving", min_budget=1, max_budget=9)
    assert scheduler.to_dict() == {
        "name": "successive_halving",
        "min_budget": 1,
        "max_budget": 9,
        "eta": 3,
        "bracket_size": None,
    }
    assert Hyperband(min_budget=2, max_budget=8, eta=2).to_dict() == {
        "name": "hyperband",
        "min_budget": 2,
        "max_budget": 8,
        "eta": 2,
    }
    assert repr(scheduler) == "SuccessiveHalving(min_budget=1, max_budget=9, eta=3)"
    assert SuccessiveHalving.adaptive and Hyperband.adaptive


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_budget": 0, "max_budget": 9}, "scheduler.min_budget must be a positive number"),
        (
            {"min_budget": 3, "max_budget": 2},
            "scheduler.max_budget must be a number >= 3, but got 2. HINT: min_budget or more",
        ),
        ({"min_budget": 1, "max_budget": 9, "eta": 1}, "scheduler.eta must be an integer >= 2"),
        ({"min_budget": 1, "max_budget": 9, "eta": 2.0}, "scheduler.eta must be an integer"),
        ({"min_budget": True, "max_budget": 9}, "scheduler.min_budget must be"),
        (
            {"min_budget": 1, "max_budget": 9, "bracket_size": 0},
            "scheduler.bracket_size must be a positive integer or None",
        ),
    ],
)
def test_malformed_options_name_the_field(options, message):
    with pytest.raises(nf.ConfigError) as info:
        SuccessiveHalving(**options)
    assert str(info.value).startswith(message)


def test_equal_budgets_make_one_rung():
    scheduler = SuccessiveHalving(min_budget=5, max_budget=5)
    assert scheduler.s_max == 0 and scheduler.bracket(0) == (1, [5])
    assert scheduler.next_job(0) == Job(0, 5, new=True)
    assert scheduler.report(0, 0.1) == [0]


def test_too_many_halvings_are_refused_with_the_bracket_size():
    with pytest.raises(nf.ConfigError) as info:
        SuccessiveHalving(min_budget=2**-30, max_budget=2, eta=2)
    assert info.value.field == "scheduler.min_budget"
    assert str(info.value) == (
        f"scheduler.min_budget must be at least max_budget / eta**30 (at most 30 halvings), "
        f"but got {2**-30!r}. HINT: with max_budget=2 and eta=2, a bracket would start 2**31 "
        "trials"
    )
    assert SuccessiveHalving(min_budget=2**-29, max_budget=2, eta=2).s_max == 30  # the limit


def test_rank_orders_floats_best_first_and_failures_last():
    assert rank([0.2, None, 0.9, 0.2, -1.0]) == [2, 0, 3, 4, 1]
    assert rank([None, None]) == [0, 1]
    assert rank([]) == []
    assert rank([1, 3]) == [1, 0]  # integers count as floats


def test_rank_orders_tuples_by_pareto_front_then_crowding():
    scores = [(0.0, 0.0), (1.0, 3.0), None, (2.0, 2.0), (3.0, 1.0), (2.5, 1.5), (1.5, 1.0)]
    order = rank(scores)
    # front 0: 1, 3, 5, 4 (extremes 1 and 4 first); front 1: 6; then 0; failures last
    assert order[:2] == [1, 4] and set(order[2:4]) == {3, 5}
    assert order[4:] == [6, 0, 2]
    # inside a front, the less crowded point comes first
    assert rank([(0.0, 4.0), (1.0, 3.9), (3.0, 1.0), (4.0, 0.0)])[2:] == [2, 1]


# --- asynchronous successive halving ------------------------------------------------------


def report_all(scheduler, results):
    """Report ``{trial: score}`` in order; return every trial made final."""
    final = []
    for trial, score in results.items():
        final += scheduler.report(trial, score)
    return final


def test_asha_rungs_are_successive_halvings_first_bracket():
    scheduler = ASHA(min_budget=1, max_budget=27)
    assert scheduler.budgets == [1, 3, 9, 27] and scheduler.s_max == 3
    assert ASHA(min_budget=1, max_budget=10).budgets == [1, 3, 10]
    assert ASHA(min_budget=1.0, max_budget=10).budgets == pytest.approx([10 / 9, 10 / 3, 10])
    assert ASHA(min_budget=5, max_budget=5).budgets == [5]
    assert nf.get("scheduler", "asha") is ASHA and ASHA.adaptive
    assert scheduler.to_dict() == {"name": "asha", "min_budget": 1, "max_budget": 27, "eta": 3}
    assert repr(scheduler) == "ASHA(min_budget=1, max_budget=27, eta=3)"


def test_asha_promotes_the_best_of_three_at_once_without_waiting_for_the_rung():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    assert start(scheduler, range(4)) == [Job(t, 1, new=True) for t in range(4)]
    assert report_all(scheduler, {0: 0.2, 1: 0.9}) == []
    # two results: the top 2 // 3 = 0 go on, so a new trial starts instead of waiting
    assert scheduler.promotable(0) == []
    assert scheduler.next_job(4) == Job(4, 1, new=True)
    assert scheduler.report(2, 0.5) == []
    # three results: the best goes on now, while trials 3 and 4 still run at rung 0
    assert scheduler.promotable(0) == [1]
    assert scheduler.next_job(5) == Job(1, 3, new=False)
    # the others are not in the top third: new trials start
    assert scheduler.next_job(5) == Job(5, 1, new=True)
    assert scheduler.next_job(None) is None  # nothing promotable, no new trial allowed


def test_asha_does_not_promote_a_trial_outside_the_top_third():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(5))
    report_all(scheduler, {0: 0.1, 1: 0.3, 2: 0.2, 3: 0.9, 4: 0.8})
    assert scheduler.promotable(0) == [3]  # 5 // 3 = 1: only the best, not 4 (second)
    assert scheduler.next_job(None) == Job(3, 3, new=False)
    assert scheduler.next_job(None) is None
    scheduler.next_job(5)
    assert scheduler.report(5, 0.0) == []
    assert scheduler.promotable(0) == [4]  # 6 // 3 = 2: the second best joins the top third
    assert scheduler.next_job(None) == Job(4, 3, new=False)


def test_asha_serves_the_highest_rung_first():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(9))
    report_all(scheduler, {t: t / 10 for t in range(9)})
    assert [scheduler.next_job(None) for _ in range(3)] == [
        Job(8, 3, new=False),
        Job(7, 3, new=False),
        Job(6, 3, new=False),
    ]
    report_all(scheduler, {8: 0.5, 7: 0.9, 6: 0.7})
    # rung 1 has 3 results: its best (7) goes on to 9 before more rung-0 promotions
    assert scheduler.next_job(9) == Job(7, 9, new=False)
    assert scheduler.report(7, 0.95) == [7]  # the top rung: final at once


def test_asha_late_promotion_after_the_rung_grows():
    scheduler = ASHA(min_budget=2, max_budget=4, eta=2)
    start(scheduler, range(2))
    report_all(scheduler, {0: 0.8, 1: 0.6})
    assert scheduler.next_job(2) == Job(0, 4, new=False)
    assert scheduler.next_job(2) == Job(2, 2, new=True)
    assert scheduler.report(0, 0.9) == [0]
    scheduler.next_job(3)
    report_all(scheduler, {2: 0.1, 3: 0.2})
    # 4 results, top 2: 0 (already promoted) and 1, which went on only now
    assert scheduler.next_job(None) == Job(1, 4, new=False)


def test_asha_failed_trials_take_a_place_but_are_never_promoted():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(3))
    assert scheduler.report(0, None) == [0]  # final at once
    assert scheduler.report(1, None) == [1]
    assert scheduler.report(2, 0.1) == []
    assert scheduler.promotable(0) == [2]  # 3 results, failures ranked last
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(6))
    report_all(scheduler, {t: None for t in range(5)} | {5: 0.3})
    assert scheduler.promotable(0) == [5]  # 6 // 3 = 2 places, one trial that did not fail


def test_asha_infeasible_trials_take_no_place():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(3))
    assert scheduler.report(1, None, infeasible=True) == [1]
    report_all(scheduler, {0: 0.4, 2: 0.5})
    assert scheduler.promotable(0) == []  # two results in the rung, not three
    assert scheduler.next_job(3) == Job(3, 1, new=True)
    scheduler.report(3, 0.1)
    assert scheduler.next_job(None) == Job(2, 3, new=False)
    assert scheduler.report(2, None, infeasible=True) == [2]  # infeasible when promoted
    assert scheduler.next_job(None) is None  # it is not promoted again


def test_asha_trials_below_the_top_are_final_once_closed_and_settled():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(4))
    assert report_all(scheduler, {0: 0.1, 1: 0.9, 2: 0.5}) == []
    assert scheduler.next_job(None) == Job(1, 3, new=False)
    assert scheduler.close() == []  # trials 1 and 3 still run
    assert scheduler.report(3, 0.2) == []  # 1 still runs
    assert scheduler.next_job(None) is None
    # nothing runs and rung 1 has one result (none promotable): every waiting trial is final
    assert scheduler.report(1, 0.7) == [0, 1, 2, 3]
    assert scheduler.next_job(None) is None


def test_asha_close_with_promotions_left_hands_them_out_first():
    scheduler = ASHA(min_budget=2, max_budget=4, eta=2)
    start(scheduler, range(4))
    report_all(scheduler, {0: 0.1, 1: 0.4, 2: 0.3, 3: 0.2})
    assert scheduler.close() == []  # 1 and 2 are still to go on
    assert scheduler.next_job(None) == Job(1, 4, new=False)
    assert scheduler.next_job(None) == Job(2, 4, new=False)
    assert scheduler.report(1, 0.5) == [1]
    assert sorted(scheduler.report(2, 0.6)) == [0, 2, 3]


def test_asha_ranks_several_objectives_by_pareto_rank():
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(3))
    # trial 1 dominates trial 0 (same first objective, better second); 2 is dominated too
    report_all(scheduler, {0: (0.9, 0.1), 1: (0.9, 0.5), 2: (0.1, 0.0)})
    assert scheduler.next_job(None) == Job(1, 3, new=False)
    scheduler = ASHA(min_budget=1, max_budget=9, eta=3)
    start(scheduler, range(6))
    # front 0: 0, 1, 2 (the extremes 0 and 2 first, by crowding distance); 3 is dominated
    # by 1 although its first objective is second best
    points = [(0.9, 0.1), (0.8, 0.9), (0.1, 0.95), (0.85, 0.8), (0.5, 0.5), None]
    report_all(scheduler, dict(enumerate(points)))
    assert sorted(scheduler.promotable(0)) == [0, 2]
    assert scheduler.promotable(0) == [t for t in rank(points) if t in (0, 2)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_budget": 0, "max_budget": 9}, "scheduler.min_budget must be a positive number"),
        ({"min_budget": 3, "max_budget": 2}, "scheduler.max_budget must be a number >= 3"),
        ({"min_budget": 1, "max_budget": 9, "eta": 1}, "scheduler.eta must be an integer >= 2"),
        (
            {"min_budget": 2**-31, "max_budget": 2, "eta": 2},
            "scheduler.min_budget must be at least max_budget / eta**30 (at most 30 halvings), "
            f"but got {2**-31!r}. HINT: with max_budget=2 and eta=2, there would be 33 rungs",
        ),
    ],
)
def test_asha_malformed_options_name_the_field(options, message):
    with pytest.raises(nf.ConfigError) as info:
        ASHA(**options)
    assert str(info.value).startswith(message)


class TestASHAConformance(SchedulerConformance):
    """Besides the registry-wide suite (tests/test_conformance.py): eta 2, float budgets."""

    scheduler = "asha"
    options = {"min_budget": 0.5, "max_budget": 8.0, "eta": 2}
    trials = 40
    workers = 4


class TestASHAOneRung(SchedulerConformance):
    scheduler = "asha"
    options = {"min_budget": 3, "max_budget": 3}


def toy_space() -> Space:
    return Space([Choice("op", ["a", "b", "c"]), IntRange("n", 1, 4)], name="toy")


class Toy:
    """Accuracy that grows with the budget (epochs); records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def evaluate(self, arch, budget=None):
        self.calls.append((arch.key, budget))
        base = {"a": 0.5, "b": 0.7, "c": 0.6}[arch["op"]] + 0.05 * arch["n"]
        epochs = 9 if budget is None else budget
        return {"acc": base * (1 - 0.5**epochs), "params": 100.0 * arch["n"]}


@pytest.mark.parametrize(
    "scheduler",
    [
        {"name": "asha", "min_budget": 1, "max_budget": 9, "eta": 3},
        ASHA(min_budget=1, max_budget=9, eta=3),
    ],
    ids=["mapping", "instance"],
)
def test_asha_drives_a_search(scheduler):
    toy = Toy()
    options = {"budget": 12, "objective": "acc", "progress": False, "seed": 0}
    result = nf.search(toy_space(), toy, strategy="random", scheduler=scheduler, **options)
    assert len(result.trials) == 12 and all(t.finished for t in result.trials)
    budgets = [b for _, b in toy.calls]
    assert budgets.count(1) == 12 and set(budgets) == {1, 3, 9}
    assert result.best.budget == 9 and result.final == [t for t in result.trials if t.budget == 9]
    # same seed, same jobs; two process workers give the serial results
    again = Toy()
    parallel = nf.search(
        toy_space(),
        again,
        strategy="random",
        scheduler={"name": "asha", "min_budget": 1, "max_budget": 9},
        executor={"name": "process", "workers": 2},
        **options,
    )
    assert [(t.key, t.budget, t.metrics) for t in parallel.trials] == [
        (t.key, t.budget, t.metrics) for t in result.trials
    ]


def test_asha_in_a_multi_objective_search():
    toy = Toy()
    result = nf.search(
        toy_space(),
        toy,
        strategy="nsga2",
        budget=9,
        seed=0,
        objective=["acc", "params"],
        mode=["max", "min"],
        scheduler={"name": "asha", "min_budget": 1, "max_budget": 3, "eta": 3},
        progress=False,
    )
    assert len(result.trials) == 9 and {b for _, b in toy.calls} == {1, 3}
    assert result.pareto_front()


def test_asha_from_a_yaml_config(tmp_path):
    from nasforge.cli.search import load_search_config, run

    config = {
        "space": {"name": "mlp", "options": {"max_depth": 2, "widths": [8, 16]}},
        "data": {"name": "synthetic", "options": {"num_samples": 200, "input_shape": [6]}},
        "strategy": "random",
        "budget": 4,
        "seed": 0,
        "scheduler": yaml.safe_load("{name: asha, min_budget: 1, max_budget: 3, eta: 3}"),
        "training": {"lr": 0.01, "latency": False},
    }
    loaded = load_search_config(copy.deepcopy(config))
    assert loaded.scheduler == {"name": "asha", "min_budget": 1, "max_budget": 3, "eta": 3}
    assert loaded.training.epochs == 3  # defaults to max_budget
    outcome = run(loaded, tmp_path / "out", progress=False)
    assert outcome.search is not None and len(outcome.search.trials) == 4
    assert {t.budget for t in outcome.search.trials} <= {1, 3}
