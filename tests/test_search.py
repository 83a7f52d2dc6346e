"""The search loop, SearchResult and the tabular evaluator."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import nasforge as nf
from nasforge.nas import TrialStatus
from nasforge.space import Choice, IntRange, Space

NB201_CSV = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201" / "nb201_cifar10.csv"
)


def toy_space() -> Space:
    return Space([Choice("op", ["a", "b", "c"]), IntRange("n", 1, 4)], name="toy")


@pytest.fixture
def toy_bench(tmp_path: Path) -> nf.TabularBenchmark:
    space = toy_space()
    path = tmp_path / "toy.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", "acc", "note", "params"])
        for i, arch in enumerate(space.grid()):
            acc = {"a": 0.5, "b": 0.7, "c": 0.6}[arch["op"]] + 0.05 * arch["n"]
            writer.writerow([arch.key, acc, f"row{i}", 100 * arch["n"]])
    return nf.TabularBenchmark.from_csv(path, key="arch")


@pytest.fixture(scope="module")
def nb201() -> nf.TabularBenchmark:
    if not NB201_CSV.exists():
        pytest.skip("NB201 table not available")
    return nf.TabularBenchmark.from_csv(NB201_CSV, key="arch")


def test_tabular_numeric_columns_become_metrics(toy_bench):
    space = toy_space()
    metrics = toy_bench.evaluate(space.arch({"op": "b", "n": 4}))
    assert metrics == {"acc": pytest.approx(0.9), "params": 400.0}
    assert len(toy_bench) == 12 and isinstance(toy_bench, nf.Evaluator)


def test_tabular_unknown_arch_names_the_key(toy_bench):
    other = Space([Choice("op", ["z"]), IntRange("n", 1, 1)])
    with pytest.raises(nf.UnknownArchError, match=r"'op=z\|n=1' is not in table 'toy'") as info:
        toy_bench.evaluate(other.sample(0))
    assert isinstance(info.value, nf.NasforgeError)


def test_tabular_from_csv_errors(tmp_path):
    with pytest.raises(nf.ConfigError, match="existing CSV"):
        nf.TabularBenchmark.from_csv(tmp_path / "missing.csv")
    path = tmp_path / "t.csv"
    path.write_text("cell,acc\nx,1\n")
    with pytest.raises(nf.ConfigError, match=r"key must be a column of t.csv: \['cell', 'acc'\]"):
        nf.TabularBenchmark.from_csv(path, key="arch")


def test_search_returns_trials_in_order_and_the_best(toy_bench):
    result = nf.search(
        toy_space(), toy_bench, strategy="random", budget=12, objective="acc", progress=False
    )
    assert [t.number for t in result.trials] == list(range(12))
    assert all(t.status is TrialStatus.FINISHED for t in result.trials)
    assert len({t.key for t in result.trials}) == 12  # without replacement
    assert result.best.key == "op=b|n=4"
    assert result.best.metrics["acc"] == pytest.approx(0.9)
    curve = result.best_so_far()
    assert curve == sorted(curve) and curve[-1] == pytest.approx(0.9)


def test_search_mode_min_minimises(toy_bench):
    result = nf.search(
        toy_space(),
        toy_bench,
        strategy="grid",
        budget=12,
        objective="acc",
        mode="min",
        progress=False,
    )
    assert result.best.key == "op=a|n=1"
    local = nf.search(
        toy_space(),
        toy_bench,
        strategy="local",
        budget=8,
        objective="acc",
        mode="min",
        seed=3,
        progress=False,
    )
    assert local.best.metrics["acc"] <= 0.6


def test_search_validates_its_arguments(toy_bench):
    space = toy_space()
    with pytest.raises(nf.ConfigError, match="budget must be a positive integer"):
        nf.search(space, toy_bench, budget=0)
    with pytest.raises(nf.ConfigError, match="mode must be 'max' or 'min'"):
        nf.search(space, toy_bench, budget=3, mode="maximize")
    with pytest.raises(
        nf.ConfigError,
        match=r"objective must be one of the evaluator's metrics \(acc, params\)",
    ):
        nf.search(space, toy_bench, budget=3, objective="val_acc", progress=False)
    with pytest.raises(nf.RegistryError, match="Did you mean 'evolution'"):
        nf.search(space, toy_bench, strategy="evolutoin", budget=3)
    with pytest.raises(nf.ConfigError, match="population_size"):
        nf.search(space, toy_bench, budget=3, strategy_options={"population_size": 1})


def test_search_accepts_a_strategy_instance(toy_bench):
    space = toy_space()
    strategy = nf.build(
        "strategy", "evolution", space=space, seed=4, population_size=4, sample_size=2
    )
    result = nf.search(
        space, toy_bench, strategy=strategy, budget=6, objective="acc", progress=False
    )
    assert result.strategy == "evolution" and len(strategy.history) == 6


def test_too_many_consecutive_failures_stop_the_search(toy_bench):
    class Broken:
        def evaluate(self, arch, budget=None):
            raise RuntimeError("boom")

    with pytest.raises(nf.TooManyFailuresError, match=r"3 trials failed in a row.*boom") as info:
        nf.search(
            toy_space(),
            Broken(),
            budget=10,
            objective="acc",
            max_consecutive_failures=3,
            progress=False,
        )
    assert [t.status for t in info.value.result.trials] == [TrialStatus.FAILED] * 3


def test_keyboard_interrupt_returns_partial_result(toy_bench):
    calls = []

    class Interrupting:
        def evaluate(self, arch, budget=None):
            calls.append(arch)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return toy_bench.evaluate(arch)

    result = nf.search(toy_space(), Interrupting(), budget=10, objective="acc", progress=False)
    assert [t.status for t in result.trials] == [TrialStatus.FINISHED] * 2 + [
        TrialStatus.INTERRUPTED
    ]


def test_exports_round_trip(toy_bench, tmp_path):
    result = nf.search(
        toy_space(), toy_bench, strategy="random", budget=5, objective="acc", progress=False
    )
    result.to_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["key"] for r in rows] == [t.key for t in result.trials]
    assert float(rows[0]["acc"]) == result.trials[0].metrics["acc"]
    data = json.loads(result.to_json(tmp_path / "r.json"))
    assert data["best"] == result.best.number
    assert [t["status"] for t in data["trials"]] == ["finished"] * 5
    assert json.loads((tmp_path / "r.json").read_text()) == data


def test_plot_without_matplotlib_gives_the_install_hint(toy_bench, monkeypatch):
    result = nf.search(
        toy_space(), toy_bench, strategy="random", budget=5, objective="acc", progress=False
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(nf.MissingDependencyError, match=r"pip install \"nasforge\[plots\]\""):
        result.plot()


def test_plot_shows_the_objective(toy_bench):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    result = nf.search(
        toy_space(), toy_bench, strategy="random", budget=5, objective="acc", progress=False
    )
    ax = result.plot()
    assert ax.get_ylabel() == "acc"
    (scatter,) = ax.collections  # each trial's objective...
    points = [tuple(p) for p in np.asarray(scatter.get_offsets()).tolist()]
    assert points == [(t.number, t.metrics["acc"]) for t in result.trials]
    (curve,) = ax.lines  # ...and the best so far
    assert list(curve.get_ydata()) == pytest.approx(result.best_so_far())
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_same_seed_gives_identical_trials_on_nb201(nb201):
    space = nf.build("space", "nb201")
    for strategy in nf.available("strategy"):
        a = nf.search(space, nb201, strategy=strategy, budget=30, seed=5, progress=False)
        b = nf.search(space, nb201, strategy=strategy, budget=30, seed=5, progress=False)
        assert [t.key for t in a.trials] == [t.key for t in b.trials], strategy


def test_local_search_finds_a_top_arch_on_nb201(nb201):
    space = nf.build("space", "nb201")
    result = nf.search(space, nb201, strategy="local", budget=100, seed=0, progress=False)
    # val_acc >= 84.0: the top 0.4 % of the 15,625 cells
    assert result.best.metrics["val_acc"] >= 84.0


@pytest.mark.slow
def test_same_seed_gives_identical_trials_across_processes():
    import os
    import subprocess

    code = (
        "import nasforge as nf\n"
        "from nasforge.testing import synthetic_score\n"
        "from nasforge.space.builtin import NB201Space\n"
        "space = NB201Space()\n"
        "for name in nf.available('strategy'):\n"
        "    s = nf.build('strategy', name, space=space, seed=3)\n"
        "    for _ in range(25):\n"
        "        a = s.ask(); s.tell(a, synthetic_score(space, a)); print(a.key)\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": str(h)},
        ).stdout
        for h in (1, 2)
    ]
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 25 * len(nf.available("strategy"))
