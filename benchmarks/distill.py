"""Does distillation beat training the student alone? An ablation on MNIST-1D.

A 64-channel 1-D CNN teacher (trained with augmentation; three of them, seeds 0-2, form
an ensemble teacher averaging their probabilities) teaches a 16-channel student. Every
student gets the same optimizer, learning rate and cosine schedule. Each distillation row
is compared, seed by seed, with the student-alone row that has the same number of
optimizer steps and the same augmentation ("vs matched alone"), and with the best
student-alone row at the same number of steps ("vs best alone"), so that what augmentation
and a longer schedule give on their own is not credited to the teacher (Beyer et al. 2022:
a good teacher is patient — long schedules — and consistent — teacher and student see the
same augmented view). Rows:

    alone / alone+aug / alone+aug+mixup   the student alone (short or long schedule)
    KD short (Hinton)              T=4, alpha=0.9, short schedule, no augmentation
    KD long                        alpha=1, T=2, long schedule (patience only)
    KD patient+consistent          alpha=1, T=2, long, same shift/scale/noise view
    KD patient+consistent T=1      the same at temperature 1
    KD p+c, teacher ensemble       the same (T=2) with the 3-teacher ensemble
    KD patient+consistent+mixup    the same (T=2) with mixup ("function matching")
    KD p+c + 16k unlabelled        the same (T=2) with a transfer set of 16,000 unlabelled
    KD p+c, ensemble + 16k unl.    signals (Hinton et al. 2015), single or ensemble teacher
    KD p+c, ens. + 16k unl. T=1    the ensemble with the transfer set at temperature 1
    alone+aug + 16k labelled       reference only: what labels for those signals would give
    ... (patient)                  alone+aug and the ensemble rows again with twice the steps

The transfer set is fresh MNIST-1D signals (the generator with another seed; their labels
are thrown away), shuffled in with the 3,600 training signals; those rows train for fewer
epochs so that they take as many optimizer steps as the rows of their schedule (the
student's compute is the same; the teacher's forward passes come on top). Test accuracy is reported
as mean +- standard deviation over student seeds; runs go to ``--workers`` processes of one
thread each::

    python benchmarks/distill.py                 # 10 seeds, 35-50 minutes on 2 cores
    python benchmarks/distill.py --seeds 2 --quick

``distill_table()`` returns the rows for ``benchmarks/compress.py`` or a notebook.
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
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

TRANSFER = 16_000  # unlabelled signals in the transfer-set rows
TRANSFER_SEED = 1234  # the generator's seed for them (the standard dataset uses 42)


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


@functools.cache
def extra_signals(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` fresh MNIST-1D signals and their labels, none of them in the standard set."""
    extra = nf.load_dataset(
        "mnist1d",
        num_samples=math.ceil(count / 0.99) + 10,  # 1% goes to the (unused) test split
        test_fraction=0.01,
        val_fraction=0.0,
        seed=TRANSFER_SEED,
    )
    x, y = extra.train.tensors  # type: ignore[attr-defined]
    assert len(x) >= count, (len(x), count)
    return x[:count], y[:count]


@dataclass(frozen=True)
class Variant:
    name: str
    schedule: str  # "short", "long" or "patient": its epochs over the 3,600 training signals
    augment: bool = False
    mixup: bool = False
    teacher: str = ""  # "" (student alone), "single" or "ensemble"
    alpha: float = 1.0
    temperature: float = 2.0
    baseline: str = ""  # the student-alone row with the same steps and augmentation
    unlabelled: int = 0  # transfer-set signals (distillation rows)
    labelled: int = 0  # extra labelled signals (the reference row)
    reference: bool = False  # not a baseline: it uses labels the others do not have


