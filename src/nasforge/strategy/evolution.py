"""Regularized (aging) evolution (``evolution``), Real et al. 2019."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Score, Strategy
from nasforge.validation import check_int, check_probability

__all__ = ["RegularizedEvolution"]


@register("strategy", "evolution")
class RegularizedEvolution(Strategy):
    """Regularized evolution: tournament selection, mutation, optional crossover, aging.

    The first ``population_size`` proposals are random. Each later proposal takes the best
    of ``sample_size`` random members of the population as parent (with probability
    ``crossover_prob`` it is crossed over with a second tournament winner), mutates it, and
    the oldest member leaves the population when a new result arrives
    (Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture
    Search", AAAI 2019). Failed trials (score None) never enter the population.

    Example::

        strategy = nf.build("strategy", "evolution", space=space, seed=0,
                            population_size=20, sample_size=5, crossover_prob=0.2)
    """

    name = "evolution"

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        population_size: int = 20,
        sample_size: int = 5,
        crossover_prob: float = 0.0,
        mutation_edits: int = 1,
    ) -> None:
        super().__init__(space, seed=seed)
        self.population_size = check_int(population_size, "population_size", low=2)
        self.sample_size = check_int(
            sample_size,
            "sample_size",
            low=1,
            high=self.population_size,
            hint=f"at most population_size={self.population_size}",
        )
        self.crossover_prob = check_probability(crossover_prob, "crossover_prob")
        self.mutation_edits = check_int(mutation_edits, "mutation_edits", low=1)
        self._population: deque[tuple[Arch, float]] = deque(maxlen=population_size)

    def _tournament(self) -> Arch:
        members = list(self._population)
        picks = self.rng.choice(
            len(members), size=min(self.sample_size, len(members)), replace=False
        )
        return max((members[int(i)] for i in picks), key=lambda m: m[1])[0]

    def propose(self) -> Arch:
        if len(self._population) < self.population_size and len(self._seen) < self.population_size:
            return self.random_unseen()
        if not self._population:  # every trial so far failed
            return self.random_unseen()
        for _ in range(32):
            parent = self._tournament()
            if self.crossover_prob and self.rng.random() < self.crossover_prob:
                parent = self.space.crossover(parent, self._tournament(), self.rng)
            child = self.space.mutate(parent, self.rng, n=self.mutation_edits)
            if not self.is_seen(child):
                return child
        return self.random_unseen()

    def observe(self, arch: Arch, score: Score) -> None:
        if score is not None:
            self._population.append((arch, score))

    def extra_state(self) -> dict[str, Any]:
        return {"population": [[a.key, s] for a, s in self._population]}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._population.clear()
        for key, score in state["population"]:
            self._population.append((self.space.from_key(key), score))
