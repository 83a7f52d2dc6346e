"""Random search (``random``): uniform sampling, without replacement on finite spaces."""

from __future__ import annotations

from nasforge.registry import register
from nasforge.space.base import Arch
from nasforge.strategy.base import Strategy

__all__ = ["RandomSearch"]


@register("strategy", "random")
class RandomSearch(Strategy):
    """Uniform random search without replacement (Bergstra & Bengio, JMLR 2012).

    The baseline every other strategy must beat; on finite spaces no arch is proposed twice
    until the space is exhausted. Scores are ignored, so tuple (multi-objective) scores are
    accepted.

    Example::

        strategy = nf.build("strategy", "random", space=space, seed=0)
        arch = strategy.ask(); strategy.tell(arch, 0.9)
    """

    adaptive = False

    name = "random"
    multi_objective = True

    def propose(self) -> Arch:
        return self.random_unseen()
