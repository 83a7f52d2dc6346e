"""One-shot search on MNIST-1D: a supernet, evolution over it, DARTS, and retraining.

The 1-D NAS-Bench-201 cell (8 channels, two cells per stage). A supernet is trained once
by single-path sampling; evolution then scores 100 cells with its inherited weights, in
milliseconds each. DARTS (with its collapse guard) learns a cell by gradient. Both cells are rebuilt
stand-alone and trained from scratch, and printed with their test accuracy. It checks
that scoring a cell with the supernet costs less than training it, and that each
retrained cell beats chance by far (docs/oneshot.md has the measured ranking quality,
which is still weak). A few minutes on two CPU cores (needs ``pip install mnist1d``);
``NASFORGE_QUICK=1`` runs every step on 1,000 samples with 4 channels:

    python examples/oneshot_mnist1d.py
"""

import os
import time

import torch

import nasforge as nf
from nasforge.oneshot import Darts

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    torch.set_num_threads(2)
    data = nf.load_dataset("mnist1d", num_samples=1000 if QUICK else 10_000)
    space = nf.build("space", "nb201")
    build = {"channels": 4 if QUICK else 8, "cells_per_stage": 1 if QUICK else 2}
    recipe = nf.TrainConfig(
        epochs=3,
        batch_size=64 if QUICK else 128,
        lr=3e-3,
        lr_schedule="cosine",
        seed=0,
        progress=False,
    )

    started = time.perf_counter()
    supernet = nf.SupernetEvaluator(
        space, data, build_options=build, config=recipe.replace(epochs=4 if QUICK else 20)
    )
    trained = time.perf_counter()
    queries = 20 if QUICK else 100
    result = nf.search(
        space, supernet, strategy="evolution", budget=queries, seed=0, progress=False
    )
    per_query = (time.perf_counter() - trained) / queries
    print(f"supernet + evolution: {result.best.key}")
    print(f"  supernet trained in {trained - started:.0f} s, {per_query * 1000:.0f} ms per cell")

    started = time.perf_counter()
    darts = Darts(space, data, build_options=build, arch_lr=1e-2, config=recipe).run()
    seconds = time.perf_counter() - started
    print(f"DARTS (guard: beta-decay): {darts.arch.key} in {seconds:.0f} s")

    for name, arch in (("supernet + evolution", result.best.arch), ("DARTS", darts.arch)):
        _, metrics = nf.retrain(space, arch, data, build_options=build, config=recipe)
        print(
            f"{name:<22} retrained: test accuracy {metrics['test_acc']:.3f}, "
            f"{metrics['params']:,.0f} parameters, {metrics['train_seconds']:.1f} s"
        )
        floor = 0.2 if QUICK else 0.8  # chance is 0.1
        assert metrics["test_acc"] > floor, f"{name}: {metrics['test_acc']:.3f} <= {floor}"
        assert per_query < metrics["train_seconds"], (
            "scoring a cell must cost less than training it"
        )


if __name__ == "__main__":
    main()
