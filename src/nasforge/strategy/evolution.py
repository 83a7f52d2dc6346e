"""Regularized (aging) evolution (``evolution``), Real et al. 2019."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Score, Strategy

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
        if not isinstance(population_size, int) or population_size < 2:
            raise ConfigError.invalid("population_size", population_size, "an integer >= 2")
        if not isinstance(sample_size, int) or not 1 <= sample_size <= population_size:
            raise ConfigError.invalid(
                "sample_size", sample_size, f"an integer in [1, population_size={population_size}]"
            )
        if not 0.0 <= crossover_prob <= 1.0:
            raise ConfigError.invalid("crossover_prob", crossover_prob, "a probability in [0, 1]")
        if not isinstance(mutation_edits, int) or mutation_edits < 1:
            raise ConfigError.invalid("mutation_edits", mutation_edits, "an integer >= 1")
        self.population_size = population_size
        self.sample_size = sample_size
        self.crossover_prob = float(crossover_prob)
        self.mutation_edits = mutation_edits
        self._population: deque[tuple[Arch, float]] = deque(maxlen=population_size)

    def _options(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "sample_size": self.sample_size,
            "crossover_prob": self.crossover_prob,
            "mutation_edits": self.mutation_edits,
        }

    def _tournament(self) -> Arch:
        members = list(self._population)
        picks = self.rng.choice(
            len(members), size=min(self.sample_size, len(members)), replace=False
        )
        return max((members[int(i)] for i in picks), key=lambda m: m[1])[0]

    def _propose(self) -> Arch:
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

    def _observe(self, arch: Arch, score: Score) -> None:
        if score is not None:
            self._population.append((arch, score))

    def _extra_state(self) -> dict[str, Any]:
        return {"population": [[a.key, s] for a, s in self._population]}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._population.clear()
        for key, score in state["population"]:
            self._population.append((self.space.from_key(key), score))