def variants() -> list[Variant]:
    """Students alone, then each distillation recipe next to its matched baseline."""
    return [
        Variant("alone", schedule="short"),
        Variant("alone", schedule="long"),
        Variant("alone+aug", schedule="long", augment=True),
        Variant("alone+aug+mixup", schedule="long", augment=True, mixup=True),
        Variant(
            "KD short (Hinton)",
            schedule="short",
            teacher="single",
            alpha=0.9,
            temperature=4.0,
            baseline="alone",
        ),
        Variant("KD long", schedule="long", teacher="single", baseline="alone"),
        Variant(
            "KD patient+consistent",
            schedule="long",
            augment=True,
            teacher="single",
            baseline="alone+aug",
        ),
        Variant(
            "KD patient+consistent T=1",
            schedule="long",
            augment=True,
            teacher="single",
            temperature=1.0,
            baseline="alone+aug",
        ),
        Variant(
            "KD p+c, teacher ensemble",
            schedule="long",
            augment=True,
            teacher="ensemble",
            baseline="alone+aug",
        ),
        Variant(
            "KD patient+consistent+mixup",
            schedule="long",
            augment=True,
            mixup=True,
            teacher="single",
            baseline="alone+aug+mixup",
        ),
        Variant(
            "KD p+c + 16k unlabelled",
            schedule="long",
            augment=True,
            teacher="single",
            unlabelled=TRANSFER,
            baseline="alone+aug",
        ),
        Variant(
            "KD p+c, ensemble + 16k unl.",
            schedule="long",
            augment=True,
            teacher="ensemble",
            unlabelled=TRANSFER,
            baseline="alone+aug",
        ),
        Variant(
            "KD p+c, ens. + 16k unl. T=1",
            schedule="long",
            augment=True,
            teacher="ensemble",
            temperature=1.0,
            unlabelled=TRANSFER,
            baseline="alone+aug",
        ),
        Variant(
            "alone+aug + 16k labelled",
            schedule="long",
            augment=True,
            labelled=TRANSFER,
            reference=True,
        ),
        # twice the steps: does patience pay more with a teacher than without?
        Variant("alone+aug", schedule="patient", augment=True),
        Variant(
            "KD p+c, teacher ensemble",
            schedule="patient",
            augment=True,
            teacher="ensemble",
            baseline="alone+aug",
        ),
        Variant(
            "KD p+c, ensemble + 16k unl.",
            schedule="patient",
            augment=True,
            teacher="ensemble",
            unlabelled=TRANSFER,
            baseline="alone+aug",
        ),
        Variant(
            "alone+aug + 16k labelled",
            schedule="patient",
            augment=True,
            labelled=TRANSFER,
            reference=True,
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


def step_matched(epochs: int, train_size: int, extra: int) -> int:
    """Epochs over ``train_size + extra`` samples that take as many steps as ``epochs``
    epochs over ``train_size`` (batches of 128)."""
    batches = math.ceil(train_size / 128) * epochs
    return max(1, round(batches / math.ceil((train_size + extra) / 128)))


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
    """Train one student variant for ``epochs``; return its test accuracy."""
    student = cnn1d(channels, seed=seed)
    trainer = _trainer(data, epochs=epochs, seed=seed, lr=lr)
    augment = augmentation(mixup=variant.mixup) if variant.augment else None
    x, y = data.train.tensors  # type: ignore[attr-defined]
    if variant.teacher:
        unlabelled = extra_signals(variant.unlabelled)[0] if variant.unlabelled else None
        Distiller(
            teacher=teachers[variant.teacher],
            temperature=variant.temperature,
            alpha=variant.alpha,
            augment=augment,
            unlabeled=unlabelled,
        ).apply(student, trainer)
    elif augment is not None:
        if variant.labelled:
            xe, ye = extra_signals(variant.labelled)
            x, y = torch.cat([x, xe]), torch.cat([y, ye])
        loader = AugmentedLoader(x, y, transform=augment, batch_size=128, seed=seed)
        trainer.fit(student, loader)
    else:
        trainer.fit(student)
    return trainer.evaluate(student, data.test)["accuracy"]


# --- the runs, in worker processes of one thread each --------------------------------------
_WORKER: dict[str, object] = {}


def _init_worker(states: list[dict[str, torch.Tensor]], channels: int) -> None:
    torch.set_num_threads(1)
    members = []
    for state in states:
        teacher = cnn1d(channels, seed=0)
        teacher.load_state_dict(state)
        members.append(teacher.eval())
    _WORKER["data"] = nf.load_dataset("mnist1d")
    _WORKER["teachers"] = {"single": members[0], "ensemble": TeacherEnsemble(members)}


def _teacher_job(job: tuple[int, int, float, int]) -> tuple[dict[str, torch.Tensor], float]:
    seed, channels, lr, epochs = job
    torch.set_num_threads(1)
    started = time.perf_counter()
    teacher = train_teacher(
        nf.load_dataset("mnist1d"), channels=channels, epochs=epochs, lr=lr, seed=seed
    )
    return teacher.state_dict(), time.perf_counter() - started


def _student_job(job: tuple[Variant, int, int, float, int]) -> tuple[float, float]:
    variant, seed, epochs, lr, channels = job
    started = time.perf_counter()
    accuracy = run_variant(
        variant,
        _WORKER["data"],  # type: ignore[arg-type]
        _WORKER["teachers"],  # type: ignore[arg-type]
        epochs=epochs,
        lr=lr,
        channels=channels,
        seed=seed,
    )
    return 100 * accuracy, time.perf_counter() - started


def distill_table(
    *,
    seeds: int = 10,
    short_epochs: int = 50,
    long_epochs: int = 200,
    patient_epochs: int = 400,
    teacher_epochs: int = 300,
    lr: float = 3e-2,
    teacher_lr: float = 1e-2,
    teacher_channels: int = 64,
    student_channels: int = 16,
    ensemble_size: int = 3,
    workers: int = 2,
    log: Callable[[str], None] = lambda message: None,
) -> list[dict[str, float | str]]:
    """Run the ablation; one row per variant (the first rows describe the teachers).

    Rows: ``variant``, ``epochs``, ``steps`` (optimizer steps), ``acc_mean``, ``acc_std``
    (test accuracy in percent over ``seeds`` student seeds), ``gain`` and ``gain_std``
    (mean and standard deviation over seeds of the paired difference to the matched
    student-alone row: same seed, same steps, same augmentation; NaN for baselines),
    ``gain_best`` and ``gain_best_std`` (the same against the best student-alone row with
    the same steps, the labelled reference excluded), ``seconds`` (mean wall time of a
    run). Every student uses AdamW at ``lr`` with a cosine schedule, batch 128. The single
    teacher is the ensemble's first member (teacher seed 0).
    """
    data = nf.load_dataset("mnist1d")
    train_size = len(data.train)  # type: ignore[arg-type]
    context = multiprocessing.get_context("fork")
    teacher_jobs = [(s, teacher_channels, teacher_lr, teacher_epochs) for s in range(ensemble_size)]
    with context.Pool(workers) as pool:
        trained = pool.map(_teacher_job, teacher_jobs)
    states = [state for state, _ in trained]
    _init_worker(states, teacher_channels)  # this process evaluates the teachers
    teachers = _WORKER["teachers"]
    evaluator = _trainer(data, epochs=1, seed=0, lr=lr)
    nan = float("nan")
    rows: list[dict[str, float | str]] = []
    for kind, label in (
        ("single", f"teacher ({teacher_channels} ch, aug)"),
        ("ensemble", f"teacher ensemble ({ensemble_size}x)"),
    ):
        acc = 100 * evaluator.evaluate(teachers[kind], data.test)["accuracy"]  # type: ignore[index]
        log(f"{label}: {acc:.1f}% test accuracy")
        seconds = trained[0][1] if kind == "single" else sum(s for _, s in trained)
        rows.append(
            {
                "variant": label,
                "epochs": teacher_epochs,
                "steps": math.ceil(train_size / 128) * teacher_epochs,
                "acc_mean": acc,
                "acc_std": 0.0,
                "gain": nan,
                "gain_std": nan,
                "gain_best": nan,
                "gain_best_std": nan,
                "seconds": seconds,
            }
        )

    epochs_of = {"short": short_epochs, "long": long_epochs, "patient": patient_epochs}

    def schedule(variant: Variant) -> int:
        epochs = epochs_of[variant.schedule]
        return step_matched(epochs, train_size, variant.unlabelled + variant.labelled)

    jobs = [
        (v, seed, schedule(v), lr, student_channels) for v in variants() for seed in range(seeds)
    ]
    with context.Pool(
        workers, initializer=_init_worker, initargs=(states, teacher_channels)
    ) as pool:
        results = pool.map(_student_job, jobs, chunksize=1)
    by_variant: dict[Variant, list[tuple[float, float]]] = {}
    for (variant, *_), result in zip(jobs, results, strict=True):
        by_variant.setdefault(variant, []).append(result)

    per_seed: dict[tuple[str, str], list[float]] = {}  # student-alone rows by name, schedule
    for variant in variants():
        epochs = schedule(variant)
        accs = [a for a, _ in by_variant[variant]]
        times = [t for _, t in by_variant[variant]]
        if not variant.teacher and not variant.reference:
            per_seed[(variant.name, variant.schedule)] = accs
        gain = gain_std = gain_best = gain_best_std = nan
        if variant.baseline:
            gain, gain_std = _paired(accs, per_seed[(variant.baseline, variant.schedule)])
            same = [a for (_, s), a in per_seed.items() if s == variant.schedule]
            gain_best, gain_best_std = _paired(accs, max(same, key=statistics.mean))
        samples = train_size + variant.unlabelled + variant.labelled
        rows.append(
            {
                "variant": variant.name,
                "epochs": epochs,
                "steps": math.ceil(samples / 128) * epochs,
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
        f"{'variant':<28} {'epochs':>6} {'steps':>6} {'test acc % (mean +- sd)':>24} "
        f"{'vs matched alone':>17} {'vs best alone':>15} {'s/run':>6}"
    )
    lines = [header, "-" * len(header)]

    def diff(mean: float, std: float) -> str:
        return "" if math.isnan(mean) else f"{mean:+.2f} +- {std:.2f}"

    for r in rows:
        lines.append(
            f"{r['variant']!s:<28} {r['epochs']:>6} {r['steps']:>6} "
            f"{float(r['acc_mean']):>15.2f} +- {float(r['acc_std']):<5.2f} "
            f"{diff(float(r['gain']), float(r['gain_std'])):>17} "
            f"{diff(float(r['gain_best']), float(r['gain_best_std'])):>15} "
            f"{float(r['seconds']):>6.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--short-epochs", type=int, default=50)
    parser.add_argument("--long-epochs", type=int, default=200)
    parser.add_argument("--patient-epochs", type=int, default=400)
    parser.add_argument("--teacher-epochs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-2, help="students' learning rate")
    parser.add_argument("--ensemble", type=int, default=3, help="teachers in the ensemble")
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--quick", action="store_true", help="tiny schedules, to smoke-test")
    args = parser.parse_args()
    if args.quick:
        args.short_epochs, args.long_epochs, args.patient_epochs, args.teacher_epochs = 3, 5, 8, 5
    started = time.perf_counter()
    rows = distill_table(
        seeds=args.seeds,
        short_epochs=args.short_epochs,
        long_epochs=args.long_epochs,
        patient_epochs=args.patient_epochs,
        teacher_epochs=args.teacher_epochs,
        lr=args.lr,
        ensemble_size=args.ensemble,
        workers=args.workers,
        log=lambda message: print(message, flush=True),
    )
    print()
    print(format_table(rows))
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s ({args.workers} processes x 1 torch thread)"
    )
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump({"settings": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
