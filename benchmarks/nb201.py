"""NAS-Bench-201 (CIFAR-10) search benchmark: nasforge strategies against Optuna samplers.

Protocol: every method searches on ``val_acc`` of the 15,625-row NB201 table; after k
queries we report the ``test_acc`` of the best-by-validation arch found so far (repeated
queries count towards k). Regret is measured against the test accuracy of the best-by-
validation arch of the whole table. Each method runs once per seed at the largest budget;
smaller budgets are prefixes of that run. Ours and Optuna's are interleaved per seed.

    python benchmarks/nb201.py                       # full run (~3-6 min on 2 cores)
    python benchmarks/nb201.py --seeds 5 --budgets 25 100 --strategies local bayesian tpe
    python benchmarks/nb201.py --json results.json

No torch anywhere: strategies and the table lookup are numpy/scipy only.
"""

# ruff: noqa: E402  (BLAS threads must be limited before numpy is imported)
from __future__ import annotations

import os

# Small GP matrices: a multi-threaded BLAS only adds contention on a shared 2-core machine.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import nasforge as nf
from nasforge.evaluators import TabularBenchmark
from nasforge.space.builtin import NB201_EDGES, NB201_OPS

DEFAULT_CSV = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201" / "nb201_cifar10.csv"
)
OPTUNA = ("tpe", "optuna_random", "gp")


def run_nasforge(name: str, space, bench: TabularBenchmark, budget: int, seed: int) -> dict:
    strategy = nf.build("strategy", name, space=space, seed=seed)
    keys, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        arch = strategy.ask()
        t1 = time.perf_counter()
        val = bench.evaluate(arch)["val_acc"]
        t2 = time.perf_counter()
        strategy.tell(arch, val)
        t3 = time.perf_counter()
        keys.append(arch.key)
        times.append((t1 - t0) + (t3 - t2))
    return {"keys": keys, "times": times}


def run_optuna(name: str, bench: TabularBenchmark, budget: int, seed: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "optuna_random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
    }[name]()
    study = optuna.create_study(direction="maximize", sampler=sampler)
    names = [f"edge_{t}_{f}" for t, f in NB201_EDGES]
    keys, times = [], []
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = study.ask()
        ops = [trial.suggest_categorical(n, list(NB201_OPS)) for n in names]
        t1 = time.perf_counter()
        key = "+".join(
            "|" + "|".join(f"{ops[NB201_EDGES.index((node, f))]}~{f}" for f in range(node)) + "|"
            for node in (1, 2, 3)
        )
        val = bench.evaluate(key)["val_acc"]
        t2 = time.perf_counter()
        study.tell(trial, val)
        t3 = time.perf_counter()
        keys.append(key)
        times.append((t1 - t0) + (t3 - t2))
    return {"keys": keys, "times": times}


def trajectory(keys: list[str], bench: TabularBenchmark, budgets: list[int]) -> dict[int, dict]:
    out, best_val, best_test, seen, dups = {}, -np.inf, np.nan, set(), 0
    for i, key in enumerate(keys, start=1):
        row = bench.evaluate(key)
        dups += key in seen
        seen.add(key)
        if row["val_acc"] > best_val:
            best_val, best_test = row["val_acc"], row["test_acc"]
        if i in budgets:
            out[i] = {"test_acc": best_test, "dup_fraction": dups / i}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV.resolve())
    parser.add_argument("--seeds", type=int, default=30, help="number of seeds (0..N-1)")
    parser.add_argument("--seed-offset", type=int, default=0, help="first seed")
    parser.add_argument("--budgets", "--budget", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        help="nasforge strategy names and/or tpe, optuna_random, gp (default: all)",
    )
    parser.add_argument("--gp-seeds", type=int, default=5, help="seeds for Optuna's GPSampler")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    bench = TabularBenchmark.from_csv(args.csv, key="arch")
    space = nf.build("space", "nb201")
    ours = nf.available("strategy")
    methods = args.strategies or [*ours, *OPTUNA]
    unknown = [m for m in methods if m not in ours and m not in OPTUNA]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {ours + list(OPTUNA)}")
    budgets = sorted(set(args.budgets))
    horizon = budgets[-1]
    rows = list(bench.keys())
    best_key = max(rows, key=lambda k: bench.evaluate(k)["val_acc"])
    optimum = bench.evaluate(best_key)["test_acc"]
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))

    results: dict[str, list[dict]] = {m: [] for m in methods}
    start = time.time()
    for seed in seeds:
        for m in methods:
            if m == "gp" and seed - args.seed_offset >= args.gp_seeds:
                continue
            if m in OPTUNA:
                run = run_optuna(m, bench, horizon, seed)
            else:
                run = run_nasforge(m, space, bench, horizon, seed)
            run["seed"] = seed
            run["trajectory"] = trajectory(run["keys"], bench, budgets)
            results[m].append(run)
        print(f"seed {seed} done ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)

    summary: dict[str, dict] = {}
    print(
        f"\nNB201 CIFAR-10, {len(seeds)} seeds (GPSampler: {min(args.gp_seeds, len(seeds))}); "
        f"optimum (test acc of best-by-val arch) = {optimum:.2f}"
    )
    for b in budgets:
        print(f"\nbudget {b}")
        header = f"{'test acc':>16} {'regret':>8} {'dup %':>6} {'ask+tell ms':>12} {'n':>3}"
        print(f"  {'method':<15} {header}")
        for m in methods:
            runs = results[m]
            if not runs:
                continue
            accs = np.array([r["trajectory"][b]["test_acc"] for r in runs])
            dup = float(np.mean([r["trajectory"][b]["dup_fraction"] for r in runs]))
            med = statistics.median(t for r in runs for t in r["times"][:b]) * 1e3
            label = m if m in ours else f"optuna:{m}"
            regret = float(np.mean(optimum - accs))
            summary.setdefault(m, {})[b] = {
                "test_acc_mean": float(accs.mean()),
                "test_acc_std": float(accs.std()),
                "regret": regret,
                "dup_fraction": dup,
                "median_ask_tell_ms": med,
                "runs": len(runs),
            }
            print(
                f"  {label:<15} {accs.mean():>8.3f} ± {accs.std():<5.3f} {regret:>8.3f} "
                f"{100 * dup:>6.1f} {med:>12.3f} {len(runs):>3}"
            )

    mine = [m for m in methods if m in ours]
    theirs = [m for m in methods if m in OPTUNA]
    if mine and theirs:
        print("\nchecks")
        for b in budgets:
            best_ours = min(mine, key=lambda m: summary[m][b]["regret"])
            best_theirs = min(theirs, key=lambda m: summary[m][b]["regret"])
            r_ours, r_theirs = summary[best_ours][b]["regret"], summary[best_theirs][b]["regret"]
            ratio = r_ours / r_theirs if r_theirs > 0 else float("nan")
            print(
                f"  budget {b}: best nasforge {best_ours} {r_ours:.3f} vs best optuna "
                f"{best_theirs} {r_theirs:.3f} (ratio {ratio:.2f})"
            )
    if "random" in summary:
        for b in budgets:
            worse = [
                m
                for m in mine
                if m != "random" and summary[m][b]["regret"] >= summary["random"][b]["regret"]
            ]
            print(f"  budget {b}: strategies not beating random: {worse or 'none'}")

    if args.json:
        payload = {
            "optimum_test_acc": optimum,
            "best_val_arch": best_key,
            "seeds": seeds,
            "budgets": budgets,
            "summary": summary,
            "runs": {
                m: [{"seed": r["seed"], "keys": r["keys"], "times": r["times"]} for r in rs]
                for m, rs in results.items()
            },
        }
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
