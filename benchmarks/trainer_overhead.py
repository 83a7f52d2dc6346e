"""Wall-time ratio of ``Trainer.fit`` to a plain hand-written PyTorch loop.

Both train the same CNN from the same initial weights for the same epochs on the same
batches (one shared ``DataLoader``) and evaluate on the validation split after every
epoch. Runs are interleaved (plain, Trainer, Trainer, plain, ...) and the ratio of medians
is reported, since these machines are shared and noisy. A second row shows the Trainer's
default path for in-memory data (``TensorLoader``), which skips per-sample collation.

    python benchmarks/trainer_overhead.py [--pairs 7] [--epochs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

import nasforge as nf


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def plain_loop(model: nn.Module, train: DataLoader, val: DataLoader, epochs: int) -> float:
    """What one writes by hand: train, then validation loss and accuracy each epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = total = 0
        val_loss = 0.0
        with torch.no_grad():
            for x, y in val:
                out = model(x)
                val_loss += criterion(out, y).item() * len(y)
                correct += (out.argmax(1) == y).sum().item()
                total += len(y)
        accuracy = correct / total
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = nf.load_dataset("digits", size=16)
    generator = torch.Generator()
    train = DataLoader(data.train, batch_size=64, shuffle=True, generator=generator)
    val = DataLoader(data.val, batch_size=512)

    def run_plain() -> float:
        generator.manual_seed(0)
        start = time.perf_counter()
        plain_loop(make_model(), train, val, args.epochs)
        return time.perf_counter() - start

    def run_trainer(train_data) -> float:
        generator.manual_seed(0)
        trainer = nf.Trainer(train_data, val, epochs=args.epochs, lr=1e-3, progress=False, seed=0)
        start = time.perf_counter()
        trainer.fit(make_model())
        return time.perf_counter() - start

    run_plain(), run_trainer(train)  # warm-up
    plain, same_loader, fast_path = [], [], []
    for i in range(args.pairs):
        order = [0, 1, 2] if i % 2 == 0 else [2, 1, 0]
        for which in order:
            if which == 0:
                plain.append(run_plain())
            elif which == 1:
                same_loader.append(run_trainer(train))
            else:
                fast_path.append(run_trainer(data.train))

    base = statistics.median(plain)
    rows = [
        ("plain loop (DataLoader)", base, 1.0),
        ("Trainer.fit (same DataLoader)", statistics.median(same_loader), 0.0),
        ("Trainer.fit (Dataset -> TensorLoader)", statistics.median(fast_path), 0.0),
    ]
    rows = [(name, t, t / base) for name, t, _ in rows]
    print(
        f"digits 16x16, {len(data.train)} train / {len(data.val)} val, {args.epochs} epochs, "
        f"batch 64, {args.threads} thread(s), median of {args.pairs} interleaved runs"
    )
    print(f"{'run':<40} {'median s':>9} {'ratio':>7}")
    for name, seconds, ratio in rows:
        print(f"{name:<40} {seconds:>9.3f} {ratio:>7.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "epochs": args.epochs,
                    "pairs": args.pairs,
                    "rows": [{"run": n, "median_s": t, "ratio": r} for n, t, r in rows],
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
