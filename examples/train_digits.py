"""Train a small CNN on the embedded digits data with the Trainer.

Early stopping watches validation accuracy, a checkpoint keeps the best epoch, and the
script ends with the test metrics. Runs in about ten seconds on two CPU cores:

    python examples/train_digits.py
"""

import tempfile
from pathlib import Path

from torch import nn

import nasforge as nf


def main() -> None:
    data = nf.load_dataset("digits", size=16, seed=0)
    print(data)

    nf.seed_everything(0)  # makes the initial weights reproducible
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, data.num_classes),
    )

    checkpoint = Path(tempfile.mkdtemp()) / "best.pt"
    trainer = nf.Trainer(
        data,
        epochs=20,
        lr=3e-3,
        lr_schedule="cosine",
        seed=0,
        callbacks=[
            nf.EarlyStopping("val_accuracy", patience=4),
            nf.ModelCheckpoint(checkpoint, monitor="val_accuracy", save="best"),
        ],
    )
    history = trainer.fit(model)
    best = history.best("val_accuracy")
    print(f"trained {len(history)} epochs; best val accuracy {best['val_accuracy']:.4f}")
    print(f"best checkpoint: {checkpoint} (epoch {nf.load_checkpoint(checkpoint)['epoch']})")

    test = trainer.evaluate(model)
    print(f"test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
