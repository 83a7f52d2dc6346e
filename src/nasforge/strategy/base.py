"""The ask/tell contract every ``strategy`` plugin follows.

A strategy proposes architectures (:meth:`Strategy.ask`) and learns from results
(:meth:`Strategy.tell`). It never trains, sleeps, owns threads or touches files, so the same
object runs serially, with parallel workers (several ``ask`` calls before any ``tell``),
or replays a journal (``tell`` accepts archs this instance never proposed).

Write your own by subclassing :class:`Strategy` and implementing :meth:`Strategy.propose`
(and, if it learns, :meth:`Strategy.observe`)::

    @nf.register("strategy", "first_choice")
    class FirstChoice(Strategy):
        def propose(self) -> Arch:
            return self.random_unseen()

Constructor options are recorded automatically (:attr:`Strategy.options`), so a state dict
rebuilds a strategy with all of them; state beyond the told history goes through
:meth:`Strategy.extra_state` and :meth:`Strategy.load_extra_state`.

Scores are floats to *maximise* (the search loop negates them for ``mode="min"``) or
``None`` for a failed or infeasible trial. Strategies with ``multi_objective = True`` also
accept tuples of floats (every objective to maximise, one length per strategy).
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nasforge._options import Configurable
from nasforge.errors import ConfigError, NasforgeError, StrategyStateError
from nasforge.space.base import Arch, Space
from nasforge.validation import check_int

__all__ = ["Score", "Strategy"]

logger = logging.getLogger(__name__)

#: What ``tell`` accepts: a float to maximise, a tuple of floats to maximise (strategies with
#: ``multi_objective = True``), or None for a failed/infeasible trial.
Score = float | tuple[float, ...] | None


class Strategy(Configurable):
    """Base class: seeded RNG, the set of seen archs, pending asks and the told history.

    Subclasses implement :meth:`propose` (return a new arch; the base class guarantees it
    is unseen, falling back to :meth:`random_unseen`) and optionally :meth:`observe`
    (learn from one told result), :meth:`extra_state` and :meth:`load_extra_state`. Their
    constructors take ``space`` and ``seed`` first and keyword-only options after.
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
        self.space = space
        self.seed = check_int(seed, "seed", low=0)
        self.rng = np.random.default_rng(self.seed)
        self._size = space.distinct_size
        self._seen: set[str] = set()  # canonical keys (Space.canonical) of asked/told archs
        self._canonical: dict[str, str] = {}
        self._pending: dict[str, Arch] = {}
        self._history: list[tuple[Arch, Score]] = []
        self._width: int | None = None  # objectives per told score (0 = plain floats)
        self._exhausted_warned = False
        self._warm: list[Arch] = []  # archs random_unseen() draws first (warm_start)

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
            arch = self.propose()
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
        self.observe(arch, score)

    def warm_start(self, archs: Iterable[Arch | Mapping[str, Any] | str]) -> None:
        """Begin with ``archs``: the draws this strategy would make at random
        (:meth:`random_unseen`, which every built-in strategy starts from) take them
        first, in order, skipping any seen by then.

        Typically the best cells of a pool ranked by a zero-cost proxy::

            strategy.warm_start(nf.build("evaluator", "synflow", space=space).rank(pool=500)[:10])
        """
        if isinstance(archs, str | Mapping | Arch):
            raise ConfigError.invalid("warm_start", archs, "a list of archs (or keys)")
        self._warm.extend(self._as_arch(a) for a in archs)

    @property
    def warm_pending(self) -> list[Arch]:
        """The warm-start archs not drawn yet (:meth:`warm_start`)."""
        return list(self._warm)

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
    def options(self) -> dict[str, Any]:
        """The constructor options besides ``space`` and ``seed`` (recorded automatically)."""
        return {k: v for k, v in self._constructor_options.items() if k not in ("space", "seed")}

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
        no single best, use the Pareto front (:func:`nasforge.pareto.pareto_front`).
        """
        if self._width:
            raise NasforgeError(
                f"{self.name}: best() is undefined for multi-objective (tuple) scores. "
                "HINT: take the Pareto front, e.g. nasforge.pareto.pareto_front("
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
            "options": self.options,
            "space": self.space.name,
            "rng": self.rng.bit_generator.state,
            "history": [[a.key, s] for a, s in self._history],
            "pending": list(self._pending),
            "seen_untold": sorted(self._seen - told - pending),
            "warm": [a.key for a in self._warm],
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output into this strategy, options included."""
        if state.get("strategy") != self.name or state.get("space") != self.space.name:
            raise StrategyStateError(
                f"state dict is for strategy {state.get('strategy')!r} on space "
                f"{state.get('space')!r}, not {self.name!r} on {self.space.name!r}"
            )
        options = dict(state.get("options", self.options))
        type(self).__init__(self, self.space, seed=state["seed"], **options)
        self._constructor_options = {"space": self.space, "seed": state["seed"], **options}
        for key, score in state["history"]:
            self.tell(key, score)
        for key in state["pending"]:
            arch = self.space.from_key(key)
            self._pending[key] = arch
            self._seen.add(self.canonical_key(arch))
        self._seen.update(state["seen_untold"])
        self._warm = [self.space.from_key(key) for key in state.get("warm", ())]
        self.rng.bit_generator.state = state["rng"]
        self.load_extra_state(state["extra"])

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed}{options})"

    # --- helpers for subclasses -------------------------------------------------------------
    def random_unseen(self) -> Arch:
        """A uniformly random arch not seen yet, nor equivalent to a seen one (any arch once
        the space is exhausted). Archs given to :meth:`warm_start` come first."""
        while self._warm:
            arch = self._warm.pop(0)
            if not self.is_seen(arch):
                return arch
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
    def propose(self) -> Arch:
        """A new architecture to try; :meth:`ask` replaces one that was already seen."""
        raise NotImplementedError(f"{type(self).__name__} must implement propose()")

    def observe(self, arch: Arch, score: Score) -> None:
        """Learn from one told result (default: nothing beyond the shared history)."""

    def extra_state(self) -> dict[str, Any]:
        """JSON-able state beyond the told history and RNG (default: none)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved (called after the history is replayed)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for old, new in _RENAMED_HOOKS.items():
            if old in cls.__dict__ and new not in cls.__dict__:
                warnings.warn(
                    f"{cls.__qualname__}.{old} is deprecated: implement {new} instead (the "
                    "hooks became public in nasforge 0.2)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                setattr(cls, new, cls.__dict__[old])


#: Hooks renamed when they became public: old name -> new name.
_RENAMED_HOOKS = {
    "_propose": "propose",
    "_observe": "observe",
    "_extra_state": "extra_state",
    "_load_extra_state": "load_extra_state",
}


def _check_number(value: Any, score: Any, expected: str) -> float:
    """A score as a float; NaN and infinities pass (they mark failures)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError.invalid("score", score, expected)
    return float(value)


def _multi_objective_strategies() -> list[str]:
    """Registered strategies whose ``multi_objective`` attribute is true."""
    from nasforge.registry import available, get

    return [n for n in available("strategy") if getattr(get("strategy", n), "multi_objective", 0)]
