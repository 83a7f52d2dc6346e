"""``nasforge demo``: the product's main job in one run, on data that ships with nasforge.

1. **Search** a CNN space for validation accuracy against measured batch-1 latency
   (``nsga2``, every candidate trained, two process workers).
2. **Pick** the most accurate architecture whose latency is within ``latency_budget`` of
   the most accurate one's (a fraction of it), then **distil** into it from the most
   accurate model (or the top-3 ensemble), **prune** its channels, recover with
   distillation, and **quantize** it to int8, unless int8 would make it slower.
3. **Report** accuracy, parameters, size and batch-1 latency of the most accurate searched
   model, the picked one, the pruned float model and its int8 version (all timed in turn,
   one thread), and
   write the trials, the results, the final model and a Pareto plot into ``out``.

The pieces are public API: :func:`nasforge.search`, :class:`~nasforge.TrainEvaluator`,
:meth:`SearchResult.ensemble <nasforge.SearchResult.ensemble>`, the ``distill``,
``channel_prune`` and ``int8`` compressors and :func:`~nasforge.compare_latency`.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.cli.search import _load_data
from nasforge.compress.pipeline import Pipeline
from nasforge.data.bundle import DataBundle
from nasforge.errors import ConfigError
from nasforge.evaluators.training import TrainEvaluator
from nasforge.export import export_torchscript
from nasforge.measure import compare_latency, count_params, size_on_disk
from nasforge.nas.loop import search
from nasforge.nas.result import SearchResult, Trial
from nasforge.registry import available, build
from nasforge.trainer import Trainer
from nasforge.validation import check_choice, check_int, check_number

__all__ = ["DemoResult", "run_demo"]

#: The space searched: 1-3 stages of 16/32/64 channels, kernels 3/5, 1-2 blocks a stage.
SPACE_OPTIONS = {"max_stages": 3, "channels": [16, 32, 64], "kernels": [3, 5], "max_blocks": 2}
TEACHERS = ("best", "ensemble")


@dataclass
class DemoResult:
    """What :func:`run_demo` did: one row per model (``name``, ``accuracy``, ``params``,
    ``size_bytes``, ``latency_ms``), the search, and the files written."""

    rows: list[dict[str, Any]]
    search: SearchResult
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> str:
        """The before/after table, with each model's factors against the first row."""
        base = self.rows[0]
        lines = [
            f"{'model':<34}{'test acc':>9}{'params':>9}{'size KB':>9}{'lat ms':>9}"
            f"{'x faster':>9}{'x smaller':>10}"
        ]
        for row in self.rows:
            lines.append(
                f"{row['name']:<34}{100 * row['accuracy']:>9.2f}{row['params']:>9,}"
                f"{row['size_bytes'] / 1024:>9.1f}{row['latency_ms']:>9.3f}"
                f"{base['latency_ms'] / row['latency_ms']:>9.2f}"
                f"{base['size_bytes'] / row['size_bytes']:>10.2f}"
            )
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def load_data(name: str, seed: int = 0) -> DataBundle:
    """A registered dataset (``digits``, ``mnist1d``...) or ``package.module:function``
    returning a :class:`~nasforge.DataBundle` (called with ``seed``)."""
    if ":" not in name and name not in available("dataset"):
        raise ConfigError.invalid(
            "data",
            name,
            f"a registered dataset ({', '.join(available('dataset'))}) or "
            "'package.module:function' returning a nasforge DataBundle",
        )
    data = _load_data(name, {"seed": seed})  # as `nasforge search` loads its data
    if not isinstance(data, DataBundle) or data.test is None:
        raise ConfigError.invalid(
            "data", name, "a DataBundle with a test split (nf.DataBundle(train, val, test))"
        )
    return data


