"""Distil a wide CNN into a narrow one on digits: soft KD plus a FitNets feature hint.

The teacher (64 channels) is trained first; the student (16 channels) then learns from
its softened logits and, through a learned 1x1 adapter, from its second convolution's
feature map (Romero et al. 2015). It shows the API; with 269 test images and one seed
the accuracies differ by noise (``benchmarks/distill.py`` measures what distillation
gains, over 5 seeds). It checks that the adapter maps the student's 16 channels onto the
teacher's 64, that distillation leaves the teacher untouched and, in a full run, that the
student learns. About a minute on two CPU cores; ``NASFORGE_QUICK=1`` trains 2 epochs on
the native 8x8 images:

    python examples/distill_hints.py
"""

import os

import torch
from torch import nn

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def cnn(width: int, num_classes: int = 10) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, width, 3, padding=1),  # "4": the hinted layer
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


def main() -> None:
    torch.set_num_threads(1)
    data = nf.load_dataset("digits", size=8 if QUICK else 16, seed=0)
    epochs = 2 if QUICK else 30
    trainer = nf.Trainer(data, epochs=epochs, lr=3e-3, lr_schedule="cosine", seed=0, progress=False)

    nf.seed_everything(0)
    teacher = cnn(64)
    trainer.fit(teacher)

    nf.seed_everything(1)
    alone = cnn(16)
    trainer.fit(alone)

    nf.seed_everything(1)  # the same initial student
    student = cnn(16)
    distiller = nf.build(
        "compressor",
        "distill",
        teacher=teacher,
        temperature=2.0,
        alpha=0.5,
        hints=[("4", "4")],  # (student layer, teacher layer): 16 -> 64 channels
        hint_weight=0.5,
    )
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller.apply(student, trainer)
    adapter = distiller.callback.adapters[0]

    for name, model in (("teacher (64 ch)", teacher), ("student alone", alone)):
        print(f"{name:<26} test accuracy {trainer.evaluate(model)['accuracy']:.4f}")
    accuracy = trainer.evaluate(student)["accuracy"]
    print(f"{'student, KD + hint':<26} test accuracy {accuracy:.4f}")
    print(f"hint adapter: {adapter.project}")

    # The hint adapter maps the student's 16 channels onto the teacher's 64.
    project = adapter.project
    assert (project.in_channels, project.out_channels) == (16, 64), project
    # The teacher only teaches: its weights and BatchNorm statistics are unchanged.
    after = teacher.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in teacher_before.items()), "teacher changed"
    if not QUICK:  # 30 epochs teach it well (2 are too few); benchmarks/ measures KD's gain
        assert accuracy > 0.85, f"distilled student: test accuracy {accuracy:.3f}"


if __name__ == "__main__":
    main()
