"""Structured channel pruning of torchvision's resnet18: really smaller, really faster.

Trains resnet18 (CIFAR-style stem) on the bundled digits at 16x16 for a few epochs, removes
half of the channels of every prunable group with ``channel_prune`` (fine-tuning after),
prints the before/after report, then saves, reloads and exports the pruned network.
A few minutes on two CPU cores:

    python examples/prune_channels.py
"""

import tempfile
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18

import nasforge as nf
from nasforge.compress import export_torchscript, load_model, save_model


def cifar_resnet18() -> nn.Module:
    model = resnet18(weights=None, num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def main() -> None:
    torch.set_num_threads(2)
    data = nf.load_dataset("digits", size=16, channels=3, seed=0)
    trainer = nf.Trainer(data, epochs=3, lr=2e-3, lr_schedule="cosine", seed=0, progress=False)
    nf.seed_everything(0)
    model = cifar_resnet18()
    trainer.fit(model)

    pruner = nf.build(
        "compressor",
        "channel_prune",
        ratio=0.5,  # remove half of the channels of every prunable group
        importance="l1",  # or "l2", "bn_scale", "taylor", or a callable group -> scores
        round_to=8,  # hardware-friendly channel counts
        # exclude=["layer4.*"] would keep those layers' shapes
        finetune_epochs=2,
    )
    small, report = trainer.compress(model, [pruner], batch_sizes=(1, 32))
    print(report.table())
    print({k: round(v, 3) for k, v in report.ratios().items()})
    print("channels per group (before, after):", list(pruner.stats["channels"].items())[:4], "...")

    out = Path(tempfile.mkdtemp())
    save_model(small, out / "pruned.pt")  # state_dict + the pruned shapes
    reloaded = load_model(out / "pruned.pt", model=cifar_resnet18())  # weights_only=True inside
    x = data.test.tensors[0][:8]
    assert torch.allclose(reloaded(x), small.eval()(x), atol=1e-5)
    export_torchscript(small, out / "pruned.ts", x)
    print(f"saved, reloaded and exported to {out}")


if __name__ == "__main__":
    main()
