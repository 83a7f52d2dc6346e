"""Unstructured magnitude pruning with the AGP schedule, and what it does (not) buy.

Trains a small CNN on the bundled digits, then prunes 80% of its conv/linear weights
globally in four AGP steps (Zhu & Gupta 2017) with two fine-tuning epochs after each. The
sparsity report shows the real sparsity and the size in a sparse format; the latency row
shows that zeros in dense tensors run no faster. About twenty seconds on two CPU cores:

    python examples/prune_magnitude.py
"""

from torch import nn

import nasforge as nf


def main() -> None:
    data = nf.load_dataset("digits", size=16, seed=0)
    trainer = nf.Trainer(data, epochs=10, lr=3e-3, lr_schedule="cosine", seed=0, progress=False)
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
        finetune_epochs=2,
    )
    _, report = trainer.compress(model, [pruner])
    print(report.table())
    stats = pruner.stats
    print(f"sparsity {stats['sparsity']:.1%}: {stats['nonzero_params']:,} non-zero parameters")
    print(f"dense {stats['dense_bytes']:,} bytes, sparse (CSR) {stats['sparse_bytes']:,} bytes")
    print(stats["note"])


if __name__ == "__main__":
    main()
