"""Distillation after pruning: does the unpruned model make a better fine-tuning teacher
than the labels alone? Channel pruning at 70% and 85% on MNIST-1D.

Target: fine-tuning the pruned network with distillation from the unpruned one beats plain
fine-tuning with the same data, augmentation and steps by at least 1 point of test
accuracy at one of the two ratios, mean over 5 seeds, with the 95% interval of the paired
difference above 0.

Protocol: MNIST-1D generated locally by ``nf.load_dataset("mnist1d")`` (3,600 train, 400
validation, 1,000 test). The network is a fixed wide architecture of the space of
``benchmarks/mnist1d_search.py`` (3 stages of 64 channels, kernel 5, 2 conv-BN-ReLU blocks
per stage, max pooling; 104k parameters), trained once (seed 0) with that script's recipe
(Adam, lr 3e-3, cosine schedule, batch 64) plus shift/scale/noise augmentation, for
``--teacher-epochs`` epochs. It is pruned once per ratio with the ``channel_prune``
compressor (L1 importance, one shot, batch-norm statistics re-estimated on 16 training
batches; deterministic), which keeps the teacher's remaining weights. Each pruned copy is
then fine-tuned two ways, for every seed:

    plain   cross-entropy on the labels
    KD      the ``distill`` compressor with the unpruned network as teacher (``--alpha``,
            ``--temperature``; one setting for both ratios and every seed)

with the same optimizer (Adam, ``--lr``), cosine schedule, batch 64, ``--epochs`` epochs
and the same augmented batches (an ``AugmentedLoader`` seeded with the seed: the teacher
labels exactly the view the student sees, as in ``benchmarks/distill.py``). The seed
controls only the fine-tuning (shuffling and augmentation). The table gives test accuracy
(mean +- sd over seeds) and the paired difference KD - plain: its mean and 95%
t-interval over seeds (``scipy.stats.t``). Runs go to ``--workers`` processes of one
torch thread each (default 1: the driver alone)::

    python benchmarks/distill_prune.py                    # 5 seeds, 6-8 minutes on 1 core
    python benchmarks/distill_prune.py --alpha 1 --temperature 2 --epochs 100  # ~20 min
    python benchmarks/distill_prune.py --workers 2 --json distill_prune.json
    python benchmarks/distill_prune.py --quick            # smoke test, < 1 minute

The defaults (alpha 0.9, T 4, 30 epochs) are the distiller's own defaults on a short
fine-tuning schedule; docs/distillation.md gives the measured tables of all three settings
tried, none of which meets the target.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing
import statistics
import time
from typing import Any

import torch
from scipy import stats
from torch import nn

import nasforge as nf
from nasforge.data.bundle import DataBundle
from nasforge.train.augment import (
    Augment,
    AugmentedLoader,
    Compose,
    GaussianNoise,
    RandomScale,
    RandomShift,
)

TARGET = 1.0  # points of test accuracy, KD - plain, at one of the ratios
RATIOS = (0.7, 0.85)
BATCH = 64
#: the network: the widest corner of the mnist1d_search.py space (kernel 5)
ARCH = {"stages": 3, "pooling": "max"} | {
    f"{name}_{i}": value
    for i in (1, 2, 3)
    for name, value in (("channels", 64), ("kernel", 5), ("blocks", 2))
}


def augmentation() -> Augment:
    """Shift, scale and noise: the nuisances MNIST-1D itself is generated with."""
    return Compose(RandomShift(3), RandomScale(0.85, 1.15), GaussianNoise(0.1))


def build_network(data: DataBundle, seed: int = 0) -> nn.Module:
    space = nf.build(
        "space", "cnn", max_stages=3, channels=[16, 32, 64], kernels=[3, 5, 7], max_blocks=2
    )
    torch.manual_seed(seed)
    return space.build(ARCH, input_shape=data.input_shape, num_classes=data.num_classes)


def trainer(data: DataBundle, *, epochs: int, lr: float, seed: int) -> nf.Trainer:
    return nf.Trainer(
        data,
        epochs=epochs,
        batch_size=BATCH,
        optimizer="adam",
        lr=lr,
        lr_schedule="cosine",
        seed=seed,
        device="cpu",
        progress=False,
    )


def augmented_batches(data: DataBundle, seed: int) -> AugmentedLoader:
    x, y = data.train.tensors  # type: ignore[attr-defined]
    return AugmentedLoader(x, y, transform=augmentation(), batch_size=BATCH, seed=seed)


def train_teacher(data: DataBundle, *, epochs: int, lr: float) -> nn.Module:
    teacher = build_network(data, seed=0)
    trainer(data, epochs=epochs, lr=lr, seed=0).fit(teacher, augmented_batches(data, 0))
    return teacher.eval()


def test_accuracy(model: nn.Module, data: DataBundle) -> float:
    evaluator = trainer(data, epochs=1, lr=1e-3, seed=0)
    return 100 * evaluator.evaluate(model, data.test)["accuracy"]


def prune(teacher: nn.Module, data: DataBundle, ratio: float) -> tuple[nn.Module, dict]:
    """The pruned copy (batch norm re-estimated) and the pruner's stats."""
    pruner = nf.build("compressor", "channel_prune", ratio=ratio)
    pruned = pruner.apply(copy.deepcopy(teacher), trainer(data, epochs=1, lr=1e-3, seed=0))
    return pruned, pruner.stats


