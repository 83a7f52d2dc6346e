"""Train and measure a few architectures of the ``cnn`` space on MNIST-1D.

Each architecture is first measured without training (parameters, MACs, CPU latency),
then trained for 2 epochs, continued to 6 from its checkpoint, and the best one by
validation accuracy is scored once on the test split. Runs in under a minute on two CPU
cores (needs ``pip install mnist1d``):

    python examples/train_evaluator.py
"""

import tempfile

import torch

import nasforge as nf
from nasforge.nas.train_evaluator import TrainEvaluator


def main() -> None:
    torch.set_num_threads(1)
    space = nf.build("space", "cnn", max_stages=2, channels=(16, 32), kernels=(3, 5))
    evaluator = TrainEvaluator(
        space,
        "mnist1d",
        epochs=6,  # the largest budget, and the length of the cosine schedule
        lr=3e-3,
        lr_schedule="cosine",
        latency={"batch_size": 1, "threads": 1, "repeats": 20},
        checkpoint_dir=tempfile.mkdtemp(prefix="nasforge-trials-"),
        seed=0,
    )
    print(evaluator)

    archs = [space.sample(seed=i) for i in range(4)]
    scores = {}
    for arch in archs:
        cost = evaluator.measure(arch)
        low = evaluator.evaluate(arch, budget=2)
        full = evaluator.evaluate(arch, budget=6)  # continues from the 2-epoch checkpoint
        scores[arch] = full["val_acc"]
        print(
            f"{arch.key}\n  params {cost['params']:,.0f}  MACs {cost['macs']:,.0f}  "
            f"latency {cost['latency_ms']:.3f} ms\n"
            f"  2 epochs: val_acc {low['val_acc']:.3f}  ({low['train_seconds']:.1f} s)\n"
            f"  6 epochs: val_acc {full['val_acc']:.3f}  val_f1 {full['val_f1']:.3f}  "
            f"(+{full['train_seconds']:.1f} s)"
        )

    best = max(scores, key=scores.get)
    print(f"best by validation: {best.key}")
    print("test:", {k: round(v, 4) for k, v in evaluator.test(best).items()})


if __name__ == "__main__":
    main()
