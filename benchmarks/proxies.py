"""Zero-cost proxies on NAS-Bench-201 (CIFAR-10): rank correlation, and a warm start.

Part 1 scores ``--cells`` random cells of the 15,625-row table with each proxy and reports
Spearman's rho (and Kendall's tau) of the score against the table's ``test_acc`` and
``val_acc``, and the seconds per cell. ``synflow`` needs no data (one all-ones 32x32
input); ``naswot`` and ``snip`` need a batch, and CIFAR-10 cannot be downloaded here, so
they are scored on Gaussian noise with random labels (``gaussian``) and on the bundled
digits upsampled to 3x32x32 (``digits``, real images of another domain). ``params`` (of
the full network) is the no-cost baseline.

Part 2 is the protocol of benchmarks/nb201.py (its helpers are imported): search on
``val_acc``, report the test-accuracy regret of the best-by-validation cell after k
queries, 30 seeds. For each seed a pool of ``--pool`` distinct cells (drawn with the
seed) is ranked by the proxy, and the best ``--top`` start the search
(``nf.search(..., warm_start=ranked[:top])``); the runs without a warm start are
benchmarks/nb201.py's ``run_nasforge``. Proxy scoring is not a query; its wall time per
search (the pool's scoring time, from the seconds per cell) is reported. Scores are cached
across seeds, so each cell is scored once.

    python benchmarks/proxies.py                          # everything (~25 min, 2 busy cores)
    python benchmarks/proxies.py --proxies synflow --cells 1000 --seeds 0
    python benchmarks/proxies.py --json proxies.json
"""

# ruff: noqa: E402  (thread counts must be set before numpy and torch are imported)
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

import nasforge as nf
from nasforge.evaluators import TabularBenchmark, ZeroCostProxy

sys.path.insert(0, str(Path(__file__).parent))
from nb201 import DEFAULT_CSV, run_nasforge, trajectory

SHAPE = (3, 32, 32)


def parse_size(text: str) -> dict[str, int]:
    """``"16x1"`` -> ``{"channels": 16, "cells_per_stage": 1}``."""
    channels, cells = (int(v) for v in text.lower().split("x"))
    return {"channels": channels, "cells_per_stage": cells}