def finetune(
    pruned: nn.Module,
    teacher: nn.Module,
    data: DataBundle,
    *,
    kd: bool,
    seed: int,
    epochs: int,
    lr: float,
    alpha: float,
    temperature: float,
) -> float:
    """Fine-tune a copy of ``pruned``, plainly or under ``teacher``; its test accuracy (%)."""
    student = copy.deepcopy(pruned)
    fit = trainer(data, epochs=epochs, lr=lr, seed=seed)
    if kd:  # the distiller draws its batches exactly as augmented_batches(data, seed) does
        distiller = nf.build(
            "compressor",
            "distill",
            teacher=teacher,
            temperature=temperature,
            alpha=alpha,
            augment=augmentation(),
        )
        distiller.apply(student, fit)
    else:
        fit.fit(student, augmented_batches(data, seed))
    return test_accuracy(student, data)


# --- runs, in the driver or in worker processes of one thread each --------------------------
_SHARED: dict[str, Any] = {}


def _run(job: tuple[float, int, bool]) -> tuple[float, float, bool, float, float]:
    ratio, seed, kd = job
    torch.set_num_threads(1)
    started = time.perf_counter()
    settings = _SHARED["settings"]
    accuracy = finetune(
        _SHARED["pruned"][ratio],
        _SHARED["teacher"],
        _SHARED["data"],
        kd=kd,
        seed=seed,
        epochs=settings["epochs"],
        lr=settings["lr"],
        alpha=settings["alpha"],
        temperature=settings["temperature"],
    )
    return ratio, seed, kd, accuracy, time.perf_counter() - started


