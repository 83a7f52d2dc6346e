"""NSGA-II (``nsga2``), multi-objective evolution, in its steady-state form."""

from __future__ import annotations

import numpy as np

from nasforge.pareto import crowding_distance, non_dominated_sort
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Score, Strategy
from nasforge.validation import check_int, check_probability

__all__ = ["NSGA2"]


@register("strategy", "nsga2")
class NSGA2(Strategy):
    """Steady-state NSGA-II: non-dominated sorting, crowding distance, binary tournaments.

    Scores are tuples of objectives to maximise (plain floats work too: it is then a
    rank-based genetic algorithm). The first ``population_size`` proposals are random. Each
    later proposal picks two parents by binary tournament on (non-domination rank, crowding
    distance) over the population, crosses them over with probability ``crossover_prob``
    (uniform, :meth:`Space.crossover`; otherwise the first parent is copied) and changes
    each parameter of the child with probability ``mutation_prob`` (default ``1 / number of
    parameters``), retrying until the child is unseen. It is *steady-state* (Durillo et al.,
    "On the effect of the steady-state selection scheme in multi-objective genetic
    algorithms", EMO 2009), which suits ask/tell with parallel workers: every told result
    joins the population at once, and when the population exceeds ``population_size`` the
    member of the last front with the smallest crowding distance leaves. Failed trials
    (score None, or an infinite float) rank below every finished one, so they never enter
    the population. The population is a function of the told history, so a state dict
    only stores the history.

    Deb, Pratap, Agarwal & Meyarivan, "A fast and elitist multiobjective genetic algorithm:
    NSGA-II", IEEE Transactions on Evolutionary Computation 2002.

    Example::

        strategy = nf.build("strategy", "nsga2", space=space, seed=0, population_size=20)
        arch = strategy.ask()
        strategy.tell(arch, (accuracy, -latency_ms))   # both to maximise
    """

    name = "nsga2"
    multi_objective = True

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        population_size: int = 20,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
    ) -> None:
        super().__init__(space, seed=seed)
        self.population_size = check_int(population_size, "population_size", low=2)
        self.crossover_prob = check_probability(crossover_prob, "crossover_prob")
        # None: 1 / number of parameters
        self.mutation_prob = check_probability(mutation_prob, "mutation_prob", optional=True)
        self._population: list[tuple[Arch, tuple[float, ...]]] = []
        self._ranking: tuple[np.ndarray, np.ndarray] | None = None  # (rank, crowding) cache

    @property
    def population(self) -> list[tuple[Arch, Score]]:
        """The current population: ``(arch, score)`` pairs, at most ``population_size``."""
        return [(a, s if self._width else s[0]) for a, s in self._population]

    def propose(self) -> Arch:
        if len(self._seen) < self.population_size or not self._population:
            return self.random_unseen()
        for _ in range(32):
            parent = self._tournament()
            if self.rng.random() < self.crossover_prob:
                parent = self.space.crossover(parent, self._tournament(), self.rng)
            rate = self.mutation_prob if self.mutation_prob is not None else 1 / len(parent)
            edits = int(self.rng.binomial(len(parent), rate))
            child = self.space.mutate(parent, self.rng, n=edits) if edits else parent
            if not self.is_seen(child):
                return child
        return self.random_unseen()

    def _tournament(self) -> Arch:
        """Binary tournament between two distinct members: lower rank wins, then larger
        crowding distance, then the first drawn."""
        if len(self._population) == 1:
            return self._population[0][0]
        if self._ranking is None:
            self._ranking = _rank(np.array([s for _, s in self._population]))
        rank, crowding = self._ranking
        i, j = (int(k) for k in self.rng.choice(len(self._population), size=2, replace=False))
        if (rank[j], -crowding[j]) < (rank[i], -crowding[i]):
            i = j
        return self._population[i][0]

    def observe(self, arch: Arch, score: Score) -> None:
        if score is None:
            return
        values = score if isinstance(score, tuple) else (score,)
        if not np.isfinite(values).all():
            return
        self._population.append((arch, values))
        self._ranking = None
        if len(self._population) > self.population_size:
            rank, crowding = _rank(np.array([s for _, s in self._population]))
            last = np.flatnonzero(rank == rank.max())
            del self._population[int(last[np.argmin(crowding[last])])]


def _rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-domination rank and crowding distance (within its front) of every row."""
    rank = np.zeros(len(values), dtype=int)
    crowding = np.zeros(len(values))
    for r, front in enumerate(non_dominated_sort(values)):
        rank[front] = r
        crowding[front] = crowding_distance(values[front])
    return rank, crowding
