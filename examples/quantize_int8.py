"""Int8 post-training quantization of a resnet18 trained on digits: smaller and faster.

Trains torchvision's resnet18 with a CIFAR-style stem (3x3 conv, no max-pool) on the
embedded digits upsampled to 16x16, converts it to int8 with the ``int8`` compressor
(calibrated on 16 training batches), and compares accuracy, size on disk and batch-1
latency on one CPU thread. About two minutes on two CPU cores:

    python examples/quantize_int8.py [--epochs 4]
"""

import argparse

import torch
from torch import nn
from torchvision.models import resnet18

import nasforge as nf
from nasforge.measure import measure_latency, size_on_disk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend

    data = nf.load_dataset("digits", size=16, channels=3, seed=0)
    nf.seed_everything(0)
    model = resnet18(num_classes=data.num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)  # CIFAR-style stem
    model.maxpool = nn.Identity()
    trainer = nf.Trainer(data, epochs=args.epochs, lr=1e-3, lr_schedule="cosine", seed=0)
    trainer.fit(model)

    int8 = nf.build("compressor", "int8", calibration_batches=16)
    quantized = int8.apply(model, trainer)  # a new model; ``model`` stays float

    x = data.test[0][0].unsqueeze(0)
    print(f"{'':8} {'test acc':>9} {'size (kB)':>10} {'latency (ms)':>13}")
    for name, m in (("float32", model), ("int8", quantized)):
        accuracy = trainer.evaluate(m)["accuracy"]
        latency = measure_latency(m, x, batch_size=1, threads=1)
        print(f"{name:8} {accuracy:>9.4f} {size_on_disk(m) / 1e3:>10.0f} {latency:>13.2f}")


if __name__ == "__main__":
    main()
