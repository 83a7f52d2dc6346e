"""Compression side by side with peers: pruning vs Torch-Pruning, int8, composition, sparsity.

Setup: torchvision's resnet18 with a CIFAR-style stem (3x3 stride-1 first conv, no max
pool, 10 classes), trained on the digits data upsampled to 16x16 and repeated to 3
channels. Every number comes from the same run; latencies are medians of 100 calls per
model on one CPU thread, the models of a table timed in turn, call by call (rotating
order), so that a busy machine slows them alike. On a shared machine the times are bimodal
(another job takes the core for seconds), so the structured table also gives the speedup
from the 10th percentile, which such load cannot inflate.

Sections (one function each, so more can be added or run alone):

    structured    nasforge channel_prune vs Torch-Pruning's L1 MagnitudePruner, 50% of
                  channels, same fine-tuning: speedup at batch 1 and 32, accuracy (also
                  nasforge without its batch-norm re-estimation, as Torch-Pruning has none)
    int8          int8 post-training quantization of the trained network (the int8
                  compressor: torch.ao FX backend)
    compose       the pruned network, then int8, through trainer.compress (the pipeline
                  report), both savings at once
    unstructured  magnitude_prune at 50% and 80% global sparsity: real sparsity, sparse
                  size, and the (absent) speedup on dense kernels
    distill       the MNIST-1D distillation ablation of benchmarks/distill.py

Run::

    nice -n 10 python benchmarks/compress.py                      # about 40-45 minutes
    python benchmarks/compress.py --sections structured,int8,compose,unstructured  # ~10 min
    python benchmarks/compress.py --quick --sections structured   # smoke test
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import nasforge as nf
from nasforge.compress.prune import sparsity_report
from nasforge.data.bundle import DataBundle
from nasforge.measure import compare_latency, count_macs, count_params, size_on_disk


@dataclass
class Context:
    """What every section shares: data, the trained baseline, settings, results."""

    args: argparse.Namespace
    data: DataBundle
    trainer: nf.Trainer
    baseline: nn.Module
    example: torch.Tensor  # test inputs, for latency
    results: dict[str, Any] = field(default_factory=dict)


def cifar_resnet18(num_classes: int = 10) -> nn.Module:
    """torchvision resnet18 with a CIFAR-style stem: 3x3 stride-1 conv1, no max pool."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def accuracy(ctx: Context, model: nn.Module) -> float:
    return 100 * ctx.trainer.evaluate(model, ctx.data.test)["accuracy"]


def latencies(
    models: dict[str, nn.Module],
    example: torch.Tensor,
    *,
    batch_size: int,
    repeats: int,
    quantile: float = 0.5,
) -> dict[str, float]:
    """Median (or another quantile) latency in ms of each model on one thread, timed in
    turn call by call."""
    return compare_latency(
        models, example, batch_size=batch_size, threads=1, repeats=repeats, quantile=quantile
    )


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def setup(args: argparse.Namespace) -> Context:
    torch.set_num_threads(args.threads)
    data = nf.load_dataset("digits", size=16, channels=3, seed=0)
    trainer = nf.Trainer(
        data,
        epochs=args.epochs,
        lr=2e-3,
        lr_schedule="cosine",
        batch_size=64,
        seed=0,
        progress=False,
    )
    nf.seed_everything(0)
    model = cifar_resnet18()
    started = time.perf_counter()
    trainer.fit(model)
    example = data.test.tensors[0][:32]
    ctx = Context(args=args, data=data, trainer=trainer, baseline=model.eval(), example=example)
    print(
        f"baseline: resnet18 (CIFAR stem) on digits 16x16, {args.epochs} epochs in "
        f"{time.perf_counter() - started:.0f} s, test accuracy {accuracy(ctx, model):.2f}%\n",
        flush=True,
    )
    return ctx


