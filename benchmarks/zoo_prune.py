"""Structured pruning across torchvision's classification models, side by side with Torch-Pruning.

Issue target: ``nf.prune_channels`` removes at least 20% of the parameters of at least 21
of the 22 models below (and of every classification model listed) at ``ratio`` 0.3, and
keeps the output shape. Each model has random weights (no download) and is pruned on a
64x64 batch (224x224 for the transformers, whose position embeddings fix the size; 75x75,
its smallest, for inception_v3).

Torch-Pruning is called the default way: ``MagnitudePruner`` with L1 importance, the same
ratio, the classifier ignored, on a copy of the same model. A run that raises is reported
as ``error``; each model runs in its own process so that one running out of memory does
not stop the rest (``--memory-gb`` caps each one's address space).

    python benchmarks/zoo_prune.py                       # the 22 models, ours and Torch-Pruning
    python benchmarks/zoo_prune.py --models vit_b_16 swin_t --json zoo.json
    python benchmarks/zoo_prune.py --all                 # every torchvision classifier
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
import warnings
from typing import Any

MODELS = [
    "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s",
    "regnet_x_400mf", "regnet_y_400mf", "shufflenet_v2_x0_5", "mnasnet0_5", "densenet121",
    "squeezenet1_0", "vgg11_bn", "alexnet", "googlenet", "convnext_tiny", "vit_b_16",
    "swin_t", "maxvit_t",
]  # fmt: skip
#: Models whose input size is fixed by their position embeddings or windows.
_FULL_SIZE = ("vit_", "swin_", "maxvit_")
#: Models that need a larger input than 64x64: the smallest they take.
_MIN_SIZE = {"inception_v3": 75}


def _input(name: str) -> Any:
    import torch

    size = 224 if name.startswith(_FULL_SIZE) else _MIN_SIZE.get(name, 64)
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def _model(name: str) -> Any:
    import torch
    from torchvision import models

    torch.manual_seed(0)
    options = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    return models.get_model(name, weights=None, **options).eval()


def _params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _ours(name: str, ratio: float) -> dict[str, Any]:
    import nasforge as nf

    model, x = _model(name), _input(name)
    before = _params(model)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", nf.PruningWarning)
        small = nf.prune_channels(model, x, ratio=ratio)
    seconds = time.perf_counter() - started
    skipped = [str(w.message) for w in caught if issubclass(w.category, nf.PruningWarning)]
    return {
        "kept": _params(small) / before,
        "seconds": seconds,
        "shape_kept": tuple(small(x).shape) == tuple(model(x).shape),
        "skipped": skipped,
    }


def _classifier(model: Any) -> list[Any]:
    """The layers producing the logits (Torch-Pruning must not prune them)."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    outputs = {m.out_features if isinstance(m, nn.Linear) else m.out_channels for m in linears}
    assert 1000 in outputs
    return [
        m
        for m in linears
        if (m.out_features if isinstance(m, nn.Linear) else m.out_channels) == 1000
    ]


def _peer(name: str, ratio: float) -> dict[str, Any]:
    import torch_pruning as tp

    model, x = _model(name), _input(name)
    before = _params(model)
    reference = tuple(model(x).shape)
    started = time.perf_counter()
    pruner = tp.pruner.MagnitudePruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio,
        ignored_layers=_classifier(model),
    )
    pruner.step()
    seconds = time.perf_counter() - started
    return {
        "kept": _params(model) / before,
        "seconds": seconds,
        "shape_kept": tuple(model(x).shape) == reference,
    }


def _run(job: tuple[str, str, float, float], conn: Any) -> None:
    import resource

    import torch

    torch.set_num_threads(1)
    who, name, ratio, memory_gb = job
    limit = int(memory_gb * 2**30)  # address space: running out is a MemoryError here
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = (_ours if who == "ours" else _peer)(name, ratio)
    except Exception as exc:  # reported, not fatal: the table shows it
        result = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    conn.send(result)  # a pipe needs no thread, which a full address space cannot start


def run_isolated(who: str, name: str, ratio: float, memory_gb: float) -> dict[str, Any]:
    """One pruning run in a fresh process (memory errors and crashes stay there)."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_run, args=((who, name, ratio, memory_gb), send))
    process.start()
    send.close()
    try:
        return receive.recv()
    except EOFError:
        return {"error": f"the process died (exit code {process.join() or process.exitcode})"}
    finally:
        process.join()


def classification_models() -> list[str]:
    from torchvision import models

    return sorted(models.list_models(module=models))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--all", action="store_true", help="every torchvision classifier")
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--no-peer", action="store_true", help="skip Torch-Pruning")
    parser.add_argument("--memory-gb", type=float, default=12, help="per run (address space)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    names = classification_models() if args.all else args.models
    rows = []
    print(f"{'model':22s} {'ours kept':>9s} {'ok':>3s} {'s':>6s}   {'TP kept':>8s} {'s':>6s}")
    for name in names:
        ours = run_isolated("ours", name, args.ratio, args.memory_gb)
        peer = {} if args.no_peer else run_isolated("peer", name, args.ratio, args.memory_gb)
        rows.append({"model": name, "ours": ours, "torch_pruning": peer})

        def cell(result: dict[str, Any]) -> str:
            if not result:
                return f"{'-':>8s} {'':>6s}"
            if "error" in result:
                return f"{'error':>8s} {'':>6s}"
            return f"{result['kept']:8.1%} {result['seconds']:6.1f}"

        ok = "yes" if ours.get("shape_kept") else "NO"
        print(f"{name:22s} {cell(ours):>16s} {ok:>3s}   {cell(peer)}", flush=True)
        for message in ours.get("skipped", []):
            print(f"    {message[:300]}")
        for result, who in ((ours, "ours"), (peer, "Torch-Pruning")):
            if "error" in result:
                print(f"    {who}: {result['error']}")
    pruned = [
        r["model"] for r in rows if r["ours"].get("shape_kept") and r["ours"].get("kept", 1) <= 0.8
    ]
    peer_pruned = [
        r["model"]
        for r in rows
        if r["torch_pruning"].get("shape_kept") and r["torch_pruning"].get("kept", 1) <= 0.8
    ]
    print(
        f"\nat least 20% of the parameters removed, output shape kept: ours {len(pruned)}"
        f"/{len(rows)}"
        + ("" if args.no_peer else f", Torch-Pruning {len(peer_pruned)}/{len(rows)}")
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"ratio": args.ratio, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
