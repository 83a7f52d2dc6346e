"""Distil a wide CNN into a narrow one on digits: soft KD plus a FitNets feature hint.

The teacher (64 channels) is trained first; the student (16 channels) then learns from
its softened logits and, through a learned 1x1 adapter, from its second convolution's
feature map (Romero et al. 2015). It shows the API; with 269 test images and one seed
the accuracies differ by noise (``benchmarks/distill.py`` measures what distillation
gains, over 5 seeds). About a minute on two CPU cores:

    python examples/distill_hints.py
"""

import torch
from torch import nn

import nasforge as nf


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
    data = nf.load_dataset("digits", size=16, seed=0)
    trainer = nf.Trainer(data, epochs=30, lr=3e-3, lr_schedule="cosine", seed=0, progress=False)

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
    distiller.apply(student, trainer)
    adapter = distiller.callback.adapters[0]

    for name, model in (("teacher (64 ch)", teacher), ("student alone", alone)):
        print(f"{name:<26} test accuracy {trainer.evaluate(model)['accuracy']:.4f}")
    print(f"{'student, KD + hint':<26} test accuracy {trainer.evaluate(student)['accuracy']:.4f}")
    print(f"hint adapter: {adapter.project}")


if __name__ == "__main__":
    main()
