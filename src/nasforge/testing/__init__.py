"""Test suites that plugin authors reuse (needs pytest).

Subclass :class:`StrategyConformance` in your own tests to check a strategy against the
contract every nasforge strategy keeps::

    from nasforge.testing import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        strategy = "mine"                 # a registered name ...
        options = {"population": 8}       # ... and constructor options

(or override the ``factory`` fixture to build it yourself).
"""

from nasforge.testing.strategy import (
    EquivalenceSpace,
    StrategyConformance,
    conformance_spaces,
    synthetic_score,
)

__all__ = ["EquivalenceSpace", "StrategyConformance", "conformance_spaces", "synthetic_score"]