def t_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float]:
    """The ``level`` t-interval of the mean of ``diffs`` (NaN for fewer than 2)."""
    n = len(diffs)
    if n < 2:
        return math.nan, math.nan
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="fine-tuning seeds 0..N-1")
    parser.add_argument("--teacher-epochs", type=int, default=60)
    parser.add_argument("--teacher-lr", type=float, default=3e-3)
    parser.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate")
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the KD term")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=1, help="processes, one thread each")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny schedules, to smoke-test")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.teacher_epochs, args.epochs = 2, 3, 2
    torch.set_num_threads(1)
    started = time.perf_counter()

    data = nf.load_dataset("mnist1d")
    teacher = train_teacher(data, epochs=args.teacher_epochs, lr=args.teacher_lr)
    teacher_seconds = time.perf_counter() - started
    teacher_acc = test_accuracy(teacher, data)
    print(
        f"teacher {ARCH['channels_1']} ch x 3 stages: {teacher_acc:.1f}% test "
        f"({args.teacher_epochs} epochs, {teacher_seconds:.0f} s)",
        flush=True,
    )
    pruned: dict[float, nn.Module] = {}
    pruning: dict[float, dict[str, Any]] = {}
    for ratio in RATIOS:
        pruned[ratio], info = prune(teacher, data, ratio)
        pruning[ratio] = {
            "params": info["params_after"],
            "params_before": info["params_before"],
            "channels": info["channels_after"],
            "channels_before": info["channels_before"],
            "acc_before_finetuning": test_accuracy(pruned[ratio], data),
        }
        print(
            f"pruned {ratio:.0%}: {info['params_after']:,} params, "
            f"{pruning[ratio]['acc_before_finetuning']:.1f}% test before fine-tuning",
            flush=True,
        )

    _SHARED.update(
        data=data,
        teacher=teacher,
        pruned=pruned,
        settings={k: getattr(args, k) for k in ("epochs", "lr", "alpha", "temperature")},
    )
    jobs = [(r, s, kd) for r in RATIOS for s in range(args.seeds) for kd in (False, True)]
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            results = pool.map(_run, jobs, chunksize=1)
    else:
        results = []
        for job in jobs:
            results.append(_run(job))
            r, s, kd, acc, sec = results[-1]
            print(f"  {r:.0%} seed {s} {'KD' if kd else 'plain'}: {acc:.1f}% ({sec:.0f} s)")
    acc = {(r, s, kd): a for r, s, kd, a, _ in results}
    seconds = {kd: statistics.mean(t for *_, k, _, t in results if k is kd) for kd in (False, True)}

    rows = []
    for ratio in RATIOS:
        plain = [acc[(ratio, s, False)] for s in range(args.seeds)]
        kd = [acc[(ratio, s, True)] for s in range(args.seeds)]
        diffs = [k - p for k, p in zip(kd, plain, strict=True)]
        low, high = t_interval(diffs)
        rows.append(
            {
                "ratio": ratio,
                **pruning[ratio],
                "plain": plain,
                "kd": kd,
                "plain_mean": statistics.mean(plain),
                "plain_sd": _sd(plain),
                "kd_mean": statistics.mean(kd),
                "kd_sd": _sd(kd),
                "diff_mean": statistics.mean(diffs),
                "diff_sd": _sd(diffs),
                "ci_low": low,
                "ci_high": high,
                "met": statistics.mean(diffs) >= TARGET and low > 0,
            }
        )
    wall = time.perf_counter() - started
    met = any(row["met"] for row in rows)

    steps = args.epochs * math.ceil(len(data.train) / BATCH)
    print()
    print(
        f"MNIST-1D, teacher {teacher_acc:.1f}% test ({teacher_params(teacher):,} params); "
        f"fine-tuning {args.epochs} epochs ({steps} steps), Adam lr {args.lr:g}, cosine, "
        f"augmented; KD alpha {args.alpha:g}, T {args.temperature:g}; {args.seeds} seeds"
    )
    header = (
        f"{'ratio':>5} {'params':>7} {'pruned':>6} {'plain % (mean +- sd)':>20} "
        f"{'KD % (mean +- sd)':>18} {'KD - plain':>10} {'95% CI':>16}  target"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ci = f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
        print(
            f"{row['ratio']:>5.0%} {row['params']:>7,} {row['acc_before_finetuning']:>6.1f} "
            f"{row['plain_mean']:>12.2f} +- {row['plain_sd']:<4.2f} "
            f"{row['kd_mean']:>10.2f} +- {row['kd_sd']:<4.2f} {row['diff_mean']:>+10.2f} "
            f"{ci:>16}  "
            f"{'met' if row['met'] else 'missed'}"
        )
        print(
            f"{'':>5} per seed plain {' '.join(f'{a:.1f}' for a in row['plain'])}"
            f" | KD {' '.join(f'{a:.1f}' for a in row['kd'])}"
        )
    print(
        f"\nKD - plain >= {TARGET:g} point with the 95% CI above 0 at one ratio: "
        f"{'met' if met else 'MISSED'}; wall time {wall:.0f} s ({args.workers} process(es) "
        f"x 1 torch thread; s/run: plain {seconds[False]:.1f}, KD {seconds[True]:.1f})"
    )
    if args.json:
        out = {
            "settings": vars(args),
            "arch": ARCH,
            "teacher": {"test_acc": teacher_acc, "params": teacher_params(teacher)},
            "steps": steps,
            "rows": rows,
            "wall_seconds": wall,
            "target": {"points": TARGET, "met": met},
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


def teacher_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    main()
