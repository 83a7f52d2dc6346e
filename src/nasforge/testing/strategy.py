"""The strategy conformance suite: bounds, reproducibility, no repeats (nor equivalent
archs), batch asks, rebuilding from a history, state dicts (options included), failed
trials, pickling and a round trip through another process."""

from __future__ import annotations

import json
import pickle
import zlib
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from nasforge.registry import build
from nasforge.space.base import Arch, Space
from nasforge.space.builtin import NB201Space
from nasforge.space.params import Choice, FloatRange, IntRange
from nasforge.strategy.base import Strategy
from nasforge.testing._spawn import run_in_subprocess

__all__ = [
    "EquivalenceSpace",
    "StrategyConformance",
    "conformance_spaces",
    "continue_strategies",
    "synthetic_score",
]

Factory = Callable[[Space, int], Strategy]


def conformance_spaces() -> dict[str, Space]:
    """The spaces the suite runs on: a finite one (120 archs), a conditional one with float
    ranges (infinite), and the NB201 cell space."""
    finite = Space(
        [
            Choice("op", ["conv", "pool", "skip"]),
            IntRange("depth", 1, 4),
            Choice("bn", [True, False]),
            Choice("act", ["relu", "gelu", "silu", "tanh", "elu"]),
        ],
        name="finite",
    )
    conditional = Space(
        [
            IntRange("layers", 1, 3),
            Choice("width_1", [16, 32, 64]),
            Choice("width_2", [16, 32, 64], when={"layers": [2, 3]}),
            Choice("width_3", [16, 32, 64], when={"layers": [3]}),
            FloatRange("dropout", 0.0, 0.5),
            FloatRange("lr", 1e-4, 1e-1, log=True),
        ],
        name="conditional",
    )
    return {"finite": finite, "conditional": conditional, "nb201": NB201Space()}


def tiny_space() -> Space:
    """24 archs, to check what happens when a strategy exhausts a space."""
    return Space(
        [
            Choice("op", ["conv", "pool", "skip"]),
            IntRange("depth", 1, 4),
            Choice("bn", [True, False]),
        ],
        name="tiny",
    )


class EquivalenceSpace(Space):
    """:func:`tiny_space` with an equivalence: ``depth`` is irrelevant when ``op`` is
    ``"skip"`` (18 distinct archs out of 24), like a dead edge in a cell."""

    def __init__(self) -> None:
        super().__init__(tiny_space().params, name="tiny_equivalence")

    def canonical(self, arch: Arch) -> Arch:
        if arch["op"] == "skip" and arch["depth"] != 1:
            return self.arch({**arch.to_dict(), "depth": 1})
        return arch


def synthetic_score(space: Space, arch: Arch) -> float:
    """A deterministic, arch-dependent score (a fixed random linear function of the
    encoding), so tests need no training or tables."""
    code = space.encode(arch)
    weights = [
        (zlib.crc32(f"{space.name}:{i}".encode()) % 1000) / 1000 - 0.3 for i in range(len(code))
    ]
    return float(sum(w * c for w, c in zip(weights, code, strict=True)))


def _drive(strategy: Strategy, n: int, *, fail_every: int = 0) -> list[Arch]:
    asked = []
    for i in range(n):
        arch = strategy.ask()
        asked.append(arch)
        failed = fail_every and i % fail_every == fail_every - 1
        strategy.tell(arch, None if failed else synthetic_score(strategy.space, arch))
    return asked


