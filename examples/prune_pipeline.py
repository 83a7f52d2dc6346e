"""A whole compression pipeline: prune -> distil while fine-tuning -> int8.

The uncompressed network teaches the pruned one (Hinton KD) while it recovers, then the
result is quantized to int8 and compared with the original: accuracy, parameters, MACs,
size on disk and CPU latency at batch 1 and 32. It checks that the steps ran in order,
that the result is many times smaller on disk and faster at batch 32 (timed in turn with
the original) and that the JSON report reloads. About two minutes on two CPU cores;
``NASFORGE_QUICK=1`` trains and distils for one epoch each on the native 8x8 images:

    python examples/prune_pipeline.py
"""

import json
import os
import tempfile
from pathlib import Path

from torch import nn

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def main() -> None:
    data = nf.load_dataset("digits", size=8 if QUICK else 16, seed=0)
    trainer = nf.Trainer(
        data, epochs=1 if QUICK else 8, lr=3e-3, lr_schedule="cosine", seed=0, progress=False
    )
    nf.seed_everything(0)
    teacher = cnn()
    trainer.fit(teacher)

    steps = [
        nf.build("compressor", "channel_prune", ratio=0.5, importance="bn_scale"),
        nf.build("compressor", "distill", teacher=teacher, epochs=1 if QUICK else 4),
        nf.build("compressor", "int8", calibration_batches=8),
    ]
    small, report = trainer.compress(teacher, steps, batch_sizes=(1, 32))
    print(report.table())
    for step in report.steps:
        print(f"after {step['name']:<14} accuracy {step.get('accuracy', float('nan')):.4f}")
    inputs, labels = data.test.tensors[0][:8], data.test.tensors[1][:8]
    print("int8 predictions:", small(inputs).argmax(1).tolist(), "labels:", labels.tolist())
    path = Path(tempfile.mkdtemp()) / "report.json"
    report.to_json(path)
    print(f"report written to {path}")

    assert [step["name"] for step in report.steps] == ["channel_prune", "distill", "int8"]
    ratios = report.ratios()
    assert ratios["params_reduction"] > 2.5, ratios  # half the channels: ~1/4 of the weights
    assert ratios["size_bytes_reduction"] > 8, ratios  # and 1 byte per weight instead of 4
    assert ratios["speedup_b32"] > 1.5, ratios
    assert json.loads(path.read_text()) == report.to_dict(), "the JSON report differs"
    if not QUICK:  # the distillation recovers the accuracy lost by pruning
        assert ratios["accuracy_change"] > -0.05, ratios


if __name__ == "__main__":
    main()
