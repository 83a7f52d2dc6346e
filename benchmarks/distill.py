"""Does distillation beat training the student alone? An ablation on MNIST-1D.

A 64-channel 1-D CNN teacher (trained once, with augmentation) teaches a 16-channel
student. Every student variant gets the same optimizer and cosine schedule; the rows
separate what augmentation and a longer schedule give on their own from what the teacher
adds (Beyer et al. 2022: a good teacher is patient — long schedules — and consistent —
teacher and student see the same augmented view):

    alone             student alone, short schedule, no augmentation
    alone+aug         student alone, long schedule, augmentation      (fair baseline)
    KD short          Hinton KD (T=4, alpha=0.9), short schedule, no augmentation
    KD long           Hinton KD, long schedule, no augmentation        (patience only)
    KD patient+cons.  KD (alpha=1), long schedule, same augmented view (patient+consistent)

Test accuracy is reported as mean +- standard deviation over student seeds::

    python benchmarks/distill.py                 # 5 seeds, about 10 minutes on 2 cores
    python benchmarks/distill.py --seeds 2 --quick

``distill_table()`` returns the rows for ``benchmarks/compress.py`` or a notebook.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import nasforge as nf
from nasforge.compress.distill import Distiller
from nasforge.data.bundle import DataBundle
from nasforge.train.augment import (
    Augment,
    AugmentedLoader,
    Compose,
    GaussianNoise,
    Mixup,
    RandomScale,
    RandomShift,
)


def cnn1d(channels: int, *, seed: int, length: int = 40, num_classes: int = 10) -> nn.Module:
    """Three strided 1-D convolutions and a linear head (the MNIST-1D paper's CNN shape)."""
    torch.manual_seed(seed)
    body = nn.Sequential(
        nn.Conv1d(1, channels, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    )
    features = body(torch.zeros(1, 1, length)).shape[1]
    return nn.Sequential(*body, nn.Linear(features, num_classes))


def augmentation(num_classes: int = 10, *, mixup: bool = False) -> Augment:
    """Shift, scale and noise: the nuisances MNIST-1D itself is generated with."""
    augments: list[Augment] = [RandomShift(3), RandomScale(0.85, 1.15), GaussianNoise(0.1)]
    if mixup:
        augments.append(Mixup(0.4, num_classes=num_classes))
    return Compose(*augments)


@dataclass(frozen=True)
class Variant:
    name: str
    epochs: int
    augment: bool
    teacher: bool
    alpha: float = 0.9
    temperature: float = 4.0
    mixup: bool = False


def variants(short: int, long: int) -> list[Variant]:
    return [
        Variant("alone", short, augment=False, teacher=False),
        Variant("alone+aug", long, augment=True, teacher=False),
        Variant("KD short", short, augment=False, teacher=True),
        Variant("KD long", long, augment=False, teacher=True),
        Variant(
            "KD patient+consistent", long, augment=True, teacher=True, alpha=1.0, temperature=2.0
        ),
        Variant(
            "KD patient+consistent+mixup",
            long,
            augment=True,
            teacher=True,
            alpha=1.0,
            temperature=2.0,
            mixup=True,
        ),
    ]


def _trainer(data: DataBundle, *, epochs: int, seed: int) -> nf.Trainer:
    return nf.Trainer(
        data,
        epochs=epochs,
        batch_size=128,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=1e-4,
        lr_schedule="cosine",
        seed=seed,
        device="cpu",
        progress=False,
    )


def train_teacher(data: DataBundle, *, channels: int, epochs: int, seed: int = 0) -> nn.Module:
    teacher = cnn1d(channels, seed=seed)
    x, y = data.train.tensors  # type: ignore[attr-defined]
    loader = AugmentedLoader(x, y, transform=augmentation(), batch_size=128, seed=seed)
    _trainer(data, epochs=epochs, seed=seed).fit(teacher, loader)
    return teacher


def run_variant(
    variant: Variant, data: DataBundle, teacher: nn.Module, *, channels: int, seed: int
) -> float:
    """Train one student variant; return its test accuracy."""
    student = cnn1d(channels, seed=seed)
    trainer = _trainer(data, epochs=variant.epochs, seed=seed)
    augment = augmentation(mixup=variant.mixup) if variant.augment else None
    if variant.teacher:
        Distiller(
            teacher=teacher,
            temperature=variant.temperature,
            alpha=variant.alpha,
            augment=augment,
        ).apply(student, trainer)
    elif augment is not None:
        x, y = data.train.tensors  # type: ignore[attr-defined]
        loader = AugmentedLoader(x, y, transform=augment, batch_size=128, seed=seed)
        trainer.fit(student, loader)
    else:
        trainer.fit(student)
    return trainer.evaluate(student, data.test)["accuracy"]


def distill_table(
    *,
    seeds: int = 5,
    short_epochs: int = 30,
    long_epochs: int = 200,
    teacher_epochs: int = 200,
    teacher_channels: int = 64,
    student_channels: int = 16,
    log: Callable[[str], None] = lambda message: None,
) -> list[dict[str, float | str]]:
    """Run the ablation; one row per variant with mean/std test accuracy and runtime.

    Rows: ``variant``, ``epochs``, ``acc_mean``, ``acc_std`` (test accuracy in percent,
    over ``seeds`` student seeds), ``gain`` (over the ``alone+aug`` row, in points),
    ``seconds`` (mean wall time of one student run). A first row describes the teacher.
    """
    torch.set_num_threads(1)
    data = nf.load_dataset("mnist1d")
    started = time.perf_counter()
    teacher = train_teacher(data, channels=teacher_channels, epochs=teacher_epochs)
    teacher_seconds = time.perf_counter() - started
    teacher_acc = 100 * _trainer(data, epochs=1, seed=0).evaluate(teacher, data.test)["accuracy"]
    log(f"teacher: {teacher_acc:.1f}% test accuracy in {teacher_seconds:.0f} s")
    rows: list[dict[str, float | str]] = [
        {
            "variant": f"teacher ({teacher_channels} ch, aug)",
            "epochs": teacher_epochs,
            "acc_mean": teacher_acc,
            "acc_std": 0.0,
            "gain": float("nan"),
            "seconds": teacher_seconds,
        }
    ]
    for variant in variants(short_epochs, long_epochs):
        accs, times = [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            accs.append(
                100 * run_variant(variant, data, teacher, channels=student_channels, seed=seed)
            )
            times.append(time.perf_counter() - t0)
        row: dict[str, float | str] = {
            "variant": variant.name,
            "epochs": variant.epochs,
            "acc_mean": statistics.mean(accs),
            "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "seconds": statistics.mean(times),
        }
        rows.append(row)
        log(
            f"{variant.name}: {row['acc_mean']:.2f} +- {row['acc_std']:.2f} "
            f"({', '.join(f'{a:.1f}' for a in accs)})"
        )
    baseline = next(r for r in rows if r["variant"] == "alone+aug")
    for row in rows[1:]:
        row["gain"] = float(row["acc_mean"]) - float(baseline["acc_mean"])
    return rows


def format_table(rows: list[dict[str, float | str]]) -> str:
    lines = [
        f"{'variant':<30} {'epochs':>6} {'test acc %':>15} {'vs alone+aug':>13} {'s/run':>7}",
        "-" * 75,
    ]
    for r in rows:
        gain = float(r["gain"])
        lines.append(
            f"{r['variant']!s:<30} {r['epochs']:>6} "
            f"{float(r['acc_mean']):>7.2f} +- {float(r['acc_std']):<4.2f} "
            f"{'' if gain != gain else f'{gain:+.2f}':>13} {float(r['seconds']):>7.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--short-epochs", type=int, default=30)
    parser.add_argument("--long-epochs", type=int, default=200)
    parser.add_argument("--teacher-epochs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny schedules, to smoke-test")
    args = parser.parse_args()
    if args.quick:
        args.short_epochs, args.long_epochs, args.teacher_epochs = 3, 5, 5
    started = time.perf_counter()
    rows = distill_table(
        seeds=args.seeds,
        short_epochs=args.short_epochs,
        long_epochs=args.long_epochs,
        teacher_epochs=args.teacher_epochs,
        log=lambda message: print(message, flush=True),
    )
    print()
    print(format_table(rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s (torch threads: 1)")


if __name__ == "__main__":
    main()
