"""Interrupt a search, resume it from its journal, then extend it.

The first run stops with a (simulated) Ctrl-C during its 6th trial: the five finished
trials are in the journal, the sixth is marked interrupted. Resuming replays the recorded
trials without training them and trains only what is missing; the result is the one an
uninterrupted run gives. Resuming again with a larger budget adds trials. The script
checks each of these claims. About 10 s on one CPU core; ``NASFORGE_QUICK=1`` trains every
trial for one epoch instead of three:

    python examples/search_resume.py
"""

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


class Counting:
    """Wraps an evaluator: records which archs it trains; Ctrl-C on call ``stop_at``."""

    def __init__(self, evaluator, stop_at=None):
        self.evaluator = evaluator
        self.stop_at = stop_at
        self.trained = []

    def evaluate(self, arch, budget=None):
        if len(self.trained) + 1 == self.stop_at:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of training
        self.trained.append(arch.key)
        return self.evaluator.evaluate(arch, budget)

    def __getattr__(self, name):  # measure(), test(): those of the wrapped evaluator
        return getattr(self.evaluator, name)


def main() -> None:
    torch.set_num_threads(1)
    journal = Path(tempfile.mkdtemp(prefix="nasforge-resume-")) / "journal.jsonl"
    space = nf.build("space", "mlp", max_depth=2, widths=(16, 32, 64, 128))
    evaluator = nf.TrainEvaluator(
        space, "digits", epochs=1 if QUICK else 3, lr=3e-3, latency=False, seed=0
    )
    options = dict(
        strategy="evolution",
        strategy_options={"population_size": 4, "sample_size": 2},
        seed=0,
        objective="val_acc",
        journal=journal,
        progress=False,
    )

    first = nf.search(space, Counting(evaluator, stop_at=6), budget=10, **options)
    statuses = Counter(t.status.value for t in first.trials)
    print("first run:  ", dict(statuses))
    assert statuses == {"finished": 5, "interrupted": 1}, statuses

    again = Counting(evaluator)
    resumed = nf.search(space, again, budget=10, resume=True, **options)
    print(f"resumed:     {len(again.trained)} trials trained, ", end="")
    print(dict(Counter(t.status.value for t in resumed.trials)))
    already = {t.key for t in first.trials if t.finished}
    print("  finished before and trained again:", len(already & set(again.trained)))
    assert not already & set(again.trained), "resuming trained finished trials again"
    assert len(again.trained) == 5, "the interrupted trial and the four never started"
    print(f"  best: val_acc {resumed.best.metrics['val_acc']:.3f}  {resumed.best.key}")

    other = {**options, "journal": journal.with_name("uninterrupted.jsonl")}
    straight = nf.search(space, evaluator, budget=10, **other)
    same = [(t.key, t.metrics["val_acc"]) for t in straight.trials] == [
        (t.key, t.metrics["val_acc"]) for t in resumed.trials
    ]
    print("  same trials and scores as an uninterrupted run:", same)
    assert same, "the resumed search differs from the uninterrupted one"

    more = Counting(evaluator)
    extended = nf.search(space, more, budget=14, resume=True, **options)
    print(f"extended to 14: {len(more.trained)} trials trained, {len(extended.finished)} finished")
    assert (len(more.trained), len(extended.finished)) == (4, 14)

    ends = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    ends = Counter(r["status"] for r in ends if r["type"] == "end")
    print(f"journal end records: {dict(ends)} in {journal}")
    assert ends == {"finished": 14, "interrupted": 1}, ends


if __name__ == "__main__":
    main()
