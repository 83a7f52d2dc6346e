"""Grid search (``grid``): every grid point once, in a chosen order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Score, Strategy
from nasforge.validation import check_choice, check_int

__all__ = ["GridSearch"]

_ORDERS = ("coordinate", "shuffled", "lexicographic")
_MAX_MATERIALISED = 2_000_000


@register("strategy", "grid")
class GridSearch(Strategy):
    """Grid search: visits the points of :meth:`Space.grid` without repeats.

    Finite parameters contribute every value; float ranges (and integer ranges with more
    than ``resolution`` values) contribute ``resolution`` evenly spaced values. With a budget
    much smaller than the grid (NB201 has 15,625 points) the order decides everything:

    - ``"coordinate"`` (default): one-factor-at-a-time over the grid. Starting from a
      random grid point, it sweeps one grid *line* at a time through the incumbent (every
      grid value of one parameter, the others fixed), moves the incumbent to the best point
      found, and cycles through the parameters; when a full cycle brings no improvement it
      continues from a random grid point not visited yet. Lines through a good point are the
      cheapest way to learn each parameter's effect, so this beats a shuffled grid (and
      random search) whenever parameters matter roughly independently. It is adaptive: the
      order depends on the told scores.
    - ``"shuffled"``: the whole grid in a seeded random order (random search restricted to
      the grid, without replacement).
    - ``"lexicographic"``: the classic nested-loop order, last parameter fastest.

    Tuple (multi-objective) scores are accepted: the coordinate order then moves the
    incumbent to a point that Pareto-dominates it.

    Example::

        strategy = nf.build("strategy", "grid", space=space, seed=0, order="coordinate")
    """

    name = "grid"
    multi_objective = True

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        resolution: int = 5,
        order: str = "coordinate",
    ) -> None:
        super().__init__(space, seed=seed)
        self.resolution = check_int(resolution, "resolution", low=2)
        self.order = check_choice(order, "order", _ORDERS)
        self._values = {p.name: p.grid(resolution) for p in space.params}
        self._points: list[Arch] | None = None  # materialised for shuffled/lexicographic
        self._cursor = 0
        # coordinate order state
        self._incumbent: Arch | None = None
        self._incumbent_score: tuple[float, ...] = ()  # a float score as a 1-tuple
        self._line: list[Arch] = []
        self._param_index = 0
        self._stale_lines = 0

    def _materialise(self) -> list[Arch]:
        if self._points is None:
            points = []
            for i, arch in enumerate(self.space.grid(self.resolution)):
                if i >= _MAX_MATERIALISED:
                    raise ConfigError.invalid(
                        "grid",
                        f">{_MAX_MATERIALISED} points",
                        f"at most {_MAX_MATERIALISED} points for order={self.order!r}",
                        hint="lower resolution, or use order='coordinate' or another strategy",
                    )
                points.append(arch)
            if self.order == "shuffled":
                perm = self.rng.permutation(len(points))
                points = [points[int(i)] for i in perm]
            self._points = points
        return self._points

    def _random_point(self) -> Arch:
        for _ in range(64):
            values: dict[str, Any] = {}
            for p in self.space.params:
                if p.active(values):
                    options = self._values[p.name]
                    values[p.name] = options[int(self.rng.integers(len(options)))]
            arch = self.space.arch(values)
            if not self.is_seen(arch):
                return arch
        return self.random_unseen()

    def propose(self) -> Arch:
        if self.order != "coordinate":
            points = self._materialise()
            while self._cursor < len(points):
                arch = points[self._cursor]
                self._cursor += 1
                if not self.is_seen(arch):
                    return arch
            return self.random_unseen()
        while self._line:
            arch = self._line.pop()
            if not self.is_seen(arch):
                return arch
        if self._incumbent is None or self._stale_lines >= len(self.space.params):
            self._stale_lines = 0
            self._incumbent = None
            self._incumbent_score = ()
            return self._random_point()
        # next line through the incumbent
        for _ in range(len(self.space.params)):
            p = self.space.params[self._param_index % len(self.space.params)]
            self._param_index += 1
            self._stale_lines += 1
            if p.name not in self._incumbent:
                continue
            line = []
            for v in self._values[p.name]:
                values = self._incumbent.to_dict()
                values[p.name] = v
                arch = self.space._make(self.space._complete(values, None))
                if not self.is_seen(arch):
                    line.append(arch)
            if line:
                self._line = line[::-1]
                return self._line.pop()
        self._stale_lines = len(self.space.params)
        return self.propose()

    def observe(self, arch: Arch, score: Score) -> None:
        if self.order != "coordinate" or score is None:
            return
        values = score if isinstance(score, tuple) else (score,)
        if self._incumbent is None or _dominates(values, self._incumbent_score):
            if self._incumbent is not None:
                self._stale_lines = 0  # improvement: a new cycle of lines starts here
            self._incumbent, self._incumbent_score = arch, values

    def extra_state(self) -> dict[str, Any]:
        return {
            "cursor": self._cursor,
            "points": None if self._points is None else [a.key for a in self._points],
            "incumbent": None if self._incumbent is None else self._incumbent.key,
            "incumbent_score": list(self._incumbent_score),
            "line": [a.key for a in self._line],
            "param_index": self._param_index,
            "stale_lines": self._stale_lines,
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._cursor = state["cursor"]
        points = state["points"]
        self._points = None if points is None else [self.space.from_key(k) for k in points]
        inc = state["incumbent"]
        self._incumbent = None if inc is None else self.space.from_key(inc)
        self._incumbent_score = tuple(state["incumbent_score"])
        self._line = [self.space.from_key(k) for k in state["line"]]
        self._param_index = state["param_index"]
        self._stale_lines = state["stale_lines"]


def _dominates(score: tuple[float, ...], other: tuple[float, ...]) -> bool:
    """No worse in every objective and better in one (for 1-tuples: higher)."""
    pairs = list(zip(score, other, strict=True))
    return all(s >= o for s, o in pairs) and any(s > o for s, o in pairs)
