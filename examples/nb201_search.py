"""Search the NAS-Bench-201 cell space on the CIFAR-10 table with every built-in strategy.

    python examples/nb201_search.py [path/to/nb201_cifar10.csv]

Searches on validation accuracy (100 queries each) and prints the test accuracy of the
best-by-validation cell, then builds that cell's network in PyTorch. It checks that every
strategy asks for as many different cells as its budget, that ``result.best`` is the most
accurate of them, and that the space's keys are the table's cell strings.
``NASFORGE_QUICK=1`` makes 20 queries per strategy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_cifar10.csv"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    bench = nf.TabularBenchmark.from_csv(path, key="arch")
    space = nf.build("space", "nb201")
    budget = 20 if QUICK else 100
    best = None
    for name in nf.available("strategy"):
        result = nf.search(space, bench, strategy=name, budget=budget, seed=0, progress=False)
        trial = result.best
        print(
            f"{name:<10} val {trial.metrics['val_acc']:.2f}  test {trial.metrics['test_acc']:.2f}"
            f"  {trial.key}"
        )
        keys = [t.key for t in result.trials]
        assert len(set(keys)) == len(keys) == budget, f"{name}: {len(set(keys))} distinct cells"
        top = max(t.metrics["val_acc"] for t in result.trials)
        assert trial.metrics["val_acc"] == top, f"{name}: best is not the most accurate trial"
        if best is None or trial.metrics["val_acc"] > best.metrics["val_acc"]:
            best = trial
    # Arch.key is the standard NAS-Bench-201 string, so it reads the table directly.
    assert best.key in bench and bench.evaluate(best.key) == best.metrics, best.key
    model = space.build(best.arch, num_classes=10)
    params = sum(p.numel() for p in model.parameters())
    print(f"best cell {best.key}: {params / 1e6:.2f} M parameters")
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10), "the cell's network is broken"


if __name__ == "__main__":
    main()
