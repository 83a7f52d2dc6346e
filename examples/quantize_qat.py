"""Quantization-aware training at 4 bits recovers what naive 4-bit rounding loses.

Trains a small CNN on the embedded digits, then compares three versions of it: float32;
the same weights rounded to 4 bits (per channel), with BatchNorm statistics recalibrated
but no retraining (inputs stay float, which only helps it); and the ``qat`` compressor
(4-bit weights, 8-bit inputs), which fine-tunes through the fake-quant with the
straight-through estimator. It checks that both 4-bit versions really have at most 15
weight values per output channel and, in a full run, that QAT is more accurate than
rounding alone. About 20 seconds on two CPU cores; ``NASFORGE_QUICK=1`` trains 3 epochs
and fine-tunes 1 on the native 8x8 images:

    python examples/quantize_qat.py
"""

import copy
import os

import torch
from torch import nn

import nasforge as nf
from nasforge.compress.quantize import QuantSpec, prepare_qat

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def small_cnn(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )


def main() -> None:
    torch.set_num_threads(1)
    data = nf.load_dataset("digits", size=8 if QUICK else 16, seed=0)
    nf.seed_everything(0)
    model = small_cnn(data.num_classes)
    nf.Trainer(
        data, epochs=3 if QUICK else 15, lr=3e-3, lr_schedule="cosine", seed=0, progress=False
    ).fit(model)
    evaluate = nf.Trainer(data, seed=0).evaluate

    bits = 4
    rounded = copy.deepcopy(model)
    prepare_qat(rounded, weights=QuantSpec(bits=bits, per_channel=True))
    # recalibrate BatchNorm statistics on the training data, no gradient steps
    rounded.train()
    with torch.no_grad():
        for inputs, _ in nf.TensorLoader(*data.train.tensors, batch_size=64):
            rounded(inputs)

    qat = nf.build("compressor", "qat", bits=bits, activation_bits=8, epochs=1 if QUICK else 5)
    fine_tuner = nf.Trainer(data, lr=3e-4, lr_schedule="cosine", seed=0, progress=False)
    trained = qat.apply(copy.deepcopy(model), fine_tuner)

    for name, m in (
        ("float32", model),
        (f"{bits}-bit weights, calibrated only", rounded),
        (f"{bits}-bit weights, QAT ({qat.epochs} epochs)", trained),
    ):
        print(f"{name:<34} test accuracy {evaluate(m)['accuracy']:.4f}")

    # 4 bits, symmetric: every output channel's weights take at most 15 values (-7..7 steps).
    for m in (rounded, trained):
        for layer in m.modules():
            if isinstance(layer, nn.Conv2d | nn.Linear):
                levels = max(len(torch.unique(w)) for w in layer.weight.detach())
                assert levels <= 2**bits - 1, f"{layer}: {levels} weight values in a channel"
    if not QUICK:  # after 15 + 5 epochs; 3 + 1 are too few to compare
        rounded_acc, qat_acc = evaluate(rounded)["accuracy"], evaluate(trained)["accuracy"]
        assert qat_acc > rounded_acc, f"QAT {qat_acc:.3f} <= rounding {rounded_acc:.3f}"


if __name__ == "__main__":
    main()
