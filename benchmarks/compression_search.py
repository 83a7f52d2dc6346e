"""Compression-aware search against searching first and compressing afterwards, on MNIST-1D.

Issue target: at the same search budget, searching over architecture + pruning ratio +
int8 (+ distillation) gives a larger hypervolume of test accuracy against measured batch-1
latency than searching the architecture and then compressing its Pareto front, mean over
3 seeds.

Protocol, per seed (MNIST-1D generated locally: 3,600 train, 400 validation, 1,000 test;
the macro 1-D CNN space of ``benchmarks/mnist1d_search.py``; Adam 3e-3, cosine, batch 64,
``--epochs`` epochs; ``nsga2`` over ``val_acc`` (max) and ``latency_ms`` (min), ``--budget``
trials in a process executor of 2 workers):

- **aware**: the search runs over ``CompressedSpace(cnn, prune=[0, 0.5, 0.75],
  distill=[0, 0.9], int8=[False, True])`` with the ``compression`` evaluator, which trains
  each architecture, compresses it as chosen (fine-tuning ``--finetune-epochs`` after
  pruning) and measures the compressed model. Its candidates are its Pareto front.
- **afterwards**: the search runs over the ``cnn`` space with the training evaluator; then
  every architecture of its Pareto front is compressed in each of the 10 ways above (the
  same evaluator, from the search's checkpoints, in the same executor). Its candidates are
  the Pareto front of all of those (by validation accuracy and latency). It evaluates
  (front size x 10) compressions more than the aware search: the wall times say what
  that costs.

At the end every candidate of both methods is rebuilt, its test accuracy measured and its
batch-1 latency timed on one thread, all candidates of the seed in turn
(``compare_latency``), and each method's hypervolume of (test accuracy, latency) is taken
against the reference (accuracy 0, the largest latency of the seed's candidates).

    python benchmarks/compression_search.py             # 3 seeds, 16 trials x 6 epochs
    python benchmarks/compression_search.py --quick     # a smoke run
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from typing import Any

import torch

import nasforge as nf

CHOICES = {"prune": [0.0, 0.5, 0.75], "distill": [0.0, 0.9], "int8": [False, True]}
OBJECTIVES = {"objective": ["val_acc", "latency_ms"], "mode": ["max", "min"]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=16, help="trials per search")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks every step")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.epochs, args.finetune_epochs = [0], 4, 1, 1
    return args


def combos(space: nf.CompressedSpace) -> list[dict[str, Any]]:
    """Every compression of an architecture (distillation only with pruning)."""
    out = []
    for prune, distill, int8 in itertools.product(*CHOICES.values()):
        if prune == 0 and distill > 0:
            continue
        values = {"compress.prune": prune, "compress.int8": int8}
        if prune > 0:
            values["compress.distill"] = distill
        out.append(values)
    return out


def run_seed(data: nf.DataBundle, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    base = nf.build(
        "space", "cnn", max_stages=3, channels=[16, 32, 64], kernels=[3, 5, 7], max_blocks=2
    )
    space = nf.build("space", "compressed", base=base, **CHOICES)
    recipe = {"epochs": args.epochs, "lr": 3e-3, "lr_schedule": "cosine", "batch_size": 64}
    search = {
        "seed": seed,
        "executor": {"name": "process", "workers": args.workers, "threads_per_worker": 1},
        "test": False,
        "progress": False,
        **OBJECTIVES,
    }
    times = {}
    with tempfile.TemporaryDirectory(prefix="nf-csearch-") as tmp:
        started = time.perf_counter()
        aware_ev = nf.CompressionEvaluator(
            space,
            data,
            seed=seed,
            finetune_epochs=args.finetune_epochs,
            checkpoint_dir=f"{tmp}/aware",
            **recipe,
        )
        aware = nf.search(space, aware_ev, strategy="nsga2", budget=args.budget, **search)
        times["aware"] = time.perf_counter() - started

        started = time.perf_counter()
        plain = nf.TrainEvaluator(base, data, seed=seed, checkpoint_dir=f"{tmp}/after", **recipe)
        searched = nf.search(base, plain, strategy="nsga2", budget=args.budget, **search)
        after_ev = nf.CompressionEvaluator(
            space,
            data,
            seed=seed,
            finetune_epochs=args.finetune_epochs,
            checkpoint_dir=f"{tmp}/after",
            **recipe,
        )
        variants = [
            space.arch({**trial.arch, **combo})
            for trial in searched.pareto_front()
            for combo in combos(space)
        ]
        # every variant once, first (random search draws its warm start before anything)
        compressed = nf.search(
            space,
            after_ev,
            strategy="random",
            budget=len(variants),
            warm_start=variants,
            **search,
        )
        times["afterwards"] = time.perf_counter() - started
        candidates = {
            "aware": [(t.arch, aware_ev) for t in aware.pareto_front()],
            "afterwards": [(t.arch, after_ev) for t in compressed.pareto_front()],
        }
        out = {"times": times, "variants": len(variants), **measure(candidates, data)}
    return out


def measure(candidates: dict[str, list[tuple[nf.Arch, Any]]], data: nf.DataBundle) -> dict:
    """Test accuracy and batch-1 latency (all candidates timed in turn) of every
    candidate, and each method's hypervolume against a common reference."""
    torch.set_num_threads(1)
    tester = nf.Trainer(data, progress=False)
    models, rows = {}, {}
    for method, entries in candidates.items():
        rows[method] = []
        for i, (arch, evaluator) in enumerate(entries):
            name = f"{method}{i}"
            models[name] = evaluator.load_model(arch)
            accuracy = tester.evaluate(models[name])["accuracy"]
            rows[method].append({"name": name, "key": arch.key, "test_acc": accuracy})
    latency = nf.compare_latency(models, data.input_shape, batch_size=1, repeats=50)
    reference = [0.0, max(latency.values())]
    out: dict[str, Any] = {"candidates": rows, "hypervolume": {}}
    for method, entries in rows.items():
        for row in entries:
            row["latency_ms"] = latency[row["name"]]
        points = [[r["test_acc"], r["latency_ms"]] for r in entries]
        out["hypervolume"][method] = nf.hypervolume(points, reference, ["max", "min"])
    out["reference"] = reference
    return out


def main() -> None:
    args = parse_args()
    data = nf.load_dataset("mnist1d")
    seeds = {}
    for seed in args.seeds:
        seeds[seed] = run_seed(data, seed, args)
        hv, times = seeds[seed]["hypervolume"], seeds[seed]["times"]
        print(
            f"seed {seed}: hypervolume aware {hv['aware']:.4f} ({times['aware']:.0f} s), "
            f"afterwards {hv['afterwards']:.4f} ({times['afterwards']:.0f} s)",
            flush=True,
        )
        for method, rows in seeds[seed]["candidates"].items():
            for r in sorted(rows, key=lambda r: r["latency_ms"]):
                cells = f"{100 * r['test_acc']:>7.2f}{r['latency_ms']:>8.3f} ms"
                print(f"  {method:<11}{cells}  {r['key']}")
    means = {
        m: statistics.mean(s["hypervolume"][m] for s in seeds.values())
        for m in ("aware", "afterwards")
    }
    print(f"\nmean hypervolume: aware {means['aware']:.4f}, afterwards {means['afterwards']:.4f}")
    verdict = "met" if means["aware"] > means["afterwards"] else "MISSED"
    print(f"target: compression-aware search has the larger mean hypervolume: {verdict}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"settings": vars(args), "seeds": seeds, "means": means}, fh, indent=1)


if __name__ == "__main__":
    main()
