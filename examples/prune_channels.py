"""Structured channel pruning of torchvision's resnet18: really smaller, really faster.

Trains resnet18 (CIFAR-style stem) on the bundled digits at 16x16 for a few epochs, removes
half of the channels of every prunable group with ``channel_prune`` (fine-tuning after),
prints the before/after report, then saves, reloads and exports the pruned network.
It checks that the pruned network has far fewer parameters and MACs, that it runs faster
at batch 32 (timed in turn with the original), and that the saved and exported copies
give the same outputs. A few minutes on two CPU cores; ``NASFORGE_QUICK=1`` prunes the
untrained network, on the native 8x8 images, without fine-tuning:

    python examples/prune_channels.py
"""

import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18

import nasforge as nf
from nasforge.compress import export_torchscript, load_model, save_model

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def cifar_resnet18() -> nn.Module:
    model = resnet18(weights=None, num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def main() -> None:
    torch.set_num_threads(2)
    data = nf.load_dataset("digits", size=8 if QUICK else 16, channels=3, seed=0)
    trainer = nf.Trainer(data, epochs=3, lr=2e-3, lr_schedule="cosine", seed=0, progress=False)
    nf.seed_everything(0)
    model = cifar_resnet18()
    if not QUICK:  # pruning works on any weights, so the quick run skips the training
        trainer.fit(model)

    pruner = nf.build(
        "compressor",
        "channel_prune",
        ratio=0.5,  # remove half of the channels of every prunable group
        importance="l1",  # or "l2", "bn_scale", "taylor", or a callable group -> scores
        round_to=8,  # hardware-friendly channel counts
        # exclude=["layer4.*"] would keep those layers' shapes
        finetune_epochs=0 if QUICK else 2,
    )
    small, report = trainer.compress(model, [pruner], batch_sizes=(1, 32))
    print(report.table())
    ratios = report.ratios()
    print({k: round(v, 3) for k, v in ratios.items()})
    print("channels per group (before, after):", list(pruner.stats["channels"].items())[:4], "...")
    # Half of the channels of both sides of a conv: about a quarter of the weights and MACs.
    assert ratios["params_reduction"] > 2.5, ratios
    assert ratios["macs_reduction"] > 2.5, ratios
    # Really faster: the report times both networks in turn, call by call.
    assert ratios["speedup_b32"] > 1.3, ratios

    out = Path(tempfile.mkdtemp())
    save_model(small, out / "pruned.pt")  # state_dict + the pruned shapes
    reloaded = load_model(out / "pruned.pt", model=cifar_resnet18())  # weights_only=True inside
    x = data.test.tensors[0][:8]
    assert torch.allclose(reloaded(x), small.eval()(x), atol=1e-5), "the reloaded copy differs"
    export_torchscript(small, out / "pruned.ts", x)
    scripted = torch.jit.load(out / "pruned.ts")
    assert torch.allclose(scripted(x), small(x), atol=1e-5), "the export differs"
    print(f"saved, reloaded and exported to {out}")


if __name__ == "__main__":
    main()
