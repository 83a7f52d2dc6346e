"""Pareto fronts, crowding distance and hypervolume (nasforge.pareto), including exact
refusals, empty and one-objective inputs, and small fronts worked out by hand."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.pareto import crowding_distance, hypervolume, non_dominated_sort, pareto_front


def dominates(a, b) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def point_sets(max_value: int = 6, min_dims: int = 1, max_dims: int = 4, max_points: int = 25):
    """Lists of integer points (many ties and duplicates) of one random dimension."""
    return st.integers(min_dims, max_dims).flatmap(
        lambda m: st.lists(
            st.lists(st.integers(0, max_value), min_size=m, max_size=m),
            min_size=1,
            max_size=max_points,
        )
    )


# --- fronts ---------------------------------------------------------------------------------
def test_non_dominated_sort_on_a_known_set():
    points = [[1, 5], [2, 4], [3, 3], [1, 1], [2, 2], [0, 0], [3, 3]]
    assert non_dominated_sort(points) == [[0, 1, 2, 6], [4], [3], [5]]
    assert pareto_front(points) == [0, 1, 2, 6]  # duplicates of a front point both kept


def test_min_modes_and_mixed_modes():
    # accuracy (max) against latency (min)
    points = [[0.9, 30.0], [0.8, 10.0], [0.85, 40.0], [0.7, 10.0]]
    assert pareto_front(points, modes=["max", "min"]) == [0, 1]
    assert pareto_front(points, modes=["min", "min"]) == [3]
    assert non_dominated_sort(points, modes=["max", "min"]) == [[0, 1], [2, 3]]


def test_empty_input():
    assert non_dominated_sort([]) == []
    assert pareto_front(np.zeros((0, 2))) == []
    assert crowding_distance([]).shape == (0,)
    assert hypervolume([], [0.0, 0.0]) == 0.0


@settings(deadline=None)
@given(point_sets())
def test_front_is_mutually_non_dominated_and_dominates_the_rest(points):
    front = pareto_front(points)
    assert front == sorted(front)
    for i in front:
        assert not any(dominates(points[j], points[i]) for j in range(len(points)))
    for j in set(range(len(points))) - set(front):
        assert any(dominates(points[i], points[j]) for i in front)


@settings(deadline=None)
@given(point_sets())
def test_fronts_partition_and_are_layered(points):
    fronts = non_dominated_sort(points)
    assert sorted(itertools.chain.from_iterable(fronts)) == list(range(len(points)))
    rank = {i: r for r, front in enumerate(fronts) for i in front}
    for i, j in itertools.permutations(range(len(points)), 2):
        if dominates(points[i], points[j]):
            assert rank[i] < rank[j]
    for r in range(1, len(fronts)):
        for j in fronts[r]:
            assert any(dominates(points[i], points[j]) for i in fronts[r - 1])


@settings(deadline=None)
@given(point_sets(), st.randoms(use_true_random=False))
def test_min_and_max_are_symmetric_under_negation(points, rnd):
    m = len(points[0])
    modes = [rnd.choice(["max", "min"]) for _ in range(m)]
    flipped = ["min" if x == "max" else "max" for x in modes]
    negated = -np.array(points, dtype=float)
    assert non_dominated_sort(points, modes) == non_dominated_sort(negated, flipped)
    assert pareto_front(points, modes) == pareto_front(negated, flipped)
    reference = np.array([3] * m, dtype=float)
    assert hypervolume(points, reference, modes) == pytest.approx(
        hypervolume(negated, -reference, flipped)
    )


# --- crowding distance ----------------------------------------------------------------------
def test_crowding_distance_by_hand():
    front = [[1.0, 2.0], [2.0, 1.0], [1.5, 1.5], [1.2, 1.8]]
    np.testing.assert_allclose(crowding_distance(front), [np.inf, np.inf, 1.6, 1.0])


def test_crowding_distance_small_and_flat_fronts():
    assert np.isinf(crowding_distance([[1.0, 2.0], [2.0, 1.0]])).all()
    # an objective on which every point is equal adds nothing
    np.testing.assert_allclose(
        crowding_distance([[0.0, 1.0], [1.0, 1.0], [3.0, 1.0]]), [np.inf, 1.0, np.inf]
    )
    np.testing.assert_allclose(
        crowding_distance([[1.0, 0.0], [1.0, 1.0], [1.0, 3.0]]), [np.inf, 1.0, np.inf]
    )


def distinct_columns():
    """Points whose values are distinct within each objective (ties make the order among
    equal values, hence which of them is an extreme, arbitrary)."""
    return st.tuples(st.integers(1, 20), st.integers(1, 4)).flatmap(
        lambda nm: st.lists(
            st.lists(st.integers(-100, 100), min_size=nm[0], max_size=nm[0], unique=True),
            min_size=nm[1],
            max_size=nm[1],
        ).map(lambda columns: [list(row) for row in zip(*columns, strict=True)])
    )


@settings(deadline=None)
@given(distinct_columns())
def test_crowding_distance_ignores_direction(points):
    distance = crowding_distance(points)
    assert distance.shape == (len(points),)
    assert (distance >= 0).all()
    np.testing.assert_allclose(crowding_distance(-np.array(points, dtype=float)), distance)


# --- hypervolume ----------------------------------------------------------------------------
def test_hypervolume_by_hand():
    points = [[0.9, 5.0], [0.8, 2.0], [0.7, 3.0]]
    assert hypervolume(points, [0.0, 10.0], modes=["max", "min"]) == pytest.approx(6.9)
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [0, 0]) == pytest.approx(6.0)
    cube_corners = [[1, 1, 2], [1, 2, 1], [2, 1, 1]]
    assert hypervolume(cube_corners, [0, 0, 0]) == pytest.approx(4.0)


def test_points_that_do_not_dominate_the_reference_add_nothing():
    assert hypervolume([[2.0, 2.0], [5.0, -1.0], [1.0, 1.0]], [1.0, 1.0]) == pytest.approx(1.0)
    assert hypervolume([[0.5, 3.0]], [1.0, 1.0]) == 0.0
    assert hypervolume([[3.0, 3.0]], [4.0, 4.0], modes=["min", "min"]) == pytest.approx(1.0)


@settings(deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda m: st.tuples(
            st.lists(st.floats(-10, 10), min_size=m, max_size=m),
            st.lists(st.floats(-10, 10), min_size=m, max_size=m),
        )
    )
)
def test_one_point_gives_its_box(pair):
    point, reference = pair
    box = np.prod(np.clip(np.subtract(point, reference), 0, None))
    assert hypervolume([point], reference) == pytest.approx(box, rel=1e-9, abs=1e-12)


@settings(deadline=None)
@given(point_sets(max_value=4, max_dims=3, max_points=12))
def test_hypervolume_counts_the_unit_cells_the_points_dominate(points):
    m = len(points[0])
    cells = itertools.product(range(4), repeat=m)  # the cell [c, c + 1] in every dimension
    covered = sum(any(all(np.less(cell, p)) for p in points) for cell in cells)
    assert hypervolume(points, [0] * m) == pytest.approx(covered)


@settings(deadline=None)
@given(point_sets(max_value=5), st.data())
def test_hypervolume_is_monotone_when_adding_a_point(points, data):
    m = len(points[0])
    extra = data.draw(st.lists(st.integers(0, 5), min_size=m, max_size=m))
    reference = [0] * m
    before = hypervolume(points, reference)
    after = hypervolume([*points, extra], reference)
    assert after >= before - 1e-9
    assert after <= before + np.prod(extra) + 1e-9
    front = pareto_front(points)
    assert hypervolume([points[i] for i in front], reference) == pytest.approx(before)


@settings(deadline=None)
@given(point_sets(max_value=5, min_dims=2, max_dims=4))
def test_hypervolume_equals_a_brute_force_count_of_unit_cells(points):
    """With integer points and the reference at the origin the exact volume is the number
    of unit cells [c, c + 1] below some point."""
    m = len(points[0])
    pts = np.array(points)
    cells = np.array(list(itertools.product(range(5), repeat=m)))
    covered = ((pts[None, :, :] >= cells[:, None, :] + 1).all(axis=2)).any(axis=1)
    assert hypervolume(points, [0] * m) == pytest.approx(covered.sum())


@settings(deadline=None)
@given(point_sets(max_value=20, min_dims=2, max_dims=2, max_points=40))
def test_two_d_sweep_agrees_with_slicing(points):
    lifted = [[*p, 1.5] for p in points]  # a constant third objective: the 3-D slicing path
    assert hypervolume(lifted, [0, 0, 0]) == pytest.approx(1.5 * hypervolume(points, [0, 0]))


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_monte_carlo_on_random_fronts(m):
    rng = np.random.default_rng(m)
    for _ in range(3):
        points = rng.random((12, m))
        exact = hypervolume(points, np.zeros(m))
        samples = rng.random((200_000, m))
        inside = (points[None, :, :] >= samples[:, None, :]).all(axis=2).any(axis=1)
        assert exact == pytest.approx(inside.mean(), abs=0.01)


def test_hypervolume_slices_3d_into_2d_sweeps_only(monkeypatch):
    """The cost claim ("a few ms for 300 points in 3-D") as work done, not time: slicing
    along the last objective makes at most one 2-D sweep per point, and a 2-D sweep does
    not slice again (slicing all the way down would take O(n^2) calls in 3-D)."""
    from nasforge import pareto

    calls = Counter()  # objectives of the boxes -> calls
    volume = pareto._volume

    def counted(boxes):
        calls[boxes.shape[1]] += 1
        return volume(boxes)

    monkeypatch.setattr(pareto, "_volume", counted)
    rng = np.random.default_rng(0)
    points = rng.random((300, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)  # all on the front (sphere)
    assert 0 < hypervolume(points, np.zeros(3)) < np.pi / 6  # inside the unit sphere's octant
    assert set(calls) == {2, 3} and calls[3] == 1 and 0 < calls[2] <= len(points)
    calls.clear()
    hypervolume(points[:, :2], np.zeros(2))
    assert calls == {2: 1}  # a single sweep


# --- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pareto_front([1.0, 2.0]), r"points must be an \(n, m\) array"),
        (lambda: pareto_front(np.zeros((2, 2, 2))), r"points must be an \(n, m\) array"),
        (lambda: pareto_front([[1, 2], [3]]), r"points must be an \(n, m\) array"),
        (lambda: pareto_front([["a", "b"]]), r"points must be an \(n, m\) array"),
        (lambda: pareto_front([[1.0, float("nan")]]), "points must be numbers without NaN"),
        (lambda: pareto_front([[1, 2]], modes=["max", "down"]), "modes must be a sequence of 2"),
        (lambda: pareto_front([[1, 2]], modes=["max"]), "modes must be a sequence of 2"),
        (lambda: pareto_front([[1, 2]], modes="min"), "HINT: e.g. modes=\\['max', 'min'\\]"),
        (lambda: non_dominated_sort([[1, 2]], modes=["up", "min"]), "each 'max' or 'min'"),
        (lambda: crowding_distance([[1.0, np.inf]]), "points must be finite numbers"),
        (lambda: hypervolume([[1, 2]], [0, 0, 0]), "reference must be a point with 2 objective"),
        (lambda: hypervolume([[1, 2]], [[0, 0]]), "reference must be a 1-D sequence"),
        (lambda: hypervolume([[1, 2]], [0, float("nan")]), "reference must be numbers without"),
        (lambda: hypervolume([[1, np.inf]], [0, 0]), "finite numbers for hypervolume"),
        (lambda: hypervolume([[1, 2]], [0, 0], modes=["max"]), "modes must be a sequence of 2"),
    ],
)
def test_invalid_inputs_are_named(call, match):
    with pytest.raises(nf.ConfigError, match=match):
        call()


# --- exact refusals, edge cases and small fronts by hand ------------------------------------
def refusal(call, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("call", "field", "message"),
    [
        (
            lambda: pareto_front([1.0, 2.0]),
            "points",
            "points must be an (n, m) array of objective values, but got [1.0, 2.0]",
        ),
        (
            lambda: pareto_front([[1.0, np.nan]]),
            "points",
            "points must be numbers without NaN, but got 'NaN values'",
        ),
        (
            lambda: pareto_front([[1, 2]], modes=["max"]),
            "modes",
            "modes must be a sequence of 2 values, each 'max' or 'min' (one per objective), but "
            "got ['max']. HINT: e.g. modes=['max', 'min'] for accuracy and latency",
        ),
        (
            lambda: crowding_distance([[1.0, np.inf], [2.0, 1.0], [0.0, 0.0]]),
            "points",
            "points must be finite numbers, but got 'non-finite values'",
        ),
        (
            lambda: crowding_distance([[1.0, 2.0], [3.0]]),
            "points",
            "points must be an (n, m) array of objective values, but got [[1.0, 2.0], [3.0]]",
        ),
        (
            lambda: hypervolume([[1, 2]], [[0, 0]]),
            "reference",
            "reference must be a 1-D sequence of numbers, but got [[0, 0]]",
        ),
        (
            lambda: hypervolume([[1]], []),
            "reference",
            "reference must be a 1-D sequence of numbers, but got []",
        ),
        (
            lambda: hypervolume([[1, 2]], [0, 0, 0]),
            "reference",
            "reference must be a point with 2 objective values (one per column of points), but "
            "got [0, 0, 0]",
        ),
        (
            lambda: hypervolume([[1, 2]], [0, np.inf]),
            "points and reference",
            "points and reference must be finite numbers for hypervolume, but got "
            "'non-finite values'",
        ),
    ],
)
def test_refusals_name_the_argument(call, field, message):
    error = refusal(call)
    assert (error.field, str(error)) == (field, message)


def test_empty_inputs_with_modes_or_a_reference():
    assert pareto_front([], modes=["max", "min"]) == []
    assert non_dominated_sort(np.zeros((0, 3)), modes=["max", "min", "max"]) == []
    assert hypervolume([], [1.0, 2.0, 3.0], modes=["min", "min", "min"]) == 0.0
    assert crowding_distance(np.zeros((0, 2))).shape == (0,)


def test_one_objective():
    assert pareto_front([[3.0], [5.0], [5.0], [1.0]]) == [1, 2]
    assert non_dominated_sort([[3.0], [5.0], [1.0]], modes=["min"]) == [[2], [0], [1]]
    assert hypervolume([[3.0], [5.0]], [1.0]) == 4.0
    assert hypervolume([[3.0], [5.0]], [6.0], modes=["min"]) == 3.0
    np.testing.assert_array_equal(crowding_distance([[1.0], [4.0], [2.0]]), [np.inf, np.inf, 1.0])


def test_fronts_of_a_mixed_minimisation_problem():
    points = [[1.0, 1.0], [2.0, 2.0], [1.0, 3.0], [3.0, 1.0], [3.0, 3.0]]
    assert non_dominated_sort(points, modes=["min", "min"]) == [[0], [1, 2, 3], [4]]
    assert non_dominated_sort(points) == [[4], [1, 2, 3], [0]]
    assert non_dominated_sort(points, modes=["max", "min"]) == [[3], [0, 1, 4], [2]]


def test_hypervolume_of_minimised_objectives_is_measured_from_the_reference():
    points = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [4.0, 4.0]]
    # boxes up to (4, 4): 3x1 + 2x1 + 1x1 + 0 (the last point is the reference itself)
    assert hypervolume(points, [4.0, 4.0], modes=["min", "min"]) == pytest.approx(6.0)
    assert hypervolume(points, [0.0, 0.0]) == pytest.approx(16.0)
    assert hypervolume([[2.0, 2.0, 2.0], [1.0, 1.0, 3.0]], [0, 0, 0]) == pytest.approx(9.0)


def test_fronts_of_two_points_are_all_extremes_even_when_equal():
    assert np.isinf(crowding_distance([[1.0, 1.0], [1.0, 1.0]])).all()


def test_the_first_tied_minimum_and_the_last_tied_maximum_are_the_extremes():
    # a stable sort: the same points are extremes on every machine (numpy's default sort
    # is not stable for 17 or more values, and its order depends on the CPU's SIMD sort)
    column = [4, 3, 2, 1, 1, 0, 0, 0, 0, 4, 3, 4, 2, 3, 4, 3, 3, 2, 2, 4]
    distance = crowding_distance([[v] for v in column])
    assert np.flatnonzero(np.isinf(distance)).tolist() == [5, 19]


def test_crowding_distance_adds_every_objective_scaled_by_its_range():
    front = [[0.0, 10.0], [1.0, 8.0], [3.0, 2.0], [4.0, 0.0]]
    # point 1: (3 - 0) / 4 + (10 - 2) / 10 = 1.55; point 2: (4 - 1) / 4 + (8 - 0) / 10 = 1.55
    np.testing.assert_allclose(crowding_distance(front), [np.inf, 1.55, 1.55, np.inf])
    np.testing.assert_allclose(crowding_distance([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), [0, 0, 0])
