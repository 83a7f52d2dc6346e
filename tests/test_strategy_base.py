"""The ask/tell base class (nasforge.strategy.base): rebuilding from a history, state dicts,
best(), reprs, the unseen-arch guarantee near exhaustion, and the renamed hooks."""

from __future__ import annotations

import os
import warnings

import pytest

import nasforge as nf
from nasforge.errors import ConfigError, NasforgeError, StrategyStateError
from nasforge.space import Choice, IntRange, Space
from nasforge.strategy import RegularizedEvolution
from nasforge.strategy.base import Strategy


def toy() -> Space:
    return Space([IntRange("n", 0, 9), Choice("op", ["a", "b"])], name="toy")


class First(Strategy):
    """Always proposes the first arch of the grid (so the base class must replace it)."""

    name = "first"

    def __init__(self, space: Space, *, seed: int = 0, step: int = 1) -> None:
        super().__init__(space, seed=seed)
        self.step = step

    def propose(self):
        return next(iter(self.space.grid(2)))


def test_from_history_builds_with_the_seed_and_options_given():
    space = toy()
    history = [("n=1|op=a", 0.5), ({"n": 2, "op": "b"}, None)]
    strategy = First.from_history(space, history, step=3)
    assert (strategy.seed, strategy.step, strategy.options) == (0, 3, {"step": 3})
    assert [(a.key, s) for a, s in strategy.history] == [("n=1|op=a", 0.5), ("n=2|op=b", None)]
    assert First.from_history(space, [], seed=4).seed == 4


def test_best_is_the_highest_float_score():
    strategy = First(toy())
    assert strategy.best() is None
    strategy.tell("n=1|op=a", None)
    assert strategy.best() is None  # only failures so far
    strategy.tell("n=2|op=a", 0.25)
    strategy.tell("n=3|op=a", 0.75)
    strategy.tell("n=4|op=a", 0.5)
    arch, score = strategy.best()
    assert (arch.key, score) == ("n=3|op=a", 0.75)


def test_best_is_undefined_for_several_objectives():
    strategy = nf.build("strategy", "random", space=toy(), seed=0)
    strategy.tell("n=1|op=a", (0.5, 1.0))
    with pytest.raises(NasforgeError) as info:
        strategy.best()
    assert str(info.value) == (
        "random: best() is undefined for multi-objective (tuple) scores. HINT: take the "
        "Pareto front, e.g. nasforge.pareto.pareto_front([s for _, s in strategy.history if "
        "s is not None])"
    )


def test_a_state_dict_restores_seed_options_history_and_pending_asks():
    space = toy()
    strategy = First(space, seed=5, step=2)
    strategy.tell("n=1|op=a", 0.5)
    pending = [strategy.ask() for _ in range(3)]
    state = strategy.state_dict()
    restored = First(space, seed=0)
    restored.load_state_dict(state)
    assert (restored.seed, restored.step, restored.options) == (5, 2, {"step": 2})
    assert [a.key for a in restored.pending] == [a.key for a in pending]
    assert all(restored.is_seen(a) for a in pending)
    assert restored.state_dict() == state
    assert [restored.ask().key for _ in range(5)] == [strategy.ask().key for _ in range(5)]


def test_a_state_dict_without_options_keeps_the_current_ones():
    space = toy()
    state = First(space, seed=1, step=7).state_dict()
    del state["options"]
    restored = First(space, step=4)
    restored.load_state_dict(state)
    assert (restored.seed, restored.step) == (1, 4)


@pytest.mark.parametrize(
    ("strategy", "space", "message"),
    [
        (
            "random",
            "toy",
            "state dict is for strategy 'random' on space 'toy', not 'first' on 'toy'",
        ),
        (
            "first",
            "other",
            "state dict is for strategy 'first' on space 'other', not 'first' on 'toy'",
        ),
    ],
)
def test_a_state_dict_of_another_strategy_or_space_is_refused(strategy, space, message):
    state = {**First(toy()).state_dict(), "strategy": strategy, "space": space}
    with pytest.raises(StrategyStateError) as info:
        First(toy()).load_state_dict(state)
    assert str(info.value) == message


def test_repr_names_the_space_the_seed_and_the_options():
    assert repr(First(toy(), seed=2, step=3)) == "First(space='toy', seed=2, step=3)"
    assert repr(nf.build("strategy", "random", space=toy(), seed=1)) == (
        "RandomSearch(space='toy', seed=1)"
    )
    evolution = RegularizedEvolution(toy(), population_size=4, sample_size=2)
    assert repr(evolution) == (
        "RegularizedEvolution(space='toy', seed=0, population_size=4, sample_size=2, "
        "crossover_prob=0.0, mutation_edits=1)"
    )


