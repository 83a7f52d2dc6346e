"""Schedulers (nasforge.nas.schedulers) driven directly through next_job/report/close,
as the search loop drives them: which job comes next, and which trials become final."""

from __future__ import annotations

import pytest

import nasforge as nf
from nasforge.nas.schedulers import FullBudget, Hyperband, Job, SuccessiveHalving, rank


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
