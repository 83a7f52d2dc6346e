"""Ensembles of searched models on MNIST-1D: the top-k ensemble against the best single model.

Issue target: the top-3 ensemble (``SearchResult.ensemble(3)``, the mean of the logits of
the three best architectures by validation accuracy, with their trained weights) beats the
best single searched model on test accuracy, mean over 3 seeds.

Protocol: the space and recipe of ``benchmarks/mnist1d_search.py`` (MNIST-1D generated
locally, 4,000 train of which 400 validate, 1,000 test; macro 1-D CNNs; Adam 3e-3, cosine,
batch 64) with a shorter search: ``--budget`` evolution trials of ``--epochs`` epochs in a
``process`` executor of 2 workers, per seed (the search's and the training's). Test
accuracy is measured once for the best model and once for each ensemble, at the end.

    python benchmarks/ensemble.py                 # 3 seeds, 16 trials x 8 epochs (~10 min)
    python benchmarks/ensemble.py --quick         # a smoke run
    python benchmarks/ensemble.py --json ensemble.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

import nasforge as nf


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=16, help="trials per search")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--k", type=int, nargs="+", default=[2, 3, 5], help="ensemble sizes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks every step")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.epochs, args.k = [0], 4, 1, [2, 3]
    return args


def run_seed(data: nf.DataBundle, seed: int, args: argparse.Namespace) -> dict[str, float]:
    space = nf.build(
        "space", "cnn", max_stages=3, channels=[16, 32, 64], kernels=[3, 5, 7], max_blocks=2
    )
    with tempfile.TemporaryDirectory(prefix="nf-ensemble-") as checkpoints:
        evaluator = nf.TrainEvaluator(
            space,
            data,
            epochs=args.epochs,
            lr=3e-3,
            lr_schedule="cosine",
            batch_size=64,
            seed=seed,
            checkpoint_dir=checkpoints,
            latency=False,
        )
        result = nf.search(
            space,
            evaluator,
            strategy="evolution",
            budget=args.budget,
            seed=seed,
            executor={"name": "process", "workers": args.workers, "threads_per_worker": 1},
            test=False,
            progress=False,
        )
        torch.set_num_threads(args.workers)
        tester = nf.Trainer(data, progress=False)
        row = {"best": tester.evaluate(evaluator.load_model(result.best.arch))["accuracy"]}
        for k in args.k:
            row[f"top{k}"] = tester.evaluate(result.ensemble(k))["accuracy"]
    return row


def main() -> None:
    args = parse_args()
    data = nf.load_dataset("mnist1d")
    rows = {}
    for seed in args.seeds:
        started = time.perf_counter()
        rows[seed] = run_seed(data, seed, args)
        cells = "  ".join(f"{name} {100 * acc:.2f}" for name, acc in rows[seed].items())
        print(f"seed {seed}: {cells}  ({time.perf_counter() - started:.0f} s)", flush=True)
    names = list(rows[args.seeds[0]])
    means = {n: statistics.mean(r[n] for r in rows.values()) for n in names}
    print(f"\n{'model':<10}{'mean test acc':>15}{'vs best':>10}")
    for name in names:
        print(f"{name:<10}{100 * means[name]:>15.2f}{100 * (means[name] - means['best']):>+10.2f}")
    verdict = "met" if means.get("top3", 0) > means["best"] else "MISSED"
    print(f"target: top-3 ensemble beats the best single model on mean test accuracy: {verdict}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"settings": vars(args), "seeds": rows, "means": means}, fh, indent=1)


if __name__ == "__main__":
    main()
