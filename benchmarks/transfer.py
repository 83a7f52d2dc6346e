"""Transfer learning: fine-tuning a pre-trained backbone against the same network from scratch.

Issue target: fine-tuning a backbone pre-trained on one task beats training the same
network from scratch by at least 5 points of test accuracy when the target task has 10% of
its labels.

Tasks (no downloads: the benchmark makes its own "pre-trained" weights). The digits
(``nf.load_dataset("digits", size=32, seed=0)``: 1,797 8x8 handwritten digits upsampled to
32x32, split 1,259 train / 269 validation / 269 test, stratified) are cut in two:

- source task: digits 0-4, all of their ~630 training labels. The full torchvision model
  (``torchvision.models.<backbone>(num_classes=5)``, random initialisation, 3-channel
  input) is trained on it with the Trainer (``--pretrain-epochs`` epochs, Adam 1e-3,
  cosine, batch 64, seed 0) and its state_dict saved to a temporary file.
- target task: digits 5-9 relabelled 0-4; per seed, a stratified, seeded 10%
  (``--fraction``) of their ~630 training images keep their labels (63 images, 12-13 per
  class) and the rest are dropped. Validation (134 images) and test (134 images) are the
  target's own digits 5-9 of the validation and test splits; validation only ranks the
  trials of a search, the test split is used once per reported model.

Methods, both through ``TransferEvaluator`` with the same epochs, batch, cosine schedule
and training seed, on ``TransferSpace(backbone, weights=...)``:

- pretrained: ``weights`` = the source state_dict (its classifier replaced by the head);
- scratch: ``weights=None``, the same network randomly initialised.

Recipes: ``fixed`` trains one arch (freeze 0, no gradual unfreezing, head depth 0,
dropout 0.2, backbone_lr 1e-3, head_lr 1e-2) for both; ``searched`` runs
``nf.search(space, evaluator, strategy="random", budget=--budget, seed=seed)`` over the
whole space (freeze, unfreeze, head, dropout, both learning rates) for each method and
reports the test accuracy of its best-by-validation arch (``--budget 0``: fixed only).
Every number is the mean +- sd over ``--seeds`` (a seed sets the 10% label subset, the
training and the search; the source model is pre-trained once, seed 0); the difference is
pretrained minus scratch, seed by seed; ``s/seed`` is the wall time of one recipe for one
seed (a whole search for ``searched``). The target is met when the mean difference is at
least 5 points.

    python benchmarks/transfer.py                 # resnet18, 3 seeds (~20 min on 2 cores)
    python benchmarks/transfer.py --quick         # a smoke run (< 1 minute)
    python benchmarks/transfer.py --backbones mobilenet_v2 --json transfer.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

import nasforge as nf

TARGET = 5.0  # points of test accuracy
FIXED = {
    "freeze": 0,
    "unfreeze": False,
    "head_depth": 0,
    "dropout": 0.2,
    "backbone_lr": 1e-3,
    "head_lr": 1e-2,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet18"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.1, help="target labels kept")
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20, help="target training epochs")
    parser.add_argument("--batch-size", type=int, default=16, help="target batch size")
    parser.add_argument("--budget", type=int, default=6, help="trials per search (0: none)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks every step")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.backbones, args.seeds = ["resnet18"], [0]
        args.size, args.pretrain_epochs, args.epochs, args.budget = 16, 2, 2, 2
    return args


def _subset(split: Any, classes: range) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of ``split`` whose label is in ``classes``, relabelled from 0."""
    x, y = split.tensors
    keep = (y >= classes.start) & (y < classes.stop)
    return x[keep], y[keep] - classes.start


