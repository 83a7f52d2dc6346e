"""Behaviour specific to each built-in strategy (the shared contract is in
test_strategy_conformance.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nasforge as nf
from nasforge.space import Choice, FloatRange, IntRange, Space
from nasforge.testing import synthetic_score

NB201_CSV = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201" / "nb201_cifar10.csv"
)


def small_space() -> Space:
    return Space([Choice("op", ["a", "b", "c"]), IntRange("n", 1, 4), Choice("bn", [True, False])])


def run(strategy, n, score=None):
    score = score or (lambda a: synthetic_score(strategy.space, a))
    out = []
    for _ in range(n):
        arch = strategy.ask()
        strategy.tell(arch, score(arch))
        out.append(arch)
    return out


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("evolution", {"population_size": 1}, "population_size must be an integer >= 2"),
        (
            "evolution",
            {"sample_size": 30},
            r"sample_size must be an integer in \[1, 20\].*population_size=20",
        ),
        ("evolution", {"crossover_prob": 1.5}, "crossover_prob must be a probability"),
        ("grid", {"order": "spiral"}, "order must be one of"),
        ("grid", {"resolution": 1}, "resolution must be an integer >= 2"),
        ("local", {"restart": "never"}, "restart must be one of"),
        ("local", {"order": "sorted"}, r"order must be one of 'model', 'random'"),
        ("local", {"ridge": 0}, "ridge must be a positive number"),
        ("bayesian", {"acquisition": "pi"}, r"acquisition must be one of 'ei', 'ucb'"),
        ("bayesian", {"n_init": 0}, "n_init must be a positive integer"),
        ("random", {"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_invalid_options_are_named(name, options, match):
    with pytest.raises(nf.ConfigError, match=match):
        nf.build("strategy", name, space=nf.build("space", "nb201"), **options)


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(nf.ConfigError, match="Accepted arguments: space, seed, population_size"):
        nf.build("strategy", "evolution", space=small_space(), population=3)


def test_tell_rejects_non_numeric_scores():
    strategy = nf.build("strategy", "evolution", space=small_space())
    arch = strategy.ask()
    with pytest.raises(nf.ConfigError, match="score must be a float to maximise"):
        strategy.tell(arch, "0.9")
    with pytest.raises(nf.ConfigError, match="multi-objective"):
        strategy.tell(arch, (0.9, 1.0))
    strategy.tell(arch, float("nan"))  # NaN counts as a failed trial
    assert strategy.history[-1][1] is None


def test_grid_lexicographic_and_shuffled_visit_the_whole_grid():
    space = small_space()
    lex = nf.build("strategy", "grid", space=space, order="lexicographic")
    assert [a.key for a in run(lex, 24)] == [a.key for a in space.grid()]
    shuffled = nf.build("strategy", "grid", space=space, order="shuffled", seed=1)
    keys = [a.key for a in run(shuffled, 24)]
    assert sorted(keys) == sorted(a.key for a in space.grid()) and keys != sorted(keys)


def test_grid_coordinate_order_sweeps_lines_through_the_incumbent():
    space = small_space()
    grid = nf.build("strategy", "grid", space=space, seed=0)
    first = grid.ask()
    grid.tell(first, 0.0)
    line = [grid.ask() for _ in range(2)]  # the other two values of "op"
    assert {a["op"] for a in line} == {"a", "b", "c"} - {first["op"]}
    assert all(a["n"] == first["n"] and a["bn"] == first["bn"] for a in line)


def test_evolution_population_ages_and_children_are_mutants():
    space = nf.build("space", "nb201")
    evo = nf.build("strategy", "evolution", space=space, seed=0, population_size=10, sample_size=3)
    run(evo, 40)
    assert len(evo._population) == 10
    assert [a.key for a, _ in evo._population] == [a.key for a, _ in evo.history[-10:]]
    members = {a.key for a, _ in evo.history}
    child = evo.ask()
    parents = [a for a, _ in evo._population]
    assert child.key not in members
    assert min(sum(child[k] != p[k] for k in child) for p in parents) == 1


def test_local_search_climbs_to_the_optimum_of_a_separable_score():
    space = nf.build("space", "nb201")
    target = space.sample(123)

    def score(arch):
        return float(sum(arch[k] == target[k] for k in arch))

    local = nf.build("strategy", "local", space=space, seed=0, n_init=1)
    keys = [a.key for a in run(local, 6 * 24 + 1, score)]
    assert target.key in keys


def test_local_search_tries_the_best_predicted_neighbour_first():
    space = nf.build("space", "nb201")
    target = space.from_key(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
        "+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )

    def queries_to_target(order, seed):
        local = nf.build("strategy", "local", space=space, seed=seed, order=order)
        for i in range(1, 400):
            arch = local.ask()
            local.tell(arch, float(sum(arch[k] == target[k] for k in arch)))
            if arch == target:
                return i
        return 400

    model = [queries_to_target("model", seed) for seed in range(10)]
    shuffled = [queries_to_target("random", seed) for seed in range(10)]
    assert max(model) <= 35 and sum(model) < sum(shuffled), (model, shuffled)


def test_bayesian_limits_itself_to_the_pool_around_the_best():
    space = nf.build("space", "nb201")
    bo = nf.build("strategy", "bayesian", space=space, seed=0, n_init=5, n_mutations=0, n_random=1)
    run(bo, 5)
    arch = bo.ask()
    assert space.contains(arch) and not any(arch == a for a, _ in bo.history)


@pytest.mark.slow
def test_every_strategy_beats_random_search_on_nb201():
    if not NB201_CSV.exists():
        pytest.skip("NB201 table not available")
    bench = nf.TabularBenchmark.from_csv(NB201_CSV, key="arch")
    space = nf.build("space", "nb201")
    best = {}
    for name in nf.available("strategy"):
        vals = []
        for seed in range(1000, 1004):
            result = nf.search(space, bench, strategy=name, budget=100, seed=seed, progress=False)
            vals.append(result.best.metrics["val_acc"])
        best[name] = float(np.mean(vals))
    for name, value in best.items():
        if name != "random":
            assert value > best["random"], best


def _tell_grid9(strategy):
    """Results on a 3x3 space where `b` decides the score and `b2` was never tried."""
    space = strategy.space
    for (a, b), score in {("a0", "b0"): 1.0, ("a1", "b0"): 0.9, ("a0", "b1"): 0.1}.items():
        strategy.tell(space.arch({"a": a, "b": b}), score)
    strategy.tell(space.arch({"a": "a1", "b": "b1"}), 0.0)


@pytest.mark.parametrize(
    ("options", "b"),
    [
        ({"acquisition": "ucb", "kappa": 0.0}, "b0"),  # the mean alone: exploit b0
        ({"acquisition": "ucb", "kappa": 100.0}, "b2"),  # the uncertainty: try b2
        ({"acquisition": "ei"}, "b0"),
    ],
)
def test_bayesian_acquisition_and_kappa_trade_exploitation_for_exploration(options, b):
    space = Space([Choice("a", ["a0", "a1", "a2"]), Choice("b", ["b0", "b1", "b2"])])
    for seed in range(3):
        bo = nf.build("strategy", "bayesian", space=space, seed=seed, n_init=4, **options)
        _tell_grid9(bo)
        assert bo.ask()["b"] == b


@pytest.mark.parametrize(("refit_every", "fits"), [(1, 9), (4, 3), (100, 1)])
def test_bayesian_refits_its_hyperparameters_every_refit_every_results(
    monkeypatch, refit_every, fits
):
    import scipy.optimize

    calls = []
    minimize = scipy.optimize.minimize

    def counted(*args, **kwargs):
        calls.append(1)
        return minimize(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", counted)
    bo = nf.build(
        "strategy", "bayesian", space=small_space(), seed=0, n_init=3, refit_every=refit_every
    )
    run(bo, 12)  # 3 random proposals, then 9 from the model (fits at 3, 7, 11 results for 4)
    assert len(calls) == fits


def _distance(a, b):
    return sum(a[k] != b[k] for k in a)


@pytest.mark.parametrize("restart", ["perturb", "random"])
def test_local_search_restarts(restart):
    """At a local optimum (here the global one, with all its neighbours seen) "perturb"
    restarts next to the best arch, "random" from n_init random archs."""
    space = nf.build("space", "nb201")
    target = space.sample(7)
    local = nf.build("strategy", "local", space=space, seed=0, n_init=5, restart=restart)
    seen = set()
    for _ in range(2000):
        arch = local.ask()
        seen.add(arch.key)
        local.tell(arch, float(sum(arch[k] == target[k] for k in arch)))
        if target.key in seen and all(n.key in seen for n in space.neighbors(target)):
            break
    else:
        raise AssertionError("never reached the optimum and all its neighbours")
    distances = []
    for _ in range(5):
        arch = local.ask()
        distances.append(_distance(arch, target))
        local.tell(arch, float(sum(arch[k] == target[k] for k in arch)))
    if restart == "perturb":  # one start perturb_edits=2 from the best, then its neighbours
        assert distances[0] <= 2 and max(distances) <= 3
    else:  # n_init=5 random starts: far from it (6 edges: 4.8 edits apart on average)
        assert max(distances) >= 4


@pytest.mark.parametrize("crossover_prob", [0.0, 1.0])
def test_evolution_crossover_mixes_two_parents(crossover_prob):
    """Without crossover every child is one mutation from a population member; with it,
    children also take parameters from a second parent, so some are further from all."""
    space = nf.build("space", "nb201")
    evo = nf.build(
        "strategy",
        "evolution",
        space=space,
        seed=0,
        population_size=10,
        sample_size=1,  # random parents: two different ones, mostly
        crossover_prob=crossover_prob,
    )
    run(evo, 10)  # the random initial population
    distances = []
    for _ in range(30):
        population = [a for a, _ in evo.history[-10:]]  # aging: the last 10 told
        child = evo.ask()
        distances.append(min(_distance(child, p) for p in population))
        evo.tell(child, synthetic_score(space, child))
    if crossover_prob:
        assert sum(d >= 2 for d in distances) >= 5
    else:
        assert set(distances) == {1}


@pytest.mark.parametrize("resolution", [2, 3, 7])
def test_grid_resolution_sets_the_values_of_ranges(resolution):
    space = Space(
        [
            FloatRange("lr", 0.0, 1.0),
            IntRange("n", 1, 100),
            IntRange("k", 1, 2),  # fewer values than the resolution: all of them
            Choice("op", ["a", "b"]),
        ]
    )
    grid = nf.build("strategy", "grid", space=space, order="lexicographic", resolution=resolution)
    size = resolution * resolution * 2 * 2
    archs = run(grid, size)
    assert len({a.key for a in archs}) == size  # the whole grid, without repeats
    assert sorted({a["lr"] for a in archs}) == pytest.approx(
        np.linspace(0.0, 1.0, resolution).tolist()
    )
    assert sorted({a["n"] for a in archs})[0] == 1 and max(a["n"] for a in archs) == 100
    assert len({a["n"] for a in archs}) == resolution
    assert {a["k"] for a in archs} == {1, 2}
    coordinate = nf.build("strategy", "grid", space=space, seed=0, resolution=resolution)
    swept = run(coordinate, size // 2)  # the default order keeps to the same grid
    assert {a["lr"] for a in swept} <= {a["lr"] for a in archs}
    assert {a["n"] for a in swept} <= {a["n"] for a in archs}
