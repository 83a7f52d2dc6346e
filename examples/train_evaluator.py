"""Train and measure a few architectures of the ``cnn`` space on MNIST-1D.

Each architecture is first measured without training (parameters, MACs, CPU latency),
then trained for 2 epochs, continued to 6 from its checkpoint, and the best one by
validation accuracy is scored once on the test split. It checks that continuing from the
checkpoint gives exactly what 6 epochs in one go give. Runs in under a minute on two CPU
cores (needs ``pip install mnist1d``); ``NASFORGE_QUICK=1`` trains 2 architectures on a
tenth of the data:

    python examples/train_evaluator.py
"""

import os
import tempfile

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    torch.set_num_threads(1)
    space = nf.build("space", "cnn", max_stages=2, channels=(16, 32), kernels=(3, 5))
    data = nf.load_dataset("mnist1d", num_samples=500) if QUICK else "mnist1d"
    options = dict(
        epochs=6,  # the largest budget, and the length of the cosine schedule
        lr=3e-3,
        lr_schedule="cosine",
        latency={"batch_size": 1, "threads": 1, "repeats": 20},
        seed=0,
    )
    checkpoints = tempfile.mkdtemp(prefix="nasforge-trials-")
    evaluator = nf.TrainEvaluator(space, data, checkpoint_dir=checkpoints, **options)
    print(evaluator)

    archs = [space.sample(seed=i) for i in range(2 if QUICK else 4)]
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
        assert cost["params"] == full["params"], "measured and trained models differ"

    best = max(scores, key=scores.get)
    print(f"best by validation: {best.key}")
    print("test:", {k: round(v, 4) for k, v in evaluator.test(best).items()})

    # 2 epochs, then 4 more from the checkpoint, are the same as 6 epochs in one go.
    straight = nf.TrainEvaluator(space, data, **options).evaluate(best)
    print(f"6 epochs straight: val_acc {straight['val_acc']:.3f}")
    assert straight["val_acc"] == scores[best], "continuing differs from training straight"
    assert straight["val_loss"] == evaluator.evaluate(best)["val_loss"]


if __name__ == "__main__":
    main()
