"""Search for the model as it will be deployed: architecture and compression together.

    python examples/deploy_search.py

On MNIST-1D, each trial is a 1-D CNN *and* how to compress it (channel pruning,
distillation from the uncompressed model after pruning, int8): the ``compression``
evaluator trains the architecture once, compresses it as the trial says and measures the
compressed model. The Pareto front of validation accuracy against batch-1 latency is made
of deployable models, and each is exported to TorchScript exactly as it was measured. The
top-3 searched models are also combined into an ensemble and compared with the best one.
``NASFORGE_QUICK=1`` searches a smaller space on fewer samples.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def main() -> None:
    torch.set_num_threads(1)
    data = nf.load_dataset("mnist1d", num_samples=800 if QUICK else 5000)
    channels = [8, 16] if QUICK else [16, 32, 64]
    base = nf.build("space", "cnn", max_stages=2, channels=channels, kernels=[3, 5], max_blocks=1)
    space = nf.build("space", "compressed", base=base, prune=[0.0, 0.5, 0.75])
    evaluator = nf.CompressionEvaluator(
        space, data, epochs=2 if QUICK else 10, lr=3e-3, lr_schedule="cosine", finetune_epochs=1
    )
    result = nf.search(
        space,
        evaluator,
        strategy="nsga2",
        budget=6 if QUICK else 30,
        seed=0,
        objective=["val_acc", "latency_ms"],
        mode=["max", "min"],
        progress=False,
    )
    print(result.table())

    out = Path(tempfile.mkdtemp(prefix="deploy-search-"))
    example = data.test.tensors[0][:1]
    tester = nf.Trainer(data, progress=False)
    for trial in result.pareto_front():
        _, compression = space.split(trial.arch)
        model = evaluator.load_model(trial.arch)
        path = nf.export_torchscript(model, out / f"trial{trial.number}.ts", example)
        exported = torch.jit.load(str(path))
        accuracy = tester.evaluate(exported, data.val)["accuracy"]
        assert abs(accuracy - trial.metrics["val_acc"]) < 1e-9  # deployed as measured
        print(f"trial {trial.number}: {compression} -> {path.name}, val acc {accuracy:.3f}")

    ensemble = result.ensemble(3)
    best = evaluator.load_model(result.best.arch)
    print(
        f"test accuracy: best {tester.evaluate(best)['accuracy']:.3f}, "
        f"top-3 ensemble {tester.evaluate(ensemble)['accuracy']:.3f}"
    )


if __name__ == "__main__":
    main()