def test_asks_stay_unseen_until_the_space_is_exhausted():
    space = Space([IntRange("n", 0, 999)], name="wide")
    strategy = First(space, seed=0)
    left = {0, 1, 499, 500, 998}
    for n in range(1000):
        if n not in left:
            strategy.tell({"n": n}, 0.0)
    asked = [strategy.ask()["n"] for _ in range(len(left))]
    assert sorted(asked) == sorted(left)  # found by enumeration when sampling misses
    assert strategy.exhausted


def test_a_strategy_must_implement_propose():
    class Lazy(Strategy):
        pass

    with pytest.raises(NotImplementedError, match=r"^Lazy must implement propose\(\)$"):
        Lazy(toy()).ask()


def test_the_space_must_be_a_space():
    with pytest.raises(ConfigError) as info:
        First({"n": [1, 2]})
    assert str(info.value) == (
        "space must be a nasforge Space, but got 'dict'. HINT: build one with "
        'nf.build("space", "nb201") or Space([...])'
    )


def test_old_hook_names_still_work_with_a_deprecation_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Old(Strategy):
            def _propose(self):
                return self.space.from_key("n=3|op=b")

            def _extra_state(self):
                return {"old": True}

    messages = sorted(str(w.message) for w in caught if w.category is DeprecationWarning)
    prefix = "test_old_hook_names_still_work_with_a_deprecation_warning.<locals>.Old"
    assert messages == [
        f"{prefix}._extra_state is deprecated: implement extra_state instead (the hooks "
        "became public in nasforge 0.2)",
        f"{prefix}._propose is deprecated: implement propose instead (the hooks became "
        "public in nasforge 0.2)",
    ]
    base = os.path.join("nasforge", "strategy", "base.py")
    assert not any(w.filename.endswith(base) for w in caught)  # points at the subclass
    strategy = Old(toy())
    assert strategy.ask().key == "n=3|op=b"
    assert strategy.state_dict()["extra"] == {"old": True}


def test_a_new_hook_wins_over_an_old_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)

        class Both(Strategy):
            def propose(self):
                return self.space.from_key("n=1|op=a")

            def _propose(self):  # a private helper, not the old hook
                raise AssertionError

    assert Both(toy()).ask().key == "n=1|op=a"


def test_tuple_scores_name_the_strategies_that_take_them():
    @nf.register("strategy", "plain_plugin")
    class PlainPlugin:  # a plugin that does not subclass Strategy
        def __init__(self, space, *, seed=0):
            pass

    try:
        with pytest.raises(ConfigError) as info:
            First(toy()).tell("n=1|op=a", (0.5, 1.0))
    finally:
        nf.unregister("strategy", "plain_plugin")
    multi = [n for n in nf.available("strategy") if nf.get("strategy", n).multi_objective]
    assert multi and "first" not in multi
    assert str(info.value).endswith(
        "HINT: tuple (multi-objective) scores need one of the strategies " + ", ".join(multi)
    )


def test_asks_after_exhaustion_still_follow_the_seed():
    space = Space([IntRange("n", 0, 3), Choice("op", ["a", "b"])], name="tiny")

    def asks_after_exhaustion(seed):
        strategy = nf.build("strategy", "random", space=space, seed=seed)
        for arch in space.grid(4):
            strategy.tell(arch, 0.0)
        assert strategy.exhausted
        return [strategy.ask().key for _ in range(8)]

    assert asks_after_exhaustion(3) == asks_after_exhaustion(3)
    assert len(set(asks_after_exhaustion(3))) > 1  # drawn at random, not one arch repeated


@pytest.mark.parametrize(
    ("strategy", "told", "score", "message"),
    [
        ("random", None, "0.5", "a float to maximise, or None for a failure, but got '0.5'"),
        ("random", None, (0.5, "x"), "a non-empty tuple of floats, but got (0.5, 'x')"),
        ("random", None, (), "a non-empty tuple of floats, but got ()"),
        (
            "nsga2",
            (0.5, 1.0),
            (0.5,),
            "a tuple of 2 floats (or None), like the scores told before, but got (0.5,). "
            "HINT: every score told to one strategy has the same number of objectives",
        ),
    ],
)
def test_malformed_scores_are_refused_with_the_score(strategy, told, score, message):
    strategy = nf.build("strategy", strategy, space=toy(), seed=0)
    if told is not None:
        strategy.tell("n=1|op=a", told)
    with pytest.raises(ConfigError) as info:
        strategy.tell("n=2|op=a", score)
    assert (info.value.field, str(info.value)) == ("score", f"score must be {message}")


def test_exhaustion_is_logged_once_and_told_archs_leave_the_pending_set(caplog):
    strategy = First(toy())
    arch = strategy.ask()
    assert [a.key for a in strategy.pending] == [arch.key]
    strategy.tell(arch, 0.5)
    assert strategy.pending == []
    for left in toy().grid(10):
        strategy.tell(left, 0.0)
    with caplog.at_level("WARNING", logger="nasforge"):
        strategy.ask()
        strategy.ask()
    warnings_ = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings_ == ["first: all 20 archs were seen; repeating"]
