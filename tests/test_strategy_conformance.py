"""Every registered strategy passes the conformance suite that plugin authors reuse."""

from __future__ import annotations

import pytest

import nasforge as nf
from nasforge.strategy import Strategy
from nasforge.testing import StrategyConformance


class TestRegisteredStrategies(StrategyConformance):
    @pytest.fixture(params=nf.available("strategy"))
    def factory(self, request: pytest.FixtureRequest):
        name = request.param
        return lambda space, seed: nf.build("strategy", name, space=space, seed=seed)


class _FirstUnseen(Strategy):
    """A plugin-style strategy, built directly (not registered)."""

    name = "first_unseen"

    def _propose(self):
        return self.random_unseen()


class TestPluginAuthorsReuseTheSuite(StrategyConformance):
    @pytest.fixture
    def factory(self):
        return lambda space, seed: _FirstUnseen(space, seed=seed)
