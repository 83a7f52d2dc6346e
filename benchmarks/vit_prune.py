"""ViT-B/16 pruned 30%: speed at batch 1, and accuracy after fine-tuning beside Torch-Pruning.

Issue targets: ``vit_b_16`` pruned at ratio 0.3 runs at least 1.3x faster at batch 1 on one
thread, and comes within 1 point of Torch-Pruning's accuracy after the same fine-tuning on
a small task.

- **Speed**: torchvision's ``vit_b_16`` (random weights) at 224x224, original and pruned
  with ``nf.prune_channels(ratio=0.3)`` (9 of 12 heads and 70% of the MLP features of each
  block kept; the embedding stays whole), timed in turn on one thread
  (``nf.measure.compare_latency``, medians).
- **Accuracy**: the task is the embedded digits at 32x32, 3 channels (1,257 / 270 / 270
  train / val / test images); ``vit_b_16(image_size=32)`` (2x2 patches of 16 pixels) is
  trained from scratch for ``--epochs`` (Adam, cosine schedule), then pruned at 0.3 by
  nasforge and by Torch-Pruning's ``MagnitudePruner`` (L1, ``num_heads`` given, the head
  ignored; it prunes the embedding dimension, as its ViT example does), and both copies
  are fine-tuned with the same Trainer settings for ``--finetune-epochs``. Test accuracy
  of each, and the difference, per seed.

    python benchmarks/vit_prune.py                     # speed, then seed 0
    python benchmarks/vit_prune.py --seeds 0 1 2 --json vit.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import warnings
from typing import Any

import torch
from torch import nn
from torchvision.models import vit_b_16

import nasforge as nf
from nasforge.measure import compare_latency


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def prune_ours(model: nn.Module, x: torch.Tensor, ratio: float) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nf.PruningWarning)  # the embedding stays whole
        return nf.prune_channels(model, x, ratio=ratio)


def prune_peer(model: nn.Module, x: torch.Tensor, ratio: float) -> nn.Module:
    """Torch-Pruning as its torchvision ViT example calls it."""
    import torch_pruning as tp

    model = copy.deepcopy(model).eval()
    heads = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    pruner = tp.pruner.MagnitudePruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio,
        ignored_layers=[model.heads],
        num_heads=heads,
    )
    pruner.step()
    model.hidden_dim = model.conv_proj.out_channels  # the forward reshapes with it
    return model


def speed(ratio: float, repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = vit_b_16(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    small = prune_ours(model, x, ratio)
    times = compare_latency(
        {"original": model, "pruned": small}, x, threads=1, warmup=2, repeats=repeats
    )
    return {
        "params": [params(model), params(small)],
        "ms": [times["original"], times["pruned"]],
        "speedup": times["original"] / times["pruned"],
    }


def accuracy_run(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    data = nf.load_dataset("digits", size=32, channels=3, seed=seed)
    torch.manual_seed(seed)
    model = vit_b_16(weights=None, image_size=32, num_classes=10)

    def trainer(epochs: int, lr: float) -> nf.Trainer:
        return nf.Trainer(
            data, epochs=epochs, lr=lr, lr_schedule="cosine", batch_size=64, seed=seed,
            progress=args.progress,
        )  # fmt: skip

    started = time.perf_counter()
    trainer(args.epochs, args.lr).fit(model)
    x = torch.randn(1, 3, 32, 32)
    test = trainer(1, args.lr)
    row: dict[str, Any] = {"seed": seed, "trained_test_acc": test.evaluate(model)["accuracy"]}
    for name, prune in (("ours", prune_ours), ("torch_pruning", prune_peer)):
        small = prune(copy.deepcopy(model).eval(), x, args.ratio)
        tune = trainer(args.finetune_epochs, args.finetune_lr)
        tune.fit(small)
        accuracy = tune.evaluate(small)["accuracy"]
        row[name] = {"params": params(small) / params(model), "test_acc": accuracy}
    row["difference"] = row["ours"]["test_acc"] - row["torch_pruning"]["test_acc"]
    row["seconds"] = time.perf_counter() - started
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--finetune-lr", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=7, help="latency repeats")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out: dict[str, Any] = {"ratio": args.ratio}
    if not args.skip_speed:
        out["speed"] = s = speed(args.ratio, args.repeats)
        print(
            f"vit_b_16 224x224 batch 1, one thread: {s['ms'][0]:.0f} -> {s['ms'][1]:.0f} ms, "
            f"{s['speedup']:.2f}x faster; parameters {s['params'][0] / 1e6:.1f}M -> "
            f"{s['params'][1] / 1e6:.1f}M",
            flush=True,
        )
    rows = []
    print(f"\n{'seed':>4s} {'trained':>8s} {'ours':>7s} {'kept':>6s} {'TP':>7s} {'kept':>6s}"
          f" {'ours-TP':>8s}")  # fmt: skip
    for seed in args.seeds:
        row = accuracy_run(seed, args)
        rows.append(row)
        ours, peer = row["ours"], row["torch_pruning"]
        print(
            f"{seed:4d} {row['trained_test_acc']:8.2%} {ours['test_acc']:7.2%} "
            f"{ours['params']:6.1%} {peer['test_acc']:7.2%} {peer['params']:6.1%} "
            f"{row['difference'] * 100:+8.2f}",
            flush=True,
        )
    mean = statistics.mean(r["difference"] for r in rows) * 100
    print(f"\nmean ours - Torch-Pruning: {mean:+.2f} points (target: > -1)")
    out["rows"] = rows
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
