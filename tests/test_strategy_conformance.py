"""Every registered strategy passes the conformance suite that plugin authors reuse."""

from __future__ import annotations

from typing import Any

import pytest

import nasforge as nf
from nasforge.space import Arch
from nasforge.strategy import Strategy
from nasforge.testing import StrategyConformance

#: Options other than the defaults for the built-ins, so that the state-dict test sees each
#: one restored (and small candidate pools keep Bayesian optimisation quick). A new
#: built-in runs with its defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "bayesian": {"n_init": 4, "n_local": 20, "n_mutations": 20, "n_random": 20, "refit_every": 10},
    "evolution": {"population_size": 10, "sample_size": 3, "crossover_prob": 0.3},
    "grid": {"resolution": 4},
    "local": {"n_init": 3, "restart": "random", "order": "random"},
    "nsga2": {"population_size": 10, "crossover_prob": 0.8},
    "reinforce": {"lr": 0.5, "baseline_momentum": 0.8, "bins": 4},
}


class TestRegisteredStrategies(StrategyConformance):
    @pytest.fixture(params=nf.available("strategy"))
    def factory(self, request: pytest.FixtureRequest):
        name = request.param
        options = OPTIONS.get(name, {})
        return lambda space, seed: nf.build("strategy", name, space=space, seed=seed, **options)


class _FirstUnseen(Strategy):
    """A plugin-style strategy, built directly (not registered)."""

    name = "first_unseen"

    def propose(self) -> Arch:
        return self.random_unseen()


class TestPluginAuthorsReuseTheSuite(StrategyConformance):
    @pytest.fixture
    def factory(self):
        return lambda space, seed: _FirstUnseen(space, seed=seed)
