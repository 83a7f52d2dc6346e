"""Unstructured magnitude pruning with the AGP schedule, and what it does (not) buy.

Trains a small CNN on the bundled digits, then prunes 80% of its conv/linear weights
globally in four AGP steps (Zhu & Gupta 2017) with two fine-tuning epochs after each. The
sparsity report shows the real sparsity and the size in a sparse format; the latency row
shows that zeros in dense tensors run no faster. It checks that 80% of the weights are
zeros, that a sparse format would store them in fewer bytes, and that the dense network
keeps every parameter. About twenty seconds on two CPU cores; ``NASFORGE_QUICK=1`` trains
2 epochs and fine-tunes 1 per step on the native 8x8 images:

    python examples/prune_magnitude.py
"""

import os

from torch import nn

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    data = nf.load_dataset("digits", size=8 if QUICK else 16, seed=0)
    epochs = 2 if QUICK else 10
    trainer = nf.Trainer(data, epochs=epochs, lr=3e-3, lr_schedule="cosine", seed=0, progress=False)
    nf.seed_everything(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 10),
    )
    trainer.fit(model)

    pruner = nf.build(
        "compressor",
        "magnitude_prune",
        sparsity=0.8,
        scope="global",  # rank all weights together ("layer": the same sparsity everywhere)
        schedule="agp",
        steps=4,
        finetune_epochs=1 if QUICK else 2,
    )
    _, report = trainer.compress(model, [pruner])
    print(report.table())
    stats = pruner.stats
    print(f"sparsity {stats['sparsity']:.1%}: {stats['nonzero_params']:,} non-zero parameters")
    print(f"dense {stats['dense_bytes']:,} bytes, sparse (CSR) {stats['sparse_bytes']:,} bytes")
    print(stats["note"])

    assert stats["sparsity"] >= 0.79, f"sparsity {stats['sparsity']:.3f}, asked for 0.8"
    assert stats["sparse_bytes"] < 0.6 * stats["dense_bytes"], "CSR should save space"
    # What it does not buy: the dense network still has every parameter.
    assert report.after["params"] == report.before["params"], "dense tensors keep their shapes"
    if not QUICK:  # the fine-tuning recovers the accuracy
        drop = report.before["accuracy"] - report.after["accuracy"]
        assert drop < 0.05, f"pruning cost {drop:.3f} accuracy"


if __name__ == "__main__":
    main()
