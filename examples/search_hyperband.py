"""Hyperband on MNIST-1D: many short trainings, few long ones, continued from checkpoints.

With ``min_budget=1``, ``max_budget=9`` and ``eta=3`` Hyperband runs three brackets: 9
trials for 1 epoch (the best 3 continue to 3 epochs, the best of those to 9), 5 trials for
3 epochs (the best continues to 9), and 3 trials for 9 epochs: 17 trials. The training
evaluator keeps every trial's checkpoint, so a promoted trial trains only the epochs it is
missing. Prints each trial's budgets (read back from the journal) and the epochs trained,
and checks them: 69 epochs with checkpoints, 78 without. About 30 s on one CPU core (needs
``pip install mnist1d``); ``NASFORGE_QUICK=1`` runs the same 17 trials on a tenth of the
data:

    python examples/search_hyperband.py
"""

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="nasforge-hyperband-"))
    space = nf.build("space", "cnn", max_stages=2, channels=(8, 16, 32), kernels=(3, 5))
    data = nf.load_dataset("mnist1d", num_samples=500) if QUICK else "mnist1d"
    evaluator = nf.TrainEvaluator(
        space,
        data,
        epochs=9,  # the largest budget: the scheduler's max_budget
        lr=3e-3,
        lr_schedule="cosine",  # always 9 epochs long, so continuing is exact
        latency=False,
        checkpoint_dir=workdir / "checkpoints",
        seed=0,
    )
    result = nf.search(
        space,
        evaluator,
        strategy="random",
        budget=17,  # trials (architectures), whatever budgets each one runs at
        seed=0,
        scheduler={"name": "hyperband", "min_budget": 1, "max_budget": 9, "eta": 3},
        journal=workdir / "journal.jsonl",
        progress=False,
    )

    # Every rung a trial ran is an end record in the journal: (budget, val_acc).
    rungs = defaultdict(list)
    for line in (workdir / "journal.jsonl").read_text().splitlines()[1:]:
        record = json.loads(line)
        if record["type"] == "end" and record["status"] == "finished":
            rungs[record["number"]].append((record["budget"], record["metrics"]["val_acc"]))
    print("trial  epochs: val_acc")
    for number, steps in sorted(rungs.items()):
        path = "  ->  ".join(f"{b:g}: {acc:.3f}" for b, acc in steps)
        print(f"{number:5d}  {path}")

    trained = sum(steps[-1][0] for steps in rungs.values())  # continued, never retrained
    retrained = sum(b for steps in rungs.values() for b, _ in steps)
    print(f"\nepochs trained: {trained:g} (from scratch at every rung it would be {retrained:g};")
    print(f"all {len(result.trials)} trials at 9 epochs would be {9 * len(result.trials)})")
    best = result.best
    print(
        f"best: trial {best.number} at {best.budget:g} epochs, val_acc "
        f"{best.metrics['val_acc']:.3f}, test_acc {best.metrics['test_acc']:.3f}\n  {best.key}"
    )
    print(f"search took {result.duration:.0f} s")

    # The brackets above: 9 trials at 1 epoch, 3 of them to 3 and 1 to 9; 5 at 3 epochs, 1
    # of them to 9; 3 at 9 epochs. Continued, they train 69 epochs; from scratch, 78.
    assert len(result.trials) == 17, len(result.trials)
    assert (trained, retrained) == (69, 78), (trained, retrained)
    assert best.budget == 9, "the best trial comes from the largest budget"


if __name__ == "__main__":
    main()
