"""Ask/tell search strategies: ``random``, ``grid``, ``evolution``, ``bayesian``, ``local``,
``reinforce``, and the multi-objective ``nsga2``.

Every built-in is importable as a class (``from nasforge.strategy import
RegularizedEvolution``) as well as by name (``nf.build("strategy", "evolution", ...)``).
The classes load on first use (``bayesian`` brings SciPy), and importing this package
never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge._lazy import lazy_exports
from nasforge.errors import StrategyStateError
from nasforge.strategy.base import Score, Strategy

_BUILTINS: dict[str, str] = {
    "BayesianOptimization": "nasforge.strategy.bayesian",
    "GridSearch": "nasforge.strategy.grid",
    "LocalSearch": "nasforge.strategy.local",
    "NSGA2": "nasforge.strategy.nsga2",
    "RandomSearch": "nasforge.strategy.random",
    "RegularizedEvolution": "nasforge.strategy.evolution",
    "Reinforce": "nasforge.strategy.reinforce",
}

__all__ = [
    "NSGA2",
    "BayesianOptimization",
    "GridSearch",
    "LocalSearch",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Score",
    "Strategy",
    "StrategyStateError",
]

if TYPE_CHECKING:
    from nasforge.strategy.bayesian import BayesianOptimization
    from nasforge.strategy.evolution import RegularizedEvolution
    from nasforge.strategy.grid import GridSearch
    from nasforge.strategy.local import LocalSearch
    from nasforge.strategy.nsga2 import NSGA2
    from nasforge.strategy.random import RandomSearch
    from nasforge.strategy.reinforce import Reinforce

__getattr__, __dir__ = lazy_exports(__name__, globals(), _BUILTINS)
