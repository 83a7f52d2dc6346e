"""Weight sharing and DARTS on MNIST-1D with the 1-D NAS-Bench-201 cell.

Four measurements, one run (every number from the same data, recipe and machine):

1. **Ranking**: Kendall τ between the supernet's score of a cell (validation accuracy
   with inherited weights, batch norm re-estimated) and the validation accuracy of the
   same cell trained stand-alone, over ``--cells`` random cells, with a bootstrap 95% CI.
2. **Search**: the best cell of an evolution search that trains every candidate
   (``--budget`` trials) against (a) evolution over the supernet and (b) DARTS with the
   collapse guard, both retrained stand-alone with the same recipe: test accuracy and
   wall time (supernet training + search + retraining; DARTS + retraining).
3. **Collapse guard**: plain DARTS against guarded DARTS over ``--guard-seeds`` seeds:
   parameter-free edges (none, skip, pooling) in the derived cells and their retrained
   test accuracy.

    python benchmarks/oneshot.py                    # the full run (about 25 min, 2 cores)
    python benchmarks/oneshot.py --quick            # a smoke run of every step
    python benchmarks/oneshot.py --json oneshot.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

import nasforge as nf
from nasforge.evaluators.supernet import SupernetEvaluator
from nasforge.evaluators.training import TrainEvaluator, retrain
from nasforge.oneshot import GUARDS, Darts

PARAMETER_FREE = {"none", "skip_connect", "avg_pool_3x3"}
DEFAULT_GUARD = inspect.signature(Darts).parameters["guard"].default


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10_000, help="MNIST-1D samples")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells-per-stage", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="stand-alone training recipe")
    parser.add_argument("--supernet-epochs", type=int, default=20)
    parser.add_argument("--darts-epochs", type=int, default=3)
    parser.add_argument("--cells", type=int, default=50, help="cells ranked")
    parser.add_argument("--budget", type=int, default=100, help="trials of the trained search")
    parser.add_argument("--queries", type=int, default=100, help="trials over the supernet")
    parser.add_argument("--guard-seeds", type=int, default=3)
    parser.add_argument(
        "--guards", nargs="+", default=list(GUARDS), help="the guards compared with plain DARTS"
    )
    parser.add_argument("--arch-lr", type=float, default=1e-2, help="DARTS architecture lr")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks every step")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.channels, args.epochs = 1000, 4, 1
        args.supernet_epochs, args.darts_epochs, args.cells = 1, 1, 6
        args.budget, args.queries, args.guard_seeds = 4, 8, 1
    return args


def bootstrap_tau(x: list[float], y: list[float], n: int = 2000) -> tuple[float, float]:
    """The 2.5% and 97.5% quantiles of Kendall τ over pairs resampled with replacement."""
    rng = np.random.default_rng(0)
    x_arr, y_arr = np.asarray(x), np.asarray(y)
    taus = []
    for _ in range(n):
        idx = rng.integers(len(x_arr), size=len(x_arr))
        tau = kendalltau(x_arr[idx], y_arr[idx]).statistic
        if np.isfinite(tau):
            taus.append(tau)
    return float(np.quantile(taus, 0.025)), float(np.quantile(taus, 0.975))


def distinct_cells(space: nf.Space, n: int, seed: int) -> list[nf.Arch]:
    """``n`` random cells computing different functions (one per equivalence class)."""
    rng = np.random.default_rng(seed)
    cells: dict[str, nf.Arch] = {}
    while len(cells) < n:
        arch = space.sample(rng)
        cells.setdefault(space.canonical(arch).key, arch)
    return list(cells.values())


def param_free(arch: nf.Arch) -> int:
    return sum(arch[name] in PARAMETER_FREE for name in arch)


def main() -> int:
    args = parse_args()
    torch.set_num_threads(2)
    data = nf.load_dataset("mnist1d", num_samples=args.samples)
    space = nf.build("space", "nb201")
    build = {"channels": args.channels, "cells_per_stage": args.cells_per_stage}
    recipe = nf.TrainConfig(
        epochs=args.epochs, batch_size=128, lr=3e-3, lr_schedule="cosine", seed=0, progress=False
    )
    report: dict[str, Any] = {"args": vars(args)}

    def standalone(arch: nf.Arch, seed: int = 0) -> dict[str, float]:
        return retrain(space, arch, data, build_options=build, config=recipe.replace(seed=seed))[1]

    # 1. the supernet, and how it ranks cells
    started = time.perf_counter()
    supernet = SupernetEvaluator(
        space,
        data,
        config=recipe.replace(epochs=args.supernet_epochs),
        build_options=build,
        calibration_batches=4,
    )
    supernet_seconds = time.perf_counter() - started
    cells = distinct_cells(space, args.cells, seed=1)
    shared = [supernet.evaluate(c)["val_acc"] for c in cells]
    alone = []
    for i, cell in enumerate(cells):
        alone.append(standalone(cell)["val_acc"])
        print(
            f"  cell {i + 1}/{len(cells)}: supernet {shared[i]:.3f}, alone {alone[-1]:.3f}",
            flush=True,
        )
    tau = kendalltau(shared, alone).statistic
    low, high = bootstrap_tau(shared, alone)
    report["ranking"] = {
        "cells": len(cells),
        "kendall_tau": tau,
        "ci95": [low, high],
        "supernet_seconds": supernet_seconds,
        "pairs": [[c.key, s, a] for c, s, a in zip(cells, shared, alone, strict=True)],
    }
    print(
        f"ranking: Kendall tau {tau:.3f} (95% CI {low:.3f}..{high:.3f}) over {len(cells)} "
        f"cells; supernet trained in {supernet_seconds:.0f} s"
    )

    # 2. search quality and wall time
    rows = []
    started = time.perf_counter()
    trained = TrainEvaluator(space, data, config=recipe, build_options=build, latency=False)
    baseline = nf.search(
        space, trained, strategy="evolution", budget=args.budget, seed=0, test=False, progress=False
    )
    base_seconds = time.perf_counter() - started
    best = baseline.best.arch
    rows.append(("evolution, every cell trained", best, standalone(best), base_seconds))

    started = time.perf_counter()
    found = nf.search(
        space,
        supernet,
        strategy="evolution",
        budget=args.queries,
        seed=0,
        test=False,
        progress=False,
    ).best.arch
    final = standalone(found)
    seconds = supernet_seconds + time.perf_counter() - started  # retraining included
    rows.append(("evolution over the supernet", found, final, seconds))

    darts_runs: dict[tuple[str, int], dict[str, Any]] = {}

    def run_darts(guard: str | None, seed: int) -> dict[str, Any]:
        started = time.perf_counter()
        result = Darts(
            space,
            data,
            guard=guard,
            build_options=build,
            config=recipe.replace(epochs=args.darts_epochs, seed=seed),
        ).run()
        metrics = standalone(result.arch, seed)
        return {
            "arch": result.arch,
            "metrics": metrics,
            "search_seconds": result.seconds,
            "seconds": time.perf_counter() - started,
        }

    guard = DEFAULT_GUARD
    darts_runs[(guard, 0)] = run = run_darts(guard, 0)
    rows.append((f"DARTS (guard {guard})", run["arch"], run["metrics"], run["seconds"]))

    print(f"\n{'method':<32}{'test acc':>9}{'val acc':>9}{'wall s':>9}{'x base':>8}  cell")
    report["search"] = []
    for name, arch, metrics, seconds in rows:
        ratio = seconds / base_seconds
        print(
            f"{name:<32}{100 * metrics['test_acc']:>9.2f}{100 * metrics['val_acc']:>9.2f}"
            f"{seconds:>9.0f}{ratio:>8.2f}  {arch.key}"
        )
        report["search"].append(
            {
                "method": name,
                "key": arch.key,
                **metrics,
                "wall_seconds": seconds,
                "fraction_of_baseline": ratio,
            }
        )

    # 3. the collapse guard
    print(
        f"\n{'DARTS':<14}{'seed':>5}{'param-free edges':>18}{'test acc':>10}{'search s':>10}  cell"
    )
    report["guard"] = []
    for guard in (None, *args.guards):
        for seed in range(args.guard_seeds):
            run = darts_runs.get((guard, seed)) or run_darts(guard, seed)
            label = "plain" if guard is None else f"guard {guard}"
            print(
                f"{label:<14}{seed:>5}{param_free(run['arch']):>18}"
                f"{100 * run['metrics']['test_acc']:>10.2f}{run['search_seconds']:>10.0f}  "
                f"{run['arch'].key}"
            )
            report["guard"].append(
                {
                    "guard": guard,
                    "seed": seed,
                    "key": run["arch"].key,
                    "param_free_edges": param_free(run["arch"]),
                    "test_acc": run["metrics"]["test_acc"],
                    "search_seconds": run["search_seconds"],
                }
            )
    for guard in (None, *args.guards):
        runs = [r for r in report["guard"] if r["guard"] == guard]
        print(
            f"{'plain' if guard is None else 'guard ' + guard:<14} mean param-free edges "
            f"{statistics.mean(r['param_free_edges'] for r in runs):.2f}, mean test acc "
            f"{100 * statistics.mean(r['test_acc'] for r in runs):.2f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
