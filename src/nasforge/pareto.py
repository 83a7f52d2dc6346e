"""Pareto fronts, crowding distance and hypervolume for multi-objective search.

Pure NumPy. Points are an ``(n, m)`` array-like: one row per candidate, one column per
objective. ``modes`` gives ``"max"`` or ``"min"`` per objective (default: all ``"max"``).
Point ``a`` *dominates* ``b`` when it is at least as good in every objective and better in
one::

    >>> points = [[0.9, 5.0], [0.8, 2.0], [0.7, 3.0]]  # accuracy (max), size (min)
    >>> pareto_front(points, modes=["max", "min"])
    [0, 1]
    >>> hypervolume(points, reference=[0.0, 10.0], modes=["max", "min"])
    6.9
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import ConfigError

__all__ = ["crowding_distance", "hypervolume", "non_dominated_sort", "pareto_front"]

_MODES = ("max", "min")


def non_dominated_sort(points: Any, modes: Sequence[str] | None = None) -> list[list[int]]:
    """Split the points into fronts of indices: front 0 is non-dominated, front ``k`` is
    non-dominated once fronts ``0..k-1`` are removed. Indices are in input order within a
    front; equal points share a front.

    Fast non-dominated sort of NSGA-II (Deb, Pratap, Agarwal & Meyarivan, "A fast and
    elitist multiobjective genetic algorithm: NSGA-II", IEEE TEVC 2002), ``O(m n^2)``.
    """
    values = _oriented(points, modes)
    n = len(values)
    if n == 0:
        return []
    at_least = np.ones((n, n), dtype=bool)
    better = np.zeros((n, n), dtype=bool)
    for column in values.T:
        at_least &= column[:, None] >= column[None, :]
        better |= column[:, None] > column[None, :]
    dominates = at_least & better  # dominates[i, j]: point i dominates point j
    count = dominates.sum(axis=0)
    fronts = []
    current = np.flatnonzero(count == 0)
    while current.size:
        fronts.append(current.tolist())
        count = count - dominates[current].sum(axis=0)
        count[current] = -1
        current = np.flatnonzero(count == 0)
    return fronts


def pareto_front(points: Any, modes: Sequence[str] | None = None) -> list[int]:
    """Indices of the non-dominated points, in input order (duplicates of a non-dominated
    point are all kept)."""
    fronts = non_dominated_sort(points, modes)
    return fronts[0] if fronts else []


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II crowding distance of each point of one front (Deb et al. 2002).

    Per objective, the points are sorted; the two extremes get an infinite distance and the
    others add the gap between their neighbours, divided by the objective's range. An
    objective on which all points are equal adds nothing. The result does not depend on the
    direction (max or min) of the objectives.
    """
    values = _as_array(points, "points")
    if not np.isfinite(values).all():
        raise ConfigError.invalid("points", "non-finite values", "finite numbers")
    distance = np.zeros(len(values))
    if len(values) <= 2:
        distance[:] = np.inf
        return distance
    for column in values.T:
        order = np.argsort(column, kind="stable")
        ranged = column[order[-1]] - column[order[0]]
        if ranged == 0:
            continue
        distance[order[0]] = distance[order[-1]] = np.inf
        gaps = (column[order[2:]] - column[order[:-2]]) / ranged
        distance[order[1:-1]] += gaps
    return distance


def hypervolume(points: Any, reference: Any, modes: Sequence[str] | None = None) -> float:
    """Exact volume of the region dominated by the points and bounded by ``reference``.

    Points that do not dominate the reference (worse than it in some objective) add
    nothing. Two objectives use a sweep (``O(n log n)``); more use exact slicing along the
    last objective (HSO, While, Hingston, Barone & Huband, IEEE TEVC 2006), fine for a
    few hundred points in 3-D.
    """
    ref = _as_array(reference, "reference", ndim=1)
    values = _oriented(points, modes, width=len(ref))
    if values.shape[1] != len(ref):
        raise ConfigError.invalid(
            "reference",
            reference,
            f"a point with {values.shape[1]} objective values (one per column of points)",
        )
    if not np.isfinite(values).all() or not np.isfinite(ref).all():
        raise ConfigError.invalid(
            "points and reference", "non-finite values", "finite numbers for hypervolume"
        )
    signs = _signs(modes, len(ref))
    gains = values - signs * ref  # > 0 in every column for a point dominating the reference
    gains = gains[(gains > 0).all(axis=1)]
    return float(_volume(gains)) if len(gains) else 0.0


def _volume(boxes: np.ndarray) -> float:
    """Volume of the union of boxes ``[0, b]`` for the rows ``b`` of ``boxes`` (all > 0)."""
    if boxes.shape[1] == 1:
        return float(boxes.max())
    if boxes.shape[1] == 2:
        order = np.argsort(-boxes[:, 0])  # widest first (ties add the same area in any order)
        width, height = boxes[order, 0], boxes[order, 1]
        below = np.concatenate(([0.0], np.maximum.accumulate(height)[:-1]))
        return float(np.sum(width * np.clip(height - below, 0.0, None)))
    order = np.argsort(-boxes[:, -1])  # deepest first; ties make empty slabs
    boxes = boxes[order]
    depth = np.append(boxes[:, -1], 0.0)
    total = 0.0
    for k in range(len(boxes)):
        slab = depth[k] - depth[k + 1]
        if slab > 0:
            total += slab * _volume(boxes[: k + 1, :-1])
    return total


def _as_array(values: Any, field: str, ndim: int = 2) -> np.ndarray:
    shape = "an (n, m) array of objective values" if ndim == 2 else "a 1-D sequence of numbers"
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError.invalid(field, values, shape) from None
    if ndim == 2 and array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 0)
    if array.ndim != ndim or (ndim == 1 and array.size == 0):
        raise ConfigError.invalid(field, values, shape)
    if np.isnan(array).any():
        raise ConfigError.invalid(field, "NaN values", "numbers without NaN")
    return array


def _signs(modes: Sequence[str] | None, width: int) -> np.ndarray:
    if modes is None:
        return np.ones(width)
    if isinstance(modes, str) or len(modes) != width or any(m not in _MODES for m in modes):
        raise ConfigError.invalid(
            "modes",
            modes,
            f"a sequence of {width} values, each 'max' or 'min' (one per objective)",
            hint="e.g. modes=['max', 'min'] for accuracy and latency",
        )
    return np.array([1.0 if m == "max" else -1.0 for m in modes])


def _oriented(points: Any, modes: Sequence[str] | None, width: int | None = None) -> np.ndarray:
    """Points as a float array with every objective turned into one to maximise."""
    values = _as_array(points, "points")
    if values.shape == (0, 0):
        values = values.reshape(0, width if width is not None else len(modes or ()))
    return values * _signs(modes, values.shape[1])