def section_structured(ctx: Context) -> None:
    """50% channel pruning: nasforge vs Torch-Pruning (L1 magnitude), same fine-tuning."""
    import torch_pruning as tp

    ratio, epochs = ctx.args.ratio, ctx.args.finetune_epochs
    finetune = nf.Trainer(
        ctx.data, epochs=epochs, lr=1e-3, lr_schedule="cosine", seed=0, progress=False
    )
    started = time.perf_counter()
    ours_pruner = nf.build("compressor", "channel_prune", ratio=ratio, importance="l1")
    ours = ours_pruner.apply(copy.deepcopy(ctx.baseline), finetune)
    ours_seconds = time.perf_counter() - started
    ours_acc_pruned = accuracy(ctx, ours)
    finetune.fit(ours)
    # the same without re-estimating batch-norm statistics (Torch-Pruning does not either)
    plain_pruner = nf.build(
        "compressor", "channel_prune", ratio=ratio, importance="l1", bn_recalibration_batches=0
    )
    plain = plain_pruner.apply(copy.deepcopy(ctx.baseline), finetune)
    plain_acc_pruned = accuracy(ctx, plain)
    finetune.fit(plain)

    peer = copy.deepcopy(ctx.baseline).eval()
    started = time.perf_counter()
    pruner = tp.pruner.MagnitudePruner(
        peer,
        ctx.example[:1],
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio,
        ignored_layers=[peer.fc],
    )
    pruner.step()
    peer_seconds = time.perf_counter() - started
    peer_acc_pruned = accuracy(ctx, peer)
    finetune.fit(peer)

    models = {
        "baseline": ctx.baseline,
        "nasforge": ours.eval(),
        "nasforge, no BN re-est.": plain.eval(),
        "torch-pruning": peer.eval(),
    }
    pruned_accs = {
        "nasforge": ours_acc_pruned,
        "nasforge, no BN re-est.": plain_acc_pruned,
        "torch-pruning": peer_acc_pruned,
    }
    prune_seconds = {"nasforge": ours_seconds, "torch-pruning": peer_seconds}
    lat1 = latencies(models, ctx.example, batch_size=1, repeats=ctx.args.repeats)
    low1 = latencies(models, ctx.example, batch_size=1, repeats=ctx.args.repeats, quantile=0.1)
    lat32 = latencies(models, ctx.example, batch_size=32, repeats=ctx.args.repeats)
    rows = []
    for name, model in models.items():
        pruned_acc = pruned_accs.get(name)
        rows.append(
            [
                name,
                count_params(model),
                count_macs(model, ctx.example[:1]) / 1e6,
                accuracy(ctx, model),
                "-" if pruned_acc is None else f"{pruned_acc:.2f}",
                lat1[name],
                lat1["baseline"] / lat1[name],
                low1["baseline"] / low1[name],
                lat32[name],
                lat32["baseline"] / lat32[name],
                f"{prune_seconds[name]:.1f}" if name in prune_seconds else "-",
            ]
        )
    print(f"== structured: {ratio:.0%} of channels, L1 magnitude, {epochs} fine-tuning epochs")
    print(
        table(
            [
                "model",
                "params",
                "MMACs",
                "acc % (tuned)",
                "acc % (pruned)",
                "b1 ms",
                "b1 speedup",
                "(p10)",
                "b32 ms",
                "b32 speedup",
                "prune s",
            ],
            rows,
        )
    )
    speed_ratio = lat1["torch-pruning"] / lat1["nasforge"]
    low_ratio = low1["torch-pruning"] / low1["nasforge"]
    gap = rows[1][3] - rows[3][3]
    gap_plain = rows[2][3] - rows[3][3]
    print(
        f"nasforge / torch-pruning batch-1 speedup: {speed_ratio:.3f} from medians, "
        f"{low_ratio:.3f} from 10th percentiles (target >= 0.95); "
        f"accuracy gap {gap:+.2f} points, without BN re-estimation {gap_plain:+.2f} "
        "(target >= -0.5)\n",
        flush=True,
    )
    ctx.results["pruned"] = ours


def section_int8(ctx: Context) -> None:
    """int8 post-training quantization of the trained baseline."""
    int8 = nf.build("compressor", "int8", calibration_batches=8)
    started = time.perf_counter()
    quantized = int8.apply(ctx.baseline, ctx.trainer)
    seconds = time.perf_counter() - started
    models = {"float32": ctx.baseline, "int8": quantized}
    lat1 = latencies(models, ctx.example, batch_size=1, repeats=ctx.args.repeats)
    lat32 = latencies(models, ctx.example, batch_size=32, repeats=ctx.args.repeats)
    base_size = size_on_disk(ctx.baseline)
    rows = [
        [
            name,
            size_on_disk(model) / 1e6,
            base_size / size_on_disk(model),
            accuracy(ctx, model),
            lat1[name],
            lat1["float32"] / lat1[name],
            lat32[name],
            lat32["float32"] / lat32[name],
        ]
        for name, model in models.items()
    ]
    print(f"== int8 post-training quantization ({int8!r}, {seconds:.1f} s)")
    print(
        table(
            ["model", "MB", "smaller", "acc %", "b1 ms", "b1 speedup", "b32 ms", "b32 speedup"],
            rows,
        )
    )
    print(
        "targets: >= 3.5x smaller, >= 2x faster at batch 1, accuracy drop <= 0.5 points; "
        f"drop here {rows[0][3] - rows[1][3]:+.2f}\n",
        flush=True,
    )


