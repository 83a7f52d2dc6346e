"""Int8 post-training quantization of a resnet18 trained on digits: smaller and faster.

Trains torchvision's resnet18 with a CIFAR-style stem (3x3 conv, no max-pool) on the
embedded digits upsampled to 16x16, converts it to int8 with the ``int8`` compressor
(calibrated on 16 training batches), and compares accuracy, size on disk and batch-1
latency on one CPU thread (the two networks timed in turn, call by call). It checks that
the int8 network is about 4x smaller and, in a full run, faster and as accurate. About
two minutes on two CPU cores; ``--quick`` (or ``NASFORGE_QUICK=1``) quantizes the
untrained network, on the native 8x8 images, where both take about as long:

    python examples/quantize_int8.py [--epochs 4] [--quick]
"""

import argparse
import os

import torch
from torch import nn
from torchvision.models import resnet18

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", default=QUICK, help="run in seconds")
    args = parser.parse_args()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend

    data = nf.load_dataset("digits", size=8 if args.quick else 16, channels=3, seed=0)
    nf.seed_everything(0)
    model = resnet18(num_classes=data.num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)  # CIFAR-style stem
    model.maxpool = nn.Identity()
    trainer = nf.Trainer(data, epochs=args.epochs, lr=1e-3, lr_schedule="cosine", seed=0)
    if not args.quick:  # quantization works on any weights, so --quick skips the training
        trainer.fit(model)

    int8 = nf.build("compressor", "int8", calibration_batches=4 if args.quick else 16)
    quantized = int8.apply(model, trainer)  # a new model; ``model`` stays float

    x = data.test[0][0].unsqueeze(0)
    models = {"float32": model, "int8": quantized}
    accuracy = {name: trainer.evaluate(m)["accuracy"] for name, m in models.items()}
    size = {name: nf.size_on_disk(m) for name, m in models.items()}
    latency = nf.compare_latency(models, x, batch_size=1, threads=1)  # in turn, call by call
    print(f"{'':8} {'test acc':>9} {'size (kB)':>10} {'latency (ms)':>13}")
    for name in models:
        print(f"{name:8} {accuracy[name]:>9.4f} {size[name] / 1e3:>10.0f} {latency[name]:>13.2f}")

    assert size["int8"] < size["float32"] / 3.5, f"int8 is not ~4x smaller: {size}"
    if not args.quick:  # trained, int8 is as accurate as float32; at 16x16, clearly faster
        assert accuracy["int8"] > accuracy["float32"] - 0.03, accuracy
        assert latency["int8"] < latency["float32"], f"int8 is not faster: {latency}"


if __name__ == "__main__":
    main()
