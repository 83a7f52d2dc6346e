"""The ask/tell contract every ``strategy`` plugin follows.

A strategy proposes architectures (:meth:`Strategy.ask`) and learns from results
(:meth:`Strategy.tell`). It never trains, sleeps, owns threads or touches files, so the same
object runs serially, with parallel workers (several ``ask`` calls before any ``tell``),
or replays a journal (``tell`` accepts archs this instance never proposed).

Write your own by subclassing :class:`Strategy` and implementing :meth:`Strategy._propose`
(and, if it learns, :meth:`Strategy._observe`)::

    @nf.register("strategy", "first_choice")
    class FirstChoice(Strategy):
        def _propose(self) -> Arch:
            return self.random_unseen()

Scores are floats to *maximise* (the search loop negates them for ``mode="min"``) or
``None`` for a failed or infeasible trial. Strategies with ``multi_objective = True`` also
accept tuples of floats (every objective to maximise, one length per strategy).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nasforge.errors import ConfigError, NasforgeError
from nasforge.space.base import Arch, Space

__all__ = ["Score", "Strategy", "StrategyStateError"]

logger = logging.getLogger(__name__)

#: What ``tell`` accepts: a float to maximise, a tuple of floats to maximise (strategies with
#: ``multi_objective = True``), or None for a failed/infeasible trial.
Score = float | tuple[float, ...] | None


class StrategyStateError(NasforgeError):
    """A state dict that does not belong to this strategy or space."""


class Strategy:
    """Base class: seeded RNG, the set of seen archs, pending asks and the told history.

    Subclasses implement :meth:`_propose` (return a new arch; the base class guarantees it
    is unseen, falling back to :meth:`random_unseen`) and optionally :meth:`_observe`
    (learn from one told result), :meth:`_extra_state` and :meth:`_load_extra_state`.
    """

    #: Registry name, set by subclasses (used in state dicts and reprs).
    name: str = "strategy"
    #: Whether ``tell`` accepts tuple scores (several objectives, each to maximise).
    multi_objective: bool = False
    #: Whether what ``ask`` proposes depends on what was told (False only for strategies
    #: that ignore scores); the search loop can then refill workers in any order.
    adaptive: bool = True

    def __init__(self, space: Space, *, seed: int = 0) -> None:
        if not isinstance(space, Space):
            raise ConfigError.invalid(
                "space",
                type(space).__name__,
                "a nasforge Space",
                hint='build one with nf.build("space", "nb201") or Space([...])',
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError.invalid("seed", seed, "a non-negative integer")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self._size = space.distinct_size
        self._seen: set[str] = set()  # canonical keys (Space.canonical) of asked/told archs
        self._canonical: dict[str, str] = {}
        self._pending: dict[str, Arch] = {}
        self._history: list[tuple[Arch, Score]] = []
        self._width: int | None = None  # objectives per told score (0 = plain floats)
        self._exhausted_warned = False

    # --- public API -------------------------------------------------------------------------
    def ask(self) -> Arch:
        """Propose the next architecture (never one equivalent to an arch seen before, see
        :meth:`Space.canonical`, unless the space is exhausted). May be called several times
        before any :meth:`tell`."""
        if self.exhausted:
            if not self._exhausted_warned:
                logger.warning("%s: all %s archs were seen; repeating", self.name, self._size)
                self._exhausted_warned = True
            arch = self.space.sample(self.rng)
        else:
            arch = self._propose()
            if self.is_seen(arch):
                arch = self.random_unseen()
        self._seen.add(self.canonical_key(arch))
        self._pending[arch.key] = arch
        return arch

    def tell(self, arch: Arch | Mapping[str, Any] | str, score: Score) -> None:
        """Report the ``score`` (to maximise; ``None`` = failed/infeasible) of ``arch``.

        ``arch`` may be an Arch, a values mapping or a key, and need not have been asked by
        this instance (rebuilding from a history). On a multi-objective strategy ``score``
        may be a tuple (or list) of floats, all of the same length; a tuple with a NaN or
        infinite entry counts as failed.
        """
        arch = self._as_arch(arch)
        score = self._check_score(score)
        self._seen.add(self.canonical_key(arch))
        self._pending.pop(arch.key, None)
        self._history.append((arch, score))
        self._observe(arch, score)

    @classmethod
    def from_history(
        cls,
        space: Space,
        history: Iterable[tuple[Arch | Mapping[str, Any] | str, Score]],
        *,
        seed: int = 0,
        **options: Any,
    ) -> Strategy:
        """A fresh strategy that has been told every ``(arch, score)`` of ``history``."""
        strategy = cls(space, seed=seed, **options)
        for arch, score in history:
            strategy.tell(arch, score)
        return strategy

    @property
    def history(self) -> list[tuple[Arch, Score]]:
        """Every told ``(arch, score)`` in order."""
        return list(self._history)

    @property
    def pending(self) -> list[Arch]:
        """Archs asked but not yet told."""
        return list(self._pending.values())

    @property
    def exhausted(self) -> bool:
        """True when a finite space has no unseen (non-equivalent) architecture left."""
        return self._size is not None and len(self._seen) >= self._size

    def canonical_key(self, arch: Arch) -> str:
        """The key of ``arch``'s canonical form (:meth:`Space.canonical`), cached."""
        key = self._canonical.get(arch.key)
        if key is None:
            key = self._canonical[arch.key] = self.space.canonical(arch).key
        return key

    def is_seen(self, arch: Arch) -> bool:
        """Whether ``arch`` or an equivalent arch was asked or told."""
        return self.canonical_key(arch) in self._seen

    def best(self) -> tuple[Arch, float] | None:
        """The told arch with the highest score, or None before any finished trial.

        Raises :class:`NasforgeError` once tuple scores were told: several objectives have
        no single best, use the Pareto front (:func:`nasforge.nas.pareto.pareto_front`).
        """
        if self._width:
            raise NasforgeError(
                f"{self.name}: best() is undefined for multi-objective (tuple) scores. "
                "HINT: take the Pareto front, e.g. nasforge.nas.pareto.pareto_front("
                "[s for _, s in strategy.history if s is not None])"
            )
        scored = [(a, s) for a, s in self._history if isinstance(s, float)]
        return max(scored, key=lambda item: item[1]) if scored else None

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: options, RNG state, history, pending asks, seen keys."""
        told = {self.canonical_key(a) for a, _ in self._history}
        pending = {self.canonical_key(a) for a in self._pending.values()}
        return {
            "strategy": self.name,
            "seed": self.seed,
            "space": self.space.name,
            "rng": self.rng.bit_generator.state,
            "history": [[a.key, s] for a, s in self._history],
            "pending": list(self._pending),
            "seen_untold": sorted(self._seen - told - pending),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output into this (freshly constructed) strategy."""
        if state.get("strategy") != self.name or state.get("space") != self.space.name:
            raise StrategyStateError(
                f"state dict is for strategy {state.get('strategy')!r} on space "
                f"{state.get('space')!r}, not {self.name!r} on {self.space.name!r}"
            )
        type(self).__init__(self, self.space, seed=state["seed"], **self._options())
        for key, score in state["history"]:
            self.tell(key, score)
        for key in state["pending"]:
            arch = self.space.from_key(key)
            self._pending[key] = arch
            self._seen.add(self.canonical_key(arch))
        self._seen.update(state["seen_untold"])
        self.rng.bit_generator.state = state["rng"]
        self._load_extra_state(state["extra"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed})"

    # --- helpers for subclasses -------------------------------------------------------------
    def random_unseen(self) -> Arch:
        """A uniformly random arch not seen yet, nor equivalent to a seen one (any arch once
        the space is exhausted)."""
        for _ in range(64):
            arch = self.space.sample(self.rng)
            if not self.is_seen(arch):
                return arch
        if self._size is not None:  # nearly exhausted: enumerate what is left
            left = [
                a for a in self.space.grid(max(2, self._max_param_size())) if not self.is_seen(a)
            ]
            if left:
                return left[int(self.rng.integers(len(left)))]
        return self.space.sample(self.rng)

    def _check_score(self, score: Any) -> Score:
        """Validate a told score; NaN (or a tuple with a NaN/inf entry) becomes None."""
        if score is None:
            return None
        if not isinstance(score, (tuple, list)):
            value = _check_number(score, score, "a float to maximise, or None for a failure")
            if math.isnan(value):  # a failure, whatever the number of objectives
                return None
            self._check_width(0, score)
            return value
        if not self.multi_objective:
            raise ConfigError.invalid(
                "score",
                score,
                f"a single float (or None) for strategy {self.name!r}",
                hint="tuple (multi-objective) scores need one of the strategies "
                + ", ".join(_multi_objective_strategies()),
            )
        values = tuple(_check_number(v, score, "a non-empty tuple of floats") for v in score)
        if not values:
            raise ConfigError.invalid("score", score, "a non-empty tuple of floats")
        self._check_width(len(values), score)
        return values if all(math.isfinite(v) for v in values) else None

    def _check_width(self, width: int, score: Any) -> None:
        """All scores told to one strategy have the same number of objectives."""
        if self._width is None:
            self._width = width
        elif width != self._width:
            expected = f"a tuple of {self._width} floats" if self._width else "a single float"
            raise ConfigError.invalid(
                "score",
                score,
                f"{expected} (or None), like the scores told before",
                hint="every score told to one strategy has the same number of objectives",
            )

    def _max_param_size(self) -> int:
        return max((p.size or 2) for p in self.space.params)

    def _as_arch(self, arch: Arch | Mapping[str, Any] | str) -> Arch:
        if isinstance(arch, str):
            return self.space.from_key(arch)
        if isinstance(arch, Arch):
            if arch.key in self._pending:
                return arch
            made = self.space.arch(arch)
            return made
        return self.space.arch(arch)

    # --- what subclasses implement ----------------------------------------------------------
    def _propose(self) -> Arch:
        raise NotImplementedError(f"{type(self).__name__} must implement _propose()")

    def _observe(self, arch: Arch, score: Score) -> None:
        """Learn from one told result (default: nothing beyond the shared history)."""

    def _options(self) -> dict[str, Any]:
        """Constructor options (besides space and seed), to rebuild in load_state_dict."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved (called after the history is replayed)."""


def _check_number(value: Any, score: Any, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigError.invalid("score", score, expected)
    return float(value)


def _multi_objective_strategies() -> list[str]:
    """Registered strategies whose ``multi_objective`` attribute is true."""
    from nasforge.registry import available, get

    return [n for n in available("strategy") if getattr(get("strategy", n), "multi_objective", 0)]
