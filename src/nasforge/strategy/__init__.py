"""Ask/tell search strategies: ``random``, ``grid``, ``evolution``, ``bayesian``, ``local``,
and the multi-objective ``nsga2``.

Importing this package does not import torch.
"""

from nasforge.strategy.base import Score, Strategy, StrategyStateError

__all__ = ["Score", "Strategy", "StrategyStateError"]