def run_demo(
    data: str | DataBundle = "digits",
    *,
    out: str | Path = "nasforge-demo",
    budget: int = 24,
    epochs: int = 10,
    latency_budget: float = 0.5,
    prune_ratio: float = 0.5,
    distill_epochs: int = 10,
    teacher: str = "best",
    workers: int = 2,
    seed: int = 0,
    progress: bool | None = None,
) -> DemoResult:
    """Search, pick, distil, prune and quantize on ``data``; write the results to ``out``.

    ``latency_budget`` is the picked model's largest batch-1 latency as a fraction of the
    most accurate searched model's; ``teacher`` is ``"best"`` (the most accurate model) or
    ``"ensemble"`` (the top-3 ensemble).
    """
    started = time.perf_counter()
    check_int(budget, "budget", low=4)
    check_int(epochs, "epochs", low=1)
    check_int(distill_epochs, "distill_epochs", low=1)
    check_number(latency_budget, "latency_budget", low=0, low_open=True)
    check_number(prune_ratio, "prune_ratio", low=0, high=1, high_open=True)
    check_choice(teacher, "teacher", TEACHERS)
    bundle = data if isinstance(data, DataBundle) else load_data(data, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    evaluator, result = _search(bundle, out, budget, epochs, workers, seed, progress)
    best = most_accurate(result)
    picked = pick(result, best, latency_budget)
    trainer = Trainer(bundle, lr=1e-3, seed=seed, progress=progress)
    reference = evaluator.load_model(best.arch)
    teacher_model = reference if teacher == "best" else result.ensemble(3)
    student = evaluator.load_model(picked.arch)
    recover = [
        build("compressor", "distill", teacher=teacher_model, epochs=distill_epochs),
        build("compressor", "channel_prune", ratio=prune_ratio),
        build("compressor", "distill", teacher=teacher_model, epochs=distill_epochs),
    ]
    small, _ = Pipeline(recover, latency=False).run(student, trainer)
    quantized, _ = Pipeline([build("compressor", "int8")], latency=False).run(small, trainer)
    models = {
        f"most accurate searched (#{best.number})": reference,
        f"picked under latency budget (#{picked.number})": student,
        f"distilled, pruned {prune_ratio:.0%}, distilled": small,
        "int8": quantized,
    }
    rows = _measure(models, trainer, tuple(bundle.input_shape))
    final, notes = _final(rows, small, quantized)
    demo = DemoResult(rows, result, notes=notes)
    demo.files = _write(out, demo, final, bundle)
    demo.seconds = time.perf_counter() - started
    return demo


def _search(
    data: DataBundle,
    out: Path,
    budget: int,
    epochs: int,
    workers: int,
    seed: int,
    progress: bool | None,
) -> tuple[TrainEvaluator, SearchResult]:
    """The search of step 1: every candidate trained (checkpoints in ``out``) and timed."""
    space = build("space", "cnn", **SPACE_OPTIONS)
    evaluator = TrainEvaluator(
        space,
        data,
        epochs=epochs,
        lr=3e-3,
        lr_schedule="cosine",
        batch_size=64,
        seed=seed,
        checkpoint_dir=out / "checkpoints",
        latency={"threads": 1, "repeats": 30},
    )
    result = search(
        space,
        evaluator,
        strategy="nsga2",
        budget=budget,
        seed=seed,
        objective=["val_acc", "latency_ms"],
        mode=["max", "min"],
        executor={"name": "process", "workers": workers, "threads_per_worker": 1},
        test=False,
        progress=progress,
    )
    if not result.final:
        raise ConfigError("no trial of the demo's search finished", field="data")
    return evaluator, result


def most_accurate(result: SearchResult) -> Trial:
    """The finished trial of highest validation accuracy; of several, the one of lowest
    validation loss (small validation sets often give several a perfect score)."""
    return max(result.final, key=lambda t: (t.metrics["val_acc"], -t.metrics["val_loss"]))


def pick(result: SearchResult, best: Trial, latency_budget: float) -> Trial:
    """The most accurate finished trial (by :func:`most_accurate`'s order) whose latency is
    at most ``latency_budget`` times ``best``'s; the fastest when none is."""
    limit = latency_budget * best.metrics["latency_ms"]
    trials = [t for t in result.final if "latency_ms" in t.metrics]
    within = [t for t in trials if t.metrics["latency_ms"] <= limit]
    if not within:
        return min(trials, key=lambda t: t.metrics["latency_ms"])
    return max(within, key=lambda t: (t.metrics["val_acc"], -t.metrics["val_loss"]))


def _final(
    rows: list[dict[str, Any]], small: nn.Module, quantized: nn.Module
) -> tuple[nn.Module, list[str]]:
    """The int8 model, unless it is slower than the float one at batch 1 (then a note)."""
    if rows[-1]["latency_ms"] <= rows[-2]["latency_ms"]:
        return quantized, []
    return small, ["int8 made the model slower at batch 1 here, so the float model is final"]


def _measure(
    models: dict[str, nn.Module], trainer: Trainer, shape: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Test accuracy, params, size and batch-1 latency (one thread, all timed in turn)."""
    latency = compare_latency(models, shape, batch_size=1, threads=1, warmup=10, repeats=100)
    return [
        {
            "name": name,
            "accuracy": trainer.evaluate(model)["accuracy"],
            "params": count_params(model),
            "size_bytes": size_on_disk(model),
            "latency_ms": latency[name],
        }
        for name, model in models.items()
    ]


def _write(out: Path, demo: DemoResult, final: nn.Module, data: DataBundle) -> dict[str, Path]:
    """The search's files, ``results.json`` and the final model (TorchScript, which loads
    int8 models too, with ``torch.jit.load``)."""
    files = demo.search.save(out)
    example = data.test.tensors[0][:1] if hasattr(data.test, "tensors") else None
    if example is None:
        example = torch.zeros(1, *data.input_shape)
    files["final_model"] = export_torchscript(copy.deepcopy(final), out / "final_model.ts", example)
    files["results"] = out / "results.json"
    record = {"rows": demo.rows, "notes": demo.notes, "table": demo.table()}
    files["results"].write_text(json.dumps(record, indent=1) + "\n")
    return files