class StrategyConformance:
    """Pytest base class: every ``test_*`` checks one part of the strategy contract.

    Name a registered strategy (and its options), or override the ``factory`` fixture::

        from nasforge.testing import StrategyConformance

        class TestMyStrategy(StrategyConformance):
            strategy = "mine"
            options = {"population": 8}

    Give non-default options: the state-dict test checks that every one of them is
    restored into a strategy built with the defaults.
    """

    #: Registered strategy name (used by the default ``factory`` fixture).
    strategy: ClassVar[str | None] = None
    #: Constructor options for the default factory.
    options: ClassVar[dict[str, Any]] = {}
    #: Trials per run; keep small enough for fast tests, large enough to leave warm-up phases.
    trials: ClassVar[int] = 40

    @pytest.fixture
    def factory(self) -> Factory:
        """``factory(space, seed) -> Strategy``; override to build your strategy yourself."""
        if self.strategy is None:
            pytest.fail("set `strategy = 'name'` or override the `factory` fixture")
        name, options = self.strategy, dict(self.options)
        return lambda space, seed: build("strategy", name, space=space, seed=seed, **options)

    @pytest.fixture(params=sorted(conformance_spaces()))
    def space(self, request: pytest.FixtureRequest) -> Space:
        return conformance_spaces()[request.param]

    def test_asks_are_members_of_the_space(self, factory: Factory, space: Space) -> None:
        strategy = factory(space, 0)
        for arch in _drive(strategy, self.trials):
            assert isinstance(arch, Arch)
            assert space.contains(arch), arch
            assert space.from_key(arch.key) == arch

    def test_same_seed_same_sequence(self, factory: Factory, space: Space) -> None:
        first = [a.key for a in _drive(factory(space, 7), self.trials)]
        second = [a.key for a in _drive(factory(space, 7), self.trials)]
        assert first == second

    def test_different_seeds_differ(self, factory: Factory, space: Space) -> None:
        first = [a.key for a in _drive(factory(space, 1), self.trials)]
        second = [a.key for a in _drive(factory(space, 2), self.trials)]
        assert first != second

    def test_no_repeats_until_exhausted(self, factory: Factory) -> None:
        space = tiny_space()
        strategy = factory(space, 3)
        keys = [a.key for a in _drive(strategy, space.size)]
        assert len(set(keys)) == space.size == 24
        assert strategy.exhausted
        assert space.contains(strategy.ask())  # still answers once everything was seen

    def test_no_equivalent_repeats_until_exhausted(self, factory: Factory) -> None:
        space = EquivalenceSpace()
        assert space.distinct_size == 18
        strategy = factory(space, 12)
        asked = _drive(strategy, 18)
        assert len({space.canonical(a).key for a in asked}) == 18
        assert strategy.exhausted
        assert space.contains(strategy.ask())

    def test_no_repeats_on_nb201(self, factory: Factory) -> None:
        """Not even of an equivalent cell (dead edges, identities, summation order)."""
        space = conformance_spaces()["nb201"]
        asked = _drive(factory(space, 4), 3 * self.trials)
        assert len({space.canonical(a).key for a in asked}) == len(asked)

    def test_batch_asks_before_any_tell(self, factory: Factory, space: Space) -> None:
        strategy = factory(space, 5)
        _drive(strategy, self.trials // 2)
        batch = [strategy.ask() for _ in range(8)]
        assert len({a.key for a in batch}) == 8
        assert {a.key for a in strategy.pending} == {a.key for a in batch}
        for arch in reversed(batch):  # results arrive in any order
            strategy.tell(arch, synthetic_score(space, arch))
        assert not strategy.pending
        nxt = strategy.ask()
        assert space.contains(nxt)
        assert nxt.key not in {a.key for a, _ in strategy.history}

    def test_rebuild_from_history(self, factory: Factory, space: Space) -> None:
        original = factory(space, 6)
        _drive(original, self.trials)
        history = original.history
        rebuilt = type(original).from_history(
            space, [(a.key, s) for a, s in history], seed=6, **original.options
        )
        assert [(a.key, s) for a, s in rebuilt.history] == [(a.key, s) for a, s in history]
        told = {a.key for a, _ in history}
        for arch in _drive(rebuilt, 10):
            assert space.contains(arch)
            assert arch.key not in told

    def test_tell_accepts_archs_it_never_asked(self, factory: Factory, space: Space) -> None:
        strategy = factory(space, 8)
        foreign = [space.sample(100 + i) for i in range(5)]
        for arch in foreign:
            strategy.tell(arch, synthetic_score(space, arch))
        for arch in _drive(strategy, 10):
            assert arch.key not in {a.key for a in foreign}

    def test_state_dict_round_trip(self, factory: Factory, space: Space) -> None:
        a = factory(space, 9)
        _drive(a, self.trials // 2)
        pending = [a.ask() for _ in range(3)]
        state = json.loads(json.dumps(a.state_dict()))  # JSON-serialisable
        b = factory(space, 0)
        b.load_state_dict(state)
        assert {x.key for x in b.pending} == {x.key for x in pending}
        for arch in pending:
            a.tell(arch, synthetic_score(space, arch))
            b.tell(arch, synthetic_score(space, arch))
        assert [x.key for x in _drive(a, 10)] == [x.key for x in _drive(b, 10)]

    def test_failed_trials_are_tolerated(self, factory: Factory, space: Space) -> None:
        strategy = factory(space, 10)
        asked = _drive(strategy, self.trials, fail_every=3)
        assert len({x.key for x in asked}) == len(asked)
        assert sum(s is None for _, s in strategy.history) == self.trials // 3

    def test_all_failures_still_proposes(self, factory: Factory) -> None:
        space = conformance_spaces()["nb201"]
        strategy = factory(space, 11)
        for _ in range(self.trials):
            strategy.tell(strategy.ask(), None)
        assert space.contains(strategy.ask())

    def test_pickle_continues_identically(self, factory: Factory, space: Space) -> None:
        original = factory(space, 13)
        _drive(original, self.trials // 2)
        pending = original.ask()
        copy = pickle.loads(pickle.dumps(original))
        assert type(copy) is type(original) and copy.options == original.options
        assert [a.key for a in copy.pending] == [pending.key]
        for strategy in (original, copy):
            strategy.tell(pending, synthetic_score(space, pending))
        assert [a.key for a in _drive(copy, 10)] == [a.key for a in _drive(original, 10)]

    def test_state_dict_restores_every_option(self, factory: Factory) -> None:
        """State loaded into a strategy built with the defaults brings the options along."""
        space = conformance_spaces()["finite"]
        original = factory(space, 15)
        _drive(original, self.trials // 2)
        state = json.loads(json.dumps(original.state_dict()))
        restored = type(original)(space, seed=0)
        restored.load_state_dict(state)
        assert restored.options == original.options
        assert [a.key for a in _drive(restored, 10)] == [a.key for a in _drive(original, 10)]

    def test_continues_in_another_process(self, factory: Factory) -> None:
        """Pickled after some tells, it asks the same in a spawned process (one process for
        every conformance space)."""
        strategies = []
        for _, space in sorted(conformance_spaces().items()):
            strategy = factory(space, 14)
            _drive(strategy, self.trials // 2)
            strategies.append(strategy)
        payload = pickle.dumps(strategies)
        here = [[a.key for a in _drive(s, 10)] for s in strategies]
        assert run_in_subprocess(continue_strategies, payload, 10) == here


def continue_strategies(payload: bytes, n: int) -> list[list[str]]:
    """The keys of the next ``n`` asks (told synthetic scores) of each pickled strategy."""
    strategies: list[Strategy] = pickle.loads(payload)
    return [[a.key for a in _drive(s, n)] for s in strategies]
