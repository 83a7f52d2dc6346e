"""Search CNNs for MNIST-1D under a parameter budget, two trials at a time.

Regularized evolution proposes architectures of the ``cnn`` space; each is measured
first (parameters, MACs, latency: no training) and skipped if it breaks
``params <= 20_000``, otherwise trained for 5 epochs in its own worker process. Every
trial is recorded in a journal; the best architecture by validation accuracy is scored
once on the test split. It checks that every trained architecture has at most 20,000
parameters, that larger ones were never trained, and that the journal records every trial.
About a minute on two CPU cores (needs ``pip install mnist1d``); ``NASFORGE_QUICK=1``
trains 4 trials for one epoch on a tenth of the data:

    python examples/search_mnist1d.py
"""

import json
import os
import tempfile
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="nasforge-search-"))
    space = nf.build("space", "cnn")  # 1-3 stages of 8-64 channels, kernels 3/5/7
    data = nf.load_dataset("mnist1d", num_samples=500) if QUICK else "mnist1d"
    budget = 4 if QUICK else 12  # trained trials; infeasible candidates do not count
    evaluator = nf.TrainEvaluator(
        space,
        data,
        epochs=1 if QUICK else 5,
        lr=3e-3,
        lr_schedule="cosine",
        checkpoint_dir=workdir / "checkpoints",  # test() then reuses the trained weights
        seed=0,
    )
    result = nf.search(
        space,
        evaluator,
        strategy="evolution",
        strategy_options={"population_size": 6, "sample_size": 3},
        budget=budget,
        seed=0,
        objective="val_acc",
        constraints=["params <= 20_000"],
        executor={"name": "process", "workers": 2},
        journal=workdir / "journal.jsonl",
        progress=False,
    )

    for t in result.trials:
        if t.finished:
            what = f"val_acc {t.metrics['val_acc']:.3f}  params {t.metrics['params']:>6,.0f}"
        else:
            what = f"{t.status.value}: {t.error}"
        print(f"trial {t.number:2d}  {what}  ({t.duration:.1f} s)")

    best = result.best
    print(f"\nbest of {len(result.finished)} trained trials: {best.key}")
    print(
        f"  val_acc {best.metrics['val_acc']:.3f}  test_acc {best.metrics['test_acc']:.3f}  "
        f"params {best.metrics['params']:,.0f}  MACs {best.metrics['macs']:,.0f}  "
        f"latency {best.metrics['latency_ms']:.3f} ms"
    )
    lines = (workdir / "journal.jsonl").read_text().splitlines()
    print(f"journal: {workdir / 'journal.jsonl'} ({len(lines)} records)")
    print(f"search took {result.duration:.0f} s")

    assert len(result.finished) == budget, "the budget counts trained trials"
    for t in result.trials:
        if t.finished:
            assert t.metrics["params"] <= 20_000, f"trial {t.number} breaks the constraint"
        else:  # measured, found too large, never trained
            assert t.status is nf.TrialStatus.INFEASIBLE and "val_acc" not in t.metrics, t
    ends = [r for r in map(json.loads, lines[1:]) if r["type"] == "end"]
    assert len(ends) == len(result.trials), "one end record per trial"
    assert "test_acc" in best.metrics, "the best architecture is scored on the test split"


if __name__ == "__main__":
    main()
