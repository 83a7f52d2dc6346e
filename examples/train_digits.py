"""Train a small CNN on the embedded digits data with the Trainer.

Early stopping watches validation accuracy, a checkpoint keeps the best epoch, and the
script ends with the test metrics. It checks that the checkpoint holds the best epoch: its
weights, reloaded, score the best validation accuracy again. Runs in about ten seconds on
two CPU cores; ``NASFORGE_QUICK=1`` trains 3 epochs on the native 8x8 images:

    python examples/train_digits.py
"""

import os
import tempfile
from pathlib import Path

from torch import nn

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def small_cnn(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def main() -> None:
    data = nf.load_dataset("digits", size=8 if QUICK else 16, seed=0)
    print(data)

    nf.seed_everything(0)  # makes the initial weights reproducible
    model = small_cnn(data.num_classes)

    checkpoint = Path(tempfile.mkdtemp()) / "best.pt"
    trainer = nf.Trainer(
        data,
        epochs=3 if QUICK else 20,
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
    saved = nf.load_checkpoint(checkpoint)
    print(f"trained {len(history)} epochs; best val accuracy {best['val_accuracy']:.4f}")
    print(f"best checkpoint: {checkpoint} (epoch {saved['epoch']})")

    test = trainer.evaluate(model)
    print(f"test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}")

    # The checkpoint is the best epoch: reloaded, it scores the best val accuracy again.
    assert saved["epoch"] == best["epoch"], (saved["epoch"], best["epoch"])
    restored = small_cnn(data.num_classes)
    restored.load_state_dict(saved["model"])
    again = trainer.evaluate(restored, data.val)["accuracy"]
    assert again == best["val_accuracy"], (
        f"checkpoint {again:.4f} != best {best['val_accuracy']:.4f}"
    )


if __name__ == "__main__":
    main()
