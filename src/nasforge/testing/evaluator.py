"""The evaluator conformance suite: finite float metrics, the declared metric names,
reproducible metrics (timing metrics aside), ``measure`` as a subset of them, a JSON
identity, pickling and a round trip through another process."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from nasforge.nas.evaluator import Evaluator
from nasforge.space.base import Arch, Space
from nasforge.testing._spawn import one_torch_thread, run_in_subprocess

__all__ = ["EvaluatorConformance", "evaluate_keys"]

Metrics = dict[str, float]


class EvaluatorConformance:
    """Pytest base class: every ``test_*`` checks one part of the evaluator contract.

    Evaluators need constructor arguments (data, a table), so override the
    ``space_and_evaluator`` fixture; the suite evaluates archs sampled from the space::

        import nasforge as nf
        from nasforge.testing import EvaluatorConformance

        class TestMyEvaluator(EvaluatorConformance):
            @pytest.fixture
            def space_and_evaluator(self):
                space = nf.build("space", "mlp", max_depth=1, widths=[8, 16])
                return space, MyEvaluator(space, epochs=1)

    Metrics named in the evaluator's ``timing_metrics`` (wall-clock measurements) may
    differ between runs; every other metric must be the same for the same arch.
    """

    #: How many archs (seeds 0, 1, ...) each test evaluates.
    archs: ClassVar[int] = 2
    #: The budget passed to ``evaluate`` (None: the evaluator's default).
    budget: ClassVar[float | None] = None

    @pytest.fixture
    def space_and_evaluator(self) -> tuple[Space, Evaluator]:
        """``(space, evaluator)``; override it (an evaluator needs its arguments)."""
        pytest.fail("override the `space_and_evaluator` fixture to return (space, evaluator)")

    def _archs(self, space: Space) -> list[Arch]:
        return [space.sample(seed) for seed in range(self.archs)]

    def _evaluate(self, evaluator: Evaluator, arch: Arch) -> Metrics:
        return evaluate(evaluator, arch, self.budget)

    def test_evaluate_returns_finite_floats(
        self, space_and_evaluator: tuple[Space, Evaluator]
    ) -> None:
        space, evaluator = space_and_evaluator
        for arch in self._archs(space):
            metrics = self._evaluate(evaluator, arch)
            assert isinstance(metrics, dict) and metrics
            for name, value in metrics.items():
                assert isinstance(name, str)
                assert isinstance(value, float) and math.isfinite(value), (name, value)

    def test_metrics_are_the_declared_ones(
        self, space_and_evaluator: tuple[Space, Evaluator]
    ) -> None:
        space, evaluator = space_and_evaluator
        declared = getattr(evaluator, "metrics", None)
        if declared is None:
            pytest.skip("the evaluator declares no metrics")
        for arch in self._archs(space):
            assert sorted(self._evaluate(evaluator, arch)) == sorted(declared)

    def test_same_arch_same_metrics(self, space_and_evaluator: tuple[Space, Evaluator]) -> None:
        space, evaluator = space_and_evaluator
        arch = space.sample(0)
        first = self._evaluate(evaluator, arch)
        again = self._evaluate(evaluator, space.from_key(arch.key))
        assert_same_metrics(first, again, _timing(evaluator))

    def test_measure_is_a_subset_of_the_metrics(
        self, space_and_evaluator: tuple[Space, Evaluator]
    ) -> None:
        space, evaluator = space_and_evaluator
        if not callable(getattr(evaluator, "measure", None)):
            pytest.skip("the evaluator has no measure()")
        timing = _timing(evaluator)
        for arch in self._archs(space):
            measured = evaluator.measure(arch)
            metrics = self._evaluate(evaluator, arch)
            assert isinstance(measured, dict)
            assert set(measured) <= set(metrics), sorted(set(measured) - set(metrics))
            for name, value in measured.items():
                assert isinstance(value, float) and math.isfinite(value), (name, value)
                if name not in timing:
                    assert value == metrics[name], name

    def test_identity_is_json_serialisable(
        self, space_and_evaluator: tuple[Space, Evaluator]
    ) -> None:
        """It goes into a search's journal and is compared when the search resumes."""
        _, evaluator = space_and_evaluator
        identity = evaluator.identity()
        assert isinstance(identity, dict)
        assert json.loads(json.dumps(identity, allow_nan=False)) == identity
        assert evaluator.identity() == identity

    def test_is_an_evaluator(self, space_and_evaluator: tuple[Space, Evaluator]) -> None:
        _, evaluator = space_and_evaluator
        assert isinstance(evaluator, Evaluator)

    def test_pickle_gives_the_same_metrics(
        self, space_and_evaluator: tuple[Space, Evaluator]
    ) -> None:
        space, evaluator = space_and_evaluator
        copy = pickle.loads(pickle.dumps(evaluator))
        assert type(copy) is type(evaluator)
        assert copy.identity() == evaluator.identity()
        with one_torch_thread():
            for arch in self._archs(space):
                assert_same_metrics(
                    self._evaluate(copy, arch), self._evaluate(evaluator, arch), _timing(evaluator)
                )

    def test_same_metrics_in_another_process(
        self, space_and_evaluator: tuple[Space, Evaluator]
    ) -> None:
        """The pickled evaluator gives the same metrics in a spawned process."""
        space, evaluator = space_and_evaluator
        keys = [arch.key for arch in self._archs(space)]
        payload = pickle.dumps((space, evaluator))
        there = run_in_subprocess(evaluate_keys, payload, keys, self.budget)
        with one_torch_thread():
            here = [self._evaluate(evaluator, space.from_key(key)) for key in keys]
        assert len(there) == len(here)
        for theirs, ours in zip(there, here, strict=True):
            assert_same_metrics(theirs, ours, _timing(evaluator))


def evaluate(evaluator: Evaluator, arch: Arch, budget: float | None) -> Metrics:
    """``evaluator.evaluate(arch)``, with ``budget`` when one is given."""
    if budget is None:
        return evaluator.evaluate(arch)
    return evaluator.evaluate(arch, budget)


def evaluate_keys(payload: bytes, keys: Sequence[str], budget: float | None) -> list[Metrics]:
    """The metrics of each arch key under the pickled ``(space, evaluator)`` (what the suite
    runs in a spawned process)."""
    space, evaluator = pickle.loads(payload)
    return [evaluate(evaluator, space.from_key(key), budget) for key in keys]


def assert_same_metrics(first: Metrics, second: Metrics, timing: Sequence[str] = ()) -> None:
    """Same metric names, and the same values for all but the ``timing`` metrics."""
    assert sorted(first) == sorted(second)
    differ = {k: (first[k], second[k]) for k in first if k not in timing and first[k] != second[k]}
    assert not differ, f"metrics differ (first, second): {differ}"


def _timing(evaluator: Any) -> tuple[str, ...]:
    return tuple(getattr(evaluator, "timing_metrics", ()))
