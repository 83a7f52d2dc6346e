"""Local search (``local``): hill climbing over neighbours with restarts, White et al. 2021."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Score, Strategy
from nasforge.validation import check_choice, check_int, check_number

__all__ = ["LocalSearch"]

_RESTARTS = ("random", "perturb")
_ORDERS = ("model", "random")


@register("strategy", "local")
class LocalSearch(Strategy):
    """Hill climbing over :meth:`Space.neighbors` with first improvement and restarts.

    Starts from the best of ``n_init`` random archs, evaluates its unseen neighbours and
    moves as soon as one is better (first improvement). With ``order="model"`` (default) the
    neighbours are tried best-predicted first: a ridge regression (penalty ``ridge``) on the
    encoding of the *canonical* archs (:meth:`Space.canonical`, so dead parameters do not
    blur the features) fitted to the score ranks of every result so far; with
    ``order="random"`` they are tried in random order. At a local optimum
    (every neighbour evaluated, none better) it restarts: ``restart="perturb"`` (default)
    jumps to the best arch seen so far changed in ``perturb_edits`` random parameters (an
    iterated local search), ``restart="random"`` starts again from ``n_init`` random archs.
    (White, Nolen, Ravi & Savani, "Exploring the Loss Landscape in Neural Architecture
    Search", UAI 2021, find this simple method among the strongest on NAS-Bench-201.)

    Example::

        strategy = nf.build("strategy", "local", space=space, seed=0, n_init=5)
    """

    name = "local"

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        n_init: int = 5,
        restart: str = "perturb",
        perturb_edits: int = 2,
        order: str = "model",
        ridge: float = 10.0,
    ) -> None:
        super().__init__(space, seed=seed)
        self.n_init = check_int(n_init, "n_init", low=1)
        self.restart = check_choice(restart, "restart", _RESTARTS)
        self.perturb_edits = check_int(perturb_edits, "perturb_edits", low=1)
        self.order = check_choice(order, "order", _ORDERS)
        self.ridge = check_number(ridge, "ridge", low=0, low_open=True)
        self._codes: dict[str, np.ndarray] = {}
        self._center: Arch | None = None
        self._center_score = float("-inf")
        self._queue: list[Arch] = []
        self._starts: list[str] = []  # keys of the current (re)start batch
        self._scores: dict[str, float] = {}
        self._climbed = False

    def _encode(self, arch: Arch) -> np.ndarray:
        code = self._codes.get(arch.key)
        if code is None:
            code = self._codes[arch.key] = self.space.encode(self.space.canonical(arch))
        return code

    def _rank_queue(self) -> None:
        """Sort the neighbour queue so that the best-predicted arch is popped first."""
        told = [(a, s) for a, s in self._history if s is not None]
        if self.order != "model" or len(self._queue) < 2 or len(told) < 2:
            return
        x = np.stack([self._encode(a) for a, _ in told])
        scores = np.array([s for _, s in told])
        y = scores.argsort(kind="stable").argsort() / len(scores)
        y -= y.mean()
        weights = np.linalg.solve(x.T @ x + self.ridge * np.eye(x.shape[1]), x.T @ y)
        predicted = np.stack([self._encode(a) for a in self._queue]) @ weights
        self._queue = [self._queue[int(i)] for i in np.argsort(predicted, kind="stable")]

    def _move(self, center: Arch, score: float) -> None:
        self._center, self._center_score = center, score
        self._climbed = True
        self._starts = []
        queue = [a for a in self.space.neighbors(center) if not self.is_seen(a)]
        order = self.rng.permutation(len(queue))
        self._queue = [queue[int(i)] for i in order]

    def propose(self) -> Arch:
        self._rank_queue()
        while self._queue:
            arch = self._queue.pop()
            if not self.is_seen(arch):
                return arch
        if self._center is None:  # (re)starting: evaluate the start batch, then climb
            told = [k for k in self._starts if k in self._scores]
            batch = self.n_init if self.restart == "random" or not self._climbed else 1
            if len(self._starts) < batch:
                return self._start()
            if told:
                best = max(told, key=self._scores.__getitem__)
                self._move(self.space.from_key(best), self._scores[best])
                return self.propose() if self._queue else self._restart()
            return self.random_unseen()  # start batch still pending (parallel workers)
        return self._restart()

    def _start(self) -> Arch:
        if self.restart == "perturb" and self._scores:
            best = max(self._scores, key=self._scores.__getitem__)
            for _ in range(16):
                arch = self.space.mutate(self.space.from_key(best), self.rng, n=self.perturb_edits)
                if not self.is_seen(arch):
                    break
            else:
                arch = self.random_unseen()
        else:
            arch = self.random_unseen()
        self._starts.append(arch.key)
        return arch

    def _restart(self) -> Arch:
        self._center = None
        self._center_score = float("-inf")
        self._starts = []
        return self._start()

    def observe(self, arch: Arch, score: Score) -> None:
        if score is None:
            return
        self._scores[arch.key] = score
        if self._center is not None and score > self._center_score:
            self._move(arch, score)  # first improvement

    def extra_state(self) -> dict[str, Any]:
        return {
            "center": None if self._center is None else self._center.key,
            "center_score": None if self._center is None else self._center_score,
            "queue": [a.key for a in self._queue],
            "starts": list(self._starts),
            "climbed": self._climbed,
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        center = state["center"]
        self._center = None if center is None else self.space.from_key(center)
        score = state["center_score"]
        self._center_score = float("-inf") if score is None else score
        self._queue = [self.space.from_key(k) for k in state["queue"]]
        self._starts = list(state["starts"])
        self._climbed = bool(state["climbed"])