def tasks(size: int) -> tuple[nf.DataBundle, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The source task (digits 0-4, 3 channels, every label) and the target's splits
    (digits 5-9 relabelled 0-4, 1 channel, every label)."""
    source = nf.load_dataset("digits", size=size, channels=3, seed=0)
    target = nf.load_dataset("digits", size=size, seed=0)
    low, high = range(0, 5), range(5, 10)
    splits = {s: TensorDataset(*_subset(getattr(source, s), low)) for s in ("train", "val", "test")}
    source_task = nf.DataBundle(
        name="digits 0-4",
        num_classes=5,
        input_shape=source.input_shape,
        **splits,
    )
    target_splits = {s: _subset(getattr(target, s), high) for s in ("train", "val", "test")}
    return source_task, target_splits


def few_labels(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], fraction: float, seed: int
) -> nf.DataBundle:
    """The target task with a stratified ``fraction`` of its training labels (seeded)."""
    x, y = splits["train"]
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for label in y.unique():
        where = (y == label).nonzero().flatten()
        count = max(1, round(fraction * len(where)))
        kept.append(where[torch.randperm(len(where), generator=generator)[:count]])
    index = torch.cat(kept).sort().values
    return nf.DataBundle(
        name=f"digits 5-9, {fraction:.0%} of the labels",
        train=TensorDataset(x[index], y[index]),
        val=TensorDataset(*splits["val"]),
        test=TensorDataset(*splits["test"]),
        num_classes=5,
        input_shape=tuple(x.shape[1:]),
    )


def pretrain(backbone: str, source: nf.DataBundle, epochs: int, path: Path) -> dict[str, float]:
    """Train the full torchvision ``backbone`` on the source task; save its state_dict."""
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, backbone)(num_classes=source.num_classes)
    trainer = nf.Trainer(
        source,
        epochs=epochs,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        lr_schedule="cosine",
        seed=0,
        device="cpu",
        progress=False,
    )
    started = time.perf_counter()
    trainer.fit(model)
    seconds = time.perf_counter() - started
    torch.save(model.state_dict(), path)
    return {"test_acc": trainer.evaluate(model, source.test)["accuracy"], "seconds": seconds}


def run_method(
    backbone: str,
    weights: Path | None,
    data: nf.DataBundle,
    seed: int,
    args: argparse.Namespace,
    checkpoints: str,
) -> dict[str, Any]:
    """The fixed recipe and a random search for one method and seed."""
    space = nf.build("space", "transfer", backbone=backbone, weights=weights)
    out: dict[str, Any] = {}
    # one checkpoint directory per method (a shared one is refused: other weights)
    evaluator = nf.TransferEvaluator(
        space,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_schedule="cosine",
        seed=seed,
        latency=False,
        checkpoint_dir=checkpoints,
    )
    started = time.perf_counter()
    fixed = space.arch(FIXED)
    metrics = evaluator.evaluate(fixed)
    out["fixed"] = {
        "val_acc": metrics["val_acc"],
        "test_acc": evaluator.test(fixed)["test_acc"],
        "arch": fixed.to_dict(),
        "seconds": time.perf_counter() - started,
    }
    if args.budget == 0:
        return out
    started = time.perf_counter()
    result = nf.search(
        space, evaluator, strategy="random", budget=args.budget, seed=seed, progress=False
    )
    best = result.best
    out["searched"] = {
        "val_acc": best.metrics["val_acc"],
        "test_acc": best.metrics["test_acc"],
        "arch": best.arch.to_dict(),
        "trials_val_acc": [t.metrics.get("val_acc") for t in result.trials],
        "seconds": time.perf_counter() - started,
    }
    return out


def summarise(runs: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per backbone, method and recipe: test accuracy mean and sd over seeds (in
    percent), and for pretrained rows the paired difference to scratch."""
    rows = []
    for backbone, by_seed in runs.items():
        for recipe in ("fixed", "searched") if args.budget else ("fixed",):
            accs = {
                method: [100 * by_seed[s][method][recipe]["test_acc"] for s in args.seeds]
                for method in ("pretrained", "scratch")
            }
            diffs = [p - s for p, s in zip(accs["pretrained"], accs["scratch"], strict=True)]
            for method in ("pretrained", "scratch"):
                row = {
                    "backbone": backbone,
                    "method": method,
                    "recipe": recipe,
                    "test_accs": accs[method],
                    "mean": statistics.mean(accs[method]),
                    "sd": _sd(accs[method]),
                    "seconds_per_seed": statistics.mean(
                        by_seed[s][method][recipe]["seconds"] for s in args.seeds
                    ),
                }
                if method == "pretrained":
                    row["diff"], row["diff_sd"] = statistics.mean(diffs), _sd(diffs)
                    row["met"] = row["diff"] >= TARGET
                rows.append(row)
    return rows


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'backbone':<13}{'method':<12}{'recipe':<10}{'target test acc %':>20}"
        f"{'pre - scratch':>16}{'  >= 5 points':<14}{'s/seed':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        diff = f"{r['diff']:+.1f} +- {r['diff_sd']:.1f}" if "diff" in r else ""
        verdict = ("met" if r["met"] else "MISSED") if "met" in r else ""
        lines.append(
            f"{r['backbone']:<13}{r['method']:<12}{r['recipe']:<10}"
            f"{r['mean']:>12.1f} +- {r['sd']:<4.1f}{diff:>16}  {verdict:<12}"
            f"{r['seconds_per_seed']:>7.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    source, target_splits = tasks(args.size)
    print(
        f"source task: {source.name}, {len(source.train)} training labels; target task: "
        f"digits 5-9 relabelled 0-4, {args.fraction:.0%} of "
        f"{len(target_splits['train'][1])} training labels, "
        f"{len(target_splits['val'][1])} validation, {len(target_splits['test'][1])} test; "
        f"{args.size}x{args.size}",
        flush=True,
    )
    runs: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nf-transfer-") as tmp:
        for backbone in args.backbones:
            weights = Path(tmp) / f"{backbone}-digits0-4.pt"
            sources[backbone] = pretrain(backbone, source, args.pretrain_epochs, weights)
            print(
                f"{backbone}: pre-trained on the source task in "
                f"{sources[backbone]['seconds']:.0f} s, source test accuracy "
                f"{100 * sources[backbone]['test_acc']:.1f}%",
                flush=True,
            )
            runs[backbone] = {}
            for seed in args.seeds:
                data = few_labels(target_splits, args.fraction, seed)
                runs[backbone][seed] = {}
                for method, path in (("pretrained", weights), ("scratch", None)):
                    out = run_method(
                        backbone, path, data, seed, args, f"{tmp}/{backbone}-{method}-{seed}"
                    )
                    runs[backbone][seed][method] = out
                    line = f"  seed {seed} {method:<10} ({len(data.train)} labels): " + ", ".join(
                        f"{recipe} test {100 * r['test_acc']:.1f} (val {100 * r['val_acc']:.1f}, "
                        f"{r['seconds']:.0f} s)"
                        for recipe, r in out.items()
                    )
                    if "searched" in out:
                        line += f" {out['searched']['arch']}"
                    print(line, flush=True)
    rows = summarise(runs, args)
    print()
    print(format_table(rows))
    total = time.perf_counter() - started
    print(
        f"\nseeds {args.seeds}; {args.epochs} target epochs (batch {args.batch_size}), "
        f"{args.pretrain_epochs} source epochs, random search of {args.budget} trials; "
        f"total {total:.0f} s on 1 torch thread"
    )
    met = all(r["met"] for r in rows if "met" in r)
    print(
        f"target: pretrained beats scratch by >= {TARGET:.0f} points with "
        f"{args.fraction:.0%} of the target labels, every row: {'met' if met else 'MISSED'}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "settings": vars(args),
                    "source": sources,
                    "runs": runs,
                    "rows": rows,
                    "seconds": total,
                },
                fh,
                indent=1,
                default=str,
            )


if __name__ == "__main__":
    main()
