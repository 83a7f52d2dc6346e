"""Search the NAS-Bench-201 cell space on the CIFAR-10 table with every built-in strategy.

    python examples/nb201_search.py [path/to/nb201_cifar10.csv]

Searches on validation accuracy (100 queries each) and prints the test accuracy of the
best-by-validation cell, then builds that cell's network in PyTorch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nasforge as nf

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_cifar10.csv"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    bench = nf.TabularBenchmark.from_csv(path, key="arch")
    space = nf.build("space", "nb201")
    best = None
    for name in nf.available("strategy"):
        result = nf.search(space, bench, strategy=name, budget=100, seed=0, progress=False)
        trial = result.best
        print(
            f"{name:<10} val {trial.metrics['val_acc']:.2f}  test {trial.metrics['test_acc']:.2f}"
            f"  {trial.key}"
        )
        if best is None or trial.metrics["val_acc"] > best.metrics["val_acc"]:
            best = trial
    model = space.build(best.arch, num_classes=10)
    params = sum(p.numel() for p in model.parameters())
    print(f"best cell {best.key}: {params / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
