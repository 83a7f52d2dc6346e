"""Architecture search on MNIST-1D: test accuracy, size and latency of the best architecture,
and the wall time of the whole run on two CPU cores.

Issue target: the search finds an architecture with at least 94% test accuracy (the
convolutional baseline of the MNIST-1D paper; its MLP reaches 68%) within 20 minutes of
wall time on two CPU cores.

Protocol: MNIST-1D generated locally by ``nf.load_dataset("mnist1d")`` (the paper's 5,000
samples, seed 42: 4,000 train, of which 400 are held out for validation, and 1,000 test).
Space: macro 1-D CNNs, 1-3 stages of 16/32/64 channels, kernels 3/5/7, 1-2 conv-BN-ReLU
blocks per stage, max or avg pooling (12,348 architectures). Each trial trains for
``--epochs`` epochs (Adam, lr 3e-3, cosine schedule, batch 64) in a ``process`` executor
with 2 workers of one thread each, and is measured (params, MACs, batch-1 latency on one
thread, median of 20 passes, taken in the worker while the other worker trains). The search
ranks by ``val_acc``; the best-by-validation architecture is tested once at the end, from
its checkpoint. After the search, the best architecture's latency is measured again in the
otherwise idle driver (200 passes), and the test accuracy of the next best trials by
validation is shown for context. The wall time covers everything from generating the data
to the last test.

    python benchmarks/mnist1d_search.py                      # evolution, 40 trials, 15 epochs
    python benchmarks/mnist1d_search.py --strategy random --budget 20 --json mnist1d.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

import nasforge as nf
from nasforge.evaluators import TrainEvaluator

TARGET = 0.94  # the convolutional baseline of the MNIST-1D paper
TIME_LIMIT = 20 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--budget", type=int, default=40, help="trials")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top", type=int, default=5, help="trials shown in the table")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    started = time.perf_counter()
    data = nf.load_dataset("mnist1d")
    space = nf.build(
        "space", "cnn", max_stages=3, channels=[16, 32, 64], kernels=[3, 5, 7], max_blocks=2
    )
    with tempfile.TemporaryDirectory(prefix="nf-mnist1d-") as checkpoints:
        evaluator = TrainEvaluator(
            space,
            data,
            epochs=args.epochs,
            lr=args.lr,
            lr_schedule="cosine",
            batch_size=64,
            seed=args.seed,
            checkpoint_dir=checkpoints,
        )
        searched = time.perf_counter()
        result = nf.search(
            space,
            evaluator,
            strategy=args.strategy,
            budget=args.budget,
            seed=args.seed,
            objective="val_acc",
            executor={"name": "process", "workers": args.workers, "threads_per_worker": 1},
            progress=False,
        )
        search_seconds = time.perf_counter() - searched
        best = result.best
        assert best is not None, "no trial finished"
        ranked = sorted(result.finished, key=lambda t: -t.metrics["val_acc"])[: args.top]
        torch.set_num_threads(1)
        for trial in ranked[1:]:  # the best trial has the search's own test metrics
            trial.metrics.update(evaluator.test(trial.arch))
        model = evaluator.load_model(best.arch)
        idle_latency = nf.measure_latency(
            model, data.input_shape, batch_size=1, threads=1, warmup=20, repeats=200
        )
    wall = time.perf_counter() - started

    failed = sum(not t.finished for t in result.trials)
    print(
        f"MNIST-1D ({len(data.train)} train / {len(data.val)} val / {len(data.test)} test), "
        f"{args.strategy}, {args.budget} trials x {args.epochs} epochs, process executor "
        f"{args.workers} x 1 thread, seed {args.seed}"
    )
    print(f"top {len(ranked)} trials by validation accuracy (test: best from the search)")
    header = f"{'#':>3} {'val':>6} {'test':>6} {'params':>7} {'kMACs':>7} {'lat ms':>7} {'s':>5}"
    print(f"{header}  arch")
    for t in ranked:
        m = t.metrics
        print(
            f"{t.number:>3} {m['val_acc']:>6.3f} {m['test_acc']:>6.3f} {m['params']:>7.0f} "
            f"{m['macs'] / 1e3:>7.0f} {m['latency_ms']:>7.3f} {t.duration:>5.1f}  {t.key}"
        )
    test_acc = best.metrics["test_acc"]
    reached = test_acc >= TARGET and wall <= TIME_LIMIT
    print()
    print(f"best by validation: trial {best.number}  {best.key}")
    print(f"  val_acc {best.metrics['val_acc']:.4f}  test_acc {test_acc:.4f}")
    print(f"  params {best.metrics['params']:.0f}  MACs {best.metrics['macs']:.0f}")
    print(
        f"  latency (batch 1, 1 thread): {best.metrics['latency_ms']:.3f} ms in the search, "
        f"{idle_latency:.3f} ms measured again on the idle driver"
    )
    print(
        f"wall time {wall:.1f} s (search {search_seconds:.1f} s, {failed} failed trials); "
        f"target >= {TARGET:.0%} test within {TIME_LIMIT // 60} min: "
        f"{'met' if reached else 'MISSED'}"
    )
    if args.json:
        out = {
            "settings": vars(args),
            "data": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "best": {
                "trial": best.number,
                "key": best.key,
                "metrics": best.metrics,
                "latency_ms_idle": idle_latency,
            },
            "top": [{"trial": t.number, "key": t.key, "metrics": t.metrics} for t in ranked],
            "wall_seconds": wall,
            "search_seconds": search_seconds,
            "target": {"test_acc": TARGET, "seconds": TIME_LIMIT, "met": reached},
            "result": result.to_dict(),
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
