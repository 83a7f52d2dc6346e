"""Does distillation beat training the student alone? An ablation on MNIST-1D.

A 64-channel 1-D CNN teacher (trained with augmentation; three of them, seeds 0-2, form
an ensemble teacher averaging their probabilities) teaches a 16-channel student. Every
student gets the same optimizer, learning rate and cosine schedule. Each distillation row
is compared, seed by seed, with the student-alone row that has the same schedule and the
same augmentation ("vs matched alone"), and with the best student-alone row at the same
schedule ("vs best alone"), so that what augmentation and a longer schedule give on their
own is not credited to the teacher (Beyer et al. 2022: a good teacher is patient — long
schedules — and consistent — teacher and student see the same augmented view). Rows:

    alone / alone+aug / alone+aug+mixup   the student alone (short or long schedule)
    KD short (Hinton)              T=4, alpha=0.9, short schedule, no augmentation
    KD long                        alpha=1, T=2, long schedule (patience only)
    KD patient+consistent          alpha=1, T=2, long, same shift/scale/noise view
    KD patient+consistent T=1      the same at temperature 1
    KD p+c, teacher ensemble       the same (T=2) with the 3-teacher ensemble
    KD patient+consistent+mixup    the same (T=2) with mixup ("function matching")

Test accuracy is reported as mean +- standard deviation over student seeds::

    python benchmarks/distill.py                 # 5 seeds, ~17 minutes on 2 busy cores
    python benchmarks/distill.py --seeds 2 --quick

``distill_table()`` returns the rows for ``benchmarks/compress.py`` or a notebook.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import nasforge as nf
from nasforge.compress.distill import Distiller, TeacherEnsemble
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
    long: bool  # the long schedule, else the short one
    augment: bool = False
    mixup: bool = False
    teacher: str = ""  # "" (student alone), "single" or "ensemble"
    alpha: float = 1.0
    temperature: float = 2.0
    baseline: str = ""  # the student-alone row with the same schedule and augmentation


def variants() -> list[Variant]:
    """Students alone, then each distillation recipe next to its matched baseline."""
    return [
        Variant("alone", long=False),
        Variant("alone", long=True),
        Variant("alone+aug", long=True, augment=True),
        Variant("alone+aug+mixup", long=True, augment=True, mixup=True),
        Variant(
            "KD short (Hinton)",
            long=False,
            teacher="single",
            alpha=0.9,
            temperature=4.0,
            baseline="alone",
        ),
        Variant("KD long", long=True, teacher="single", baseline="alone"),
        Variant(
            "KD patient+consistent",
            long=True,
            augment=True,
            teacher="single",
            baseline="alone+aug",
        ),
        Variant(
            "KD patient+consistent T=1",
            long=True,
            augment=True,
            teacher="single",
            temperature=1.0,
            baseline="alone+aug",
        ),
        Variant(
            "KD p+c, teacher ensemble",
            long=True,
            augment=True,
            teacher="ensemble",
            baseline="alone+aug",
        ),
        Variant(
            "KD patient+consistent+mixup",
            long=True,
            augment=True,
            mixup=True,
            teacher="single",
            baseline="alone+aug+mixup",
        ),
    ]


def _trainer(data: DataBundle, *, epochs: int, seed: int, lr: float) -> nf.Trainer:
    return nf.Trainer(
        data,
        epochs=epochs,
        batch_size=128,
        optimizer="adamw",
        lr=lr,
        weight_decay=1e-4,
        lr_schedule="cosine",
        seed=seed,
        device="cpu",
        progress=False,
    )


def train_teacher(
    data: DataBundle, *, channels: int, epochs: int, lr: float, seed: int = 0
) -> nn.Module:
    teacher = cnn1d(channels, seed=seed)
    x, y = data.train.tensors  # type: ignore[attr-defined]
    loader = AugmentedLoader(x, y, transform=augmentation(), batch_size=128, seed=seed)
    _trainer(data, epochs=epochs, seed=seed, lr=lr).fit(teacher, loader)
    return teacher


def run_variant(
    variant: Variant,
    data: DataBundle,
    teachers: dict[str, nn.Module],
    *,
    epochs: int,
    lr: float,
    channels: int,
    seed: int,
) -> float:
    """Train one student variant; return its test accuracy."""
    student = cnn1d(channels, seed=seed)
    trainer = _trainer(data, epochs=epochs, seed=seed, lr=lr)
    augment = augmentation(mixup=variant.mixup) if variant.augment else None
    if variant.teacher:
        Distiller(
            teacher=teachers[variant.teacher],
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
    short_epochs: int = 50,
    long_epochs: int = 200,
    teacher_epochs: int = 300,
    lr: float = 3e-2,
    teacher_lr: float = 1e-2,
    teacher_channels: int = 64,
    student_channels: int = 16,
    ensemble_size: int = 3,
    log: Callable[[str], None] = lambda message: None,
) -> list[dict[str, float | str]]:
    """Run the ablation; one row per variant (the first rows describe the teachers).

    Rows: ``variant``, ``epochs``, ``acc_mean``, ``acc_std`` (test accuracy in percent
    over ``seeds`` student seeds), ``gain`` and ``gain_std`` (mean and standard deviation
    over seeds of the paired difference to the matched student-alone row: same seed, same
    schedule, same augmentation; NaN for baselines), ``gain_best`` and ``gain_best_std``
    (the same against the best student-alone row with the same schedule), ``seconds``
    (mean wall time of a run). Every student uses AdamW at ``lr`` with a cosine schedule,
    batch 128. The single teacher is the ensemble's first member (teacher seed 0).
    """
    torch.set_num_threads(1)
    data = nf.load_dataset("mnist1d")
    evaluator = _trainer(data, epochs=1, seed=0, lr=lr)
    nan = float("nan")
    members, seconds = [], []
    for seed in range(ensemble_size):
        started = time.perf_counter()
        members.append(
            train_teacher(
                data, channels=teacher_channels, epochs=teacher_epochs, lr=teacher_lr, seed=seed
            )
        )
        seconds.append(time.perf_counter() - started)
    teachers: dict[str, nn.Module] = {
        "single": members[0],
        "ensemble": TeacherEnsemble(members),
    }
    rows: list[dict[str, float | str]] = []
    for kind, label in (
        ("single", f"teacher ({teacher_channels} ch, aug)"),
        ("ensemble", f"teacher ensemble ({ensemble_size}x)"),
    ):
        acc = 100 * evaluator.evaluate(teachers[kind], data.test)["accuracy"]
        log(f"{label}: {acc:.1f}% test accuracy")
        rows.append(
            {
                "variant": label,
                "epochs": teacher_epochs,
                "acc_mean": acc,
                "acc_std": 0.0,
                "gain": nan,
                "gain_std": nan,
                "gain_best": nan,
                "gain_best_std": nan,
                "seconds": seconds[0] if kind == "single" else sum(seconds),
            }
        )
    per_seed: dict[tuple[str, int], list[float]] = {}
    for variant in variants():
        epochs = long_epochs if variant.long else short_epochs
        accs, times = [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            accs.append(
                100
                * run_variant(
                    variant,
                    data,
                    teachers,
                    epochs=epochs,
                    lr=lr,
                    channels=student_channels,
                    seed=seed,
                )
            )
            times.append(time.perf_counter() - t0)
        if not variant.teacher:
            per_seed[(variant.name, epochs)] = accs
        gain = gain_std = gain_best = gain_best_std = nan
        if variant.baseline:
            gain, gain_std = _paired(accs, per_seed[(variant.baseline, epochs)])
            best = max((a for (_, e), a in per_seed.items() if e == epochs), key=statistics.mean)
            gain_best, gain_best_std = _paired(accs, best)
        rows.append(
            {
                "variant": variant.name,
                "epochs": epochs,
                "acc_mean": statistics.mean(accs),
                "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "gain": gain,
                "gain_std": gain_std,
                "gain_best": gain_best,
                "gain_best_std": gain_best_std,
                "seconds": statistics.mean(times),
            }
        )
        log(
            f"{variant.name} ({epochs} epochs): {rows[-1]['acc_mean']:.2f} +- "
            f"{rows[-1]['acc_std']:.2f}  [{', '.join(f'{a:.1f}' for a in accs)}]"
        )
    return rows


def _paired(accs: list[float], base: list[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds of ``accs - base``, seed by seed."""
    diffs = [a - b for a, b in zip(accs, base, strict=True)]
    return statistics.mean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else 0.0