def make_data(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled batch source of 3x32x32 images available without a download."""
    if name == "gaussian":
        g = torch.Generator().manual_seed(seed)
        return torch.randn(512, *SHAPE, generator=g), torch.randint(0, 10, (512,), generator=g)
    if name == "digits":
        bundle = nf.load_dataset("digits", size=32, channels=3, seed=seed)
        return bundle.train.tensors  # type: ignore[union-attr]
    raise SystemExit(f"unknown data {name!r}: choose gaussian or digits")


def make_proxy(name: str, space: nf.Space, size: str, data: str | None, batch: int):
    options: dict = {"build_options": parse_size(size)}
    if batch is not None:
        options["batch_size"] = batch
    if name == "synflow":
        return nf.build("evaluator", name, space=space, input_shape=SHAPE, **options)
    return nf.build("evaluator", name, space=space, data=make_data(data or "gaussian"), **options)


class Scored:
    """Scores (and first-computation seconds) per arch key, cached across seeds."""

    def __init__(self, proxy: ZeroCostProxy) -> None:
        self.proxy = proxy
        self.scores: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def __call__(self, arch: nf.Arch) -> float:
        if arch.key not in self.scores:
            t0 = time.perf_counter()
            self.scores[arch.key] = self.proxy.evaluate(arch)[self.proxy.name]
            self.seconds[arch.key] = time.perf_counter() - t0
        return self.scores[arch.key]


def correlation_rows(args, space, bench) -> list[dict]:
    keys = bench.keys()
    rng = np.random.default_rng(0)
    picked = [keys[int(i)] for i in rng.choice(len(keys), args.cells, replace=False)]
    configs = []
    for name in args.proxies:
        if name == "synflow":
            configs += [(name, size, None, args.cells) for size in args.sizes]
        else:
            cells = min(args.data_cells, args.cells)
            configs += [(name, s, d, cells) for d in args.data for s in args.data_sizes]
    print(_header(), flush=True)
    params = [float(nf.count_params(space.build(space.from_key(k)))) for k in picked]
    rows = [_row("params", "16x5", "-", params, picked, bench, 0.0)]
    print(_format(rows[-1]), flush=True)
    for name, size, data, cells in configs:
        proxy = make_proxy(name, space, size, data, args.batch_size)
        t0 = time.perf_counter()
        scores = [proxy.evaluate(space.from_key(k))[name] for k in picked[:cells]]
        seconds = (time.perf_counter() - t0) / cells
        rows.append(_row(name, size, data or "-", scores, picked[:cells], bench, seconds))
        print(_format(rows[-1]), flush=True)
    return rows


def _row(name, size, data, scores, keys, bench, seconds) -> dict:
    test = [bench.evaluate(k)["test_acc"] for k in keys]
    val = [bench.evaluate(k)["val_acc"] for k in keys]
    return {
        "proxy": name,
        "size": size,
        "data": data,
        "cells": len(scores),
        "spearman_test": float(spearmanr(scores, test).statistic),
        "spearman_val": float(spearmanr(scores, val).statistic),
        "kendall_test": float(kendalltau(scores, test).statistic),
        "seconds_per_cell": seconds,
    }


def _header() -> str:
    return (
        f"  {'proxy':<8} {'size':>5} {'data':>8} {'cells':>6} {'rho test':>9} {'rho val':>8} "
        f"{'tau test':>9} {'s/cell':>8}"
    )


def _format(r: dict) -> str:
    return (
        f"  {r['proxy']:<8} {r['size']:>5} {r['data']:>8} {r['cells']:>6} "
        f"{r['spearman_test']:>9.3f} {r['spearman_val']:>8.3f} {r['kendall_test']:>9.3f} "
        f"{r['seconds_per_cell']:>8.4f}"
    )


def parse_strategy(spec: str) -> tuple[str, dict]:
    """``"local"`` or ``"local:restart=random,n_init=10"`` -> name and options."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = int(value) if value.lstrip("-").isdigit() else value
    return name, options


def warm_start_runs(args, space, bench, optimum) -> dict:
    proxy = make_proxy(args.warm_proxy, space, args.warm_size, args.warm_data, args.batch_size)
    scored = Scored(proxy)
    budgets = sorted(set(args.budgets))
    horizon = budgets[-1]
    tops = sorted(set(args.top))
    regrets: dict[str, dict[str, dict[int, list[float]]]] = {}
    proxy_seconds: list[float] = []
    top_only: dict[int, list[float]] = {k: [] for k in tops}
    started = time.time()
    for seed in range(args.seeds):
        pool = proxy.sample(args.pool, seed=seed)
        ranked = sorted(pool, key=lambda a: -scored(a))  # stable: ties keep pool order
        proxy_seconds.append(sum(scored.seconds[a.key] for a in pool))
        for k in tops:
            best = max(ranked[:k], key=lambda a: bench.evaluate(a)["val_acc"])
            top_only[k].append(optimum - bench.evaluate(best)["test_acc"])
        for spec in args.strategies:
            name, options = parse_strategy(spec)
            runs = {"none": _search_keys(space, bench, name, options, horizon, seed, None)}
            for k in tops:
                runs[f"top{k}"] = _search_keys(
                    space, bench, name, options, horizon, seed, ranked[:k]
                )
            for label, keys in runs.items():
                by_budget = regrets.setdefault(spec, {}).setdefault(label, {})
                for b, point in trajectory(keys, bench, budgets).items():
                    by_budget.setdefault(b, []).append(optimum - point["test_acc"])
        print(f"seed {seed} done ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    return {
        "proxy": args.warm_proxy,
        "size": args.warm_size,
        "pool": args.pool,
        "tops": tops,
        "seeds": args.seeds,
        "regret": _stat(regrets, np.mean),
        "regret_std": _stat(regrets, np.std),
        "top_only_regret": {k: float(np.mean(v)) for k, v in top_only.items()},
        "proxy_seconds_per_search": float(np.mean(proxy_seconds)),
        "seconds_per_cell": float(np.mean(list(scored.seconds.values()))),
        "cells_scored": len(scored.scores),
    }


def _search_keys(space, bench, name, options, budget, seed, warm) -> list[str]:
    """The keys a search asks, in order: benchmarks/nb201.py's loop for a plain strategy
    without a warm start (the runs behind its published numbers), else ``nf.search``."""
    if warm is None and not options:
        return run_nasforge(name, space, bench, budget, seed)["keys"]
    result = nf.search(
        space,
        bench,
        strategy=name,
        budget=budget,
        seed=seed,
        strategy_options=options,
        warm_start=warm,
        test=False,
        progress=False,
    )
    return [t.key for t in result.trials]


def _stat(regrets: dict, fn) -> dict:
    return {
        s: {w: {b: float(fn(v)) for b, v in runs.items()} for w, runs in by.items()}
        for s, by in regrets.items()
    }


def check_search_matches_protocol(space, bench, name: str) -> bool:
    """nf.search without a warm start asks what benchmarks/nb201.py's loop asks."""
    ours = [t.key for t in nf.search(space, bench, strategy=name, budget=50, test=False).trials]
    return ours == run_nasforge(name, space, bench, 50, 0)["keys"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV.resolve())
    parser.add_argument("--cells", type=int, default=1000, help="random cells for rho")
    parser.add_argument("--proxies", nargs="+", default=["synflow", "naswot", "snip"])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["16x5", "16x1", "8x1"],
        help="synflow networks, CHANNELSxCELLS_PER_STAGE",
    )
    parser.add_argument(
        "--data-sizes", nargs="+", default=["16x1", "16x5"], help="naswot/snip networks"
    )
    parser.add_argument("--data", nargs="+", default=["gaussian", "digits"])
    parser.add_argument("--batch-size", type=int, default=None, help="default: the proxy's")
    parser.add_argument("--seeds", type=int, default=30, help="warm-start seeds (0: skip)")
    parser.add_argument("--budgets", nargs="+", type=int, default=[25, 50, 100])
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=["local", "local:restart=random,n_init=10", "evolution", "random"],
        help="strategy names, optionally with options: local:restart=random,n_init=10",
    )
    parser.add_argument("--warm-proxy", default="synflow")
    parser.add_argument("--warm-size", default="16x1")
    parser.add_argument("--warm-data", default="gaussian")
    parser.add_argument("--pool", type=int, default=500)
    parser.add_argument("--top", type=int, nargs="+", default=[10, 20], help="warm-start sizes")
    parser.add_argument("--data-cells", type=int, default=300, help="cells for naswot/snip")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    bench = TabularBenchmark.from_csv(args.csv, key="arch")
    space = nf.build("space", "nb201")
    best_key = max(bench.keys(), key=lambda k: bench.evaluate(k)["val_acc"])
    optimum = bench.evaluate(best_key)["test_acc"]
    payload: dict = {"optimum_test_acc": optimum, "threads": args.threads}

    if args.cells:
        print(f"\nrank correlation with the table, {args.cells} random cells, 3x32x32 input")
        payload["correlation"] = correlation_rows(args, space, bench)

    if args.seeds:
        tops = sorted(set(args.top))
        print(
            f"\nwarm start: {args.warm_proxy} ({args.warm_size}) ranks a pool of {args.pool} "
            f"distinct cells per seed, the best {' or '.join(map(str, tops))} start the "
            f"search; {args.seeds} seeds; mean regret = {optimum:.2f} - test acc of the "
            "best-by-val cell found after k queries"
        )
        plain = [s for s in args.strategies if ":" not in s]
        same = all(check_search_matches_protocol(space, bench, s) for s in plain)
        print(f"  nf.search without warm start asks what nb201.py's loop asks: {same}")
        warm = warm_start_runs(args, space, bench, optimum)
        payload["warm_start"] = warm
        budgets = sorted(set(args.budgets))
        width = max(len(s) for s in args.strategies)
        print(f"  {'strategy':<{width}} {'start':<6}" + "".join(f"{f'k={b}':>9}" for b in budgets))
        for spec, by in warm["regret"].items():
            for label, regret in by.items():
                cells = "".join(f"{regret[b]:>9.3f}" for b in budgets)
                print(f"  {spec:<{width}} {label:<6}{cells}")
        for k, regret in warm["top_only_regret"].items():
            print(f"  the best {k} of the pool alone ({k} queries): regret {regret:.3f}")
        print(
            f"  proxy: {warm['seconds_per_cell'] * 1e3:.1f} ms per cell, "
            f"{warm['proxy_seconds_per_search']:.1f} s per search (pool {args.pool}); "
            f"{warm['cells_scored']} cells scored over all seeds"
        )
        first = budgets[0]
        best_spec, best_label = min(
            ((s, w) for s, by in warm["regret"].items() for w in by if w != "none"),
            key=lambda sw: warm["regret"][sw[0]][sw[1]][first],
        )
        print(
            f"  best with a warm start at k={first}: {best_spec} {best_label} "
            f"{warm['regret'][best_spec][best_label][first]:.3f} (target < 0.887)"
        )

    if args.json:
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