def section_compose(ctx: Context) -> None:
    """Pruned then int8: the pipeline report, then all three networks timed side by side."""
    pruned = ctx.results.get("pruned")
    if pruned is None:
        print("== compose: skipped (needs the structured section)\n")
        return
    int8 = nf.build("compressor", "int8", calibration_batches=8)
    both, report = ctx.trainer.compress(
        pruned, [int8], batch_sizes=(1, 32), threads=1, repeats=ctx.args.repeats
    )
    print("== compose: pruned (50% channels) -> int8, the pipeline report (pruned vs both)")
    print(report.table())
    models = {"float baseline": ctx.baseline, "pruned": pruned, "pruned + int8": both}
    lat1 = latencies(models, ctx.example, batch_size=1, repeats=ctx.args.repeats)
    lat32 = latencies(models, ctx.example, batch_size=32, repeats=ctx.args.repeats)
    base_size = size_on_disk(ctx.baseline)
    base_macs = count_macs(ctx.baseline, ctx.example[:1])
    rows = [
        [
            name,
            size_on_disk(model) / 1e6,
            base_size / size_on_disk(model),
            base_macs / count_macs(model, ctx.example[:1]),
            accuracy(ctx, model),
            lat1[name],
            lat1["float baseline"] / lat1[name],
            lat32[name],
            lat32["float baseline"] / lat32[name],
        ]
        for name, model in models.items()
    ]
    print("\nall three timed in turn:")
    print(
        table(
            [
                "model",
                "MB",
                "smaller",
                "fewer MACs",
                "acc %",
                "b1 ms",
                "b1 speedup",
                "b32 ms",
                "b32 speedup",
            ],
            rows,
        )
        + "\n",
        flush=True,
    )


def section_unstructured(ctx: Context) -> None:
    """Global magnitude pruning: real sparsity, sparse size, no dense speedup."""
    models: dict[str, nn.Module] = {"dense": ctx.baseline}
    reports = {}
    for sparsity in (0.5, 0.8):
        pruner = nf.build("compressor", "magnitude_prune", sparsity=sparsity, scope="global")
        name = f"{sparsity:.0%} global"
        models[name] = pruner.apply(copy.deepcopy(ctx.baseline), ctx.trainer).eval()
        reports[name] = pruner.stats
    reports["dense"] = sparsity_report(ctx.baseline)
    lat = latencies(models, ctx.example, batch_size=1, repeats=ctx.args.repeats)
    rows = [
        [
            name,
            100 * reports[name]["sparsity"],
            reports[name]["nonzero_params"],
            reports[name]["dense_bytes"] / 1e6,
            reports[name]["sparse_bytes"] / 1e6,
            accuracy(ctx, model),
            lat[name],
            lat["dense"] / lat[name],
        ]
        for name, model in models.items()
    ]
    print("== unstructured magnitude pruning (no fine-tuning)")
    print(
        table(
            ["model", "sparsity %", "nonzero", "dense MB", "CSR MB", "acc %", "b1 ms", "speedup"],
            rows,
        )
    )
    print(reports["dense"]["note"] + "\n", flush=True)


def section_distill(ctx: Context) -> None:
    """The MNIST-1D distillation ablation (benchmarks/distill.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import distill

    quick = (
        {"short_epochs": 3, "long_epochs": 5, "patient_epochs": 8, "teacher_epochs": 5}
        if ctx.args.quick
        else {}
    )
    rows = distill.distill_table(  # distill.py's own defaults are the measured schedule
        seeds=2 if ctx.args.quick else ctx.args.distill_seeds,
        log=lambda message: print(message, flush=True),
        **quick,
    )
    print("== distillation on MNIST-1D")
    print(distill.format_table(rows) + "\n", flush=True)


SECTIONS: dict[str, Callable[[Context], None]] = {
    "structured": section_structured,
    "int8": section_int8,
    "compose": section_compose,
    "unstructured": section_unstructured,
    "distill": section_distill,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from {', '.join(SECTIONS)} (default: all; distill alone "
        "takes 35-50 minutes)",
    )
    parser.add_argument("--epochs", type=int, default=8, help="baseline training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--distill-seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1 epoch each, to smoke-test")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    if args.quick:
        args.epochs, args.finetune_epochs, args.repeats = 1, 1, 20
    started = time.perf_counter()
    print(f"torch {torch.__version__}, nasforge {nf.__version__}, sections: {sections}\n")
    ctx = setup(args)
    for name in sections:
        t0 = time.perf_counter()
        SECTIONS[name](ctx)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