def format_table(rows: list[dict[str, float | str]]) -> str:
    header = (
        f"{'variant':<28} {'epochs':>6} {'test acc % (mean +- sd)':>24} "
        f"{'vs matched alone':>17} {'vs best alone':>15} {'s/run':>6}"
    )
    lines = [header, "-" * len(header)]

    def diff(mean: float, std: float) -> str:
        return "" if math.isnan(mean) else f"{mean:+.2f} +- {std:.2f}"

    for r in rows:
        lines.append(
            f"{r['variant']!s:<28} {r['epochs']:>6} "
            f"{float(r['acc_mean']):>15.2f} +- {float(r['acc_std']):<5.2f} "
            f"{diff(float(r['gain']), float(r['gain_std'])):>17} "
            f"{diff(float(r['gain_best']), float(r['gain_best_std'])):>15} "
            f"{float(r['seconds']):>6.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--short-epochs", type=int, default=50)
    parser.add_argument("--long-epochs", type=int, default=200)
    parser.add_argument("--teacher-epochs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-2, help="students' learning rate")
    parser.add_argument("--ensemble", type=int, default=3, help="teachers in the ensemble")
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
        lr=args.lr,
        ensemble_size=args.ensemble,
        log=lambda message: print(message, flush=True),
    )
    print()
    print(format_table(rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s (torch threads: 1)")


if __name__ == "__main__":
    main()
