"""Chaining compressors and measuring what they achieved."""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.compress.base import Compressor
from nasforge.compress.report import CompressionReport, jsonable
from nasforge.errors import ConfigError, SlowdownWarning
from nasforge.measure import compare_latency, count_macs, count_params, size_on_disk
from nasforge.validation import check_bool, check_int, check_int_list, check_number

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


class Pipeline:
    """Run compressors in order and report accuracy, size and speed before and after.

    Each step is a :class:`~nasforge.compress.Compressor`: ``apply(model, trainer)``
    returns the compressed model, fine-tuning through the Trainer where needed. A step may
    leave a ``stats`` dict on itself; the report keeps it. The input model is copied first
    (``copy=True``), so it stays intact and can be a distillation teacher::

        import nasforge as nf

        pipeline = nf.Pipeline([
            nf.build("compressor", "channel_prune", ratio=0.5, finetune_epochs=2),
        ])
        small, report = pipeline.run(model, trainer)
        print(report.table()); report.to_json("report.json")

    ``trainer.compress(model, compressors, **options)`` does the same. Latency is the
    median CPU time per forward pass at each of ``batch_sizes`` on ``threads`` threads;
    ``input_shape`` defaults to the shape of the Trainer's training inputs;
    ``latency=False`` skips the timing (the slowest part of the report). The original, the
    model after every step and the result are timed in turn at the end, so their ratios are
    robust to a busy machine; a step that makes the model more than ``slowdown_tolerance``
    slower at some batch size raises a :class:`~nasforge.SlowdownWarning` and is listed in
    ``report.warnings``.
    """

    def __init__(
        self,
        compressors: Sequence[Compressor],
        *,
        batch_sizes: Sequence[int] = (1, 32),
        threads: int = 1,
        repeats: int = 20,
        warmup: int = 3,
        input_shape: Sequence[int] | None = None,
        copy: bool = True,
        latency: bool = True,
        slowdown_tolerance: float = 0.25,
    ) -> None:
        if isinstance(compressors, Compressor) or not isinstance(compressors, Sequence):
            raise ConfigError.invalid("compressors", compressors, "a list of Compressor instances")
        for i, step in enumerate(compressors):
            if not isinstance(step, Compressor):
                raise ConfigError.invalid(
                    f"compressors[{i}]",
                    step,
                    "a nasforge Compressor",
                    "build one with nf.build('compressor', name, ...)",
                )
        self.compressors = list(compressors)
        self.batch_sizes = tuple(check_int_list(batch_sizes, "batch_sizes", low=1))
        self.threads = check_int(threads, "threads", low=1)
        self.repeats = check_int(repeats, "repeats", low=1)
        self.warmup = check_int(warmup, "warmup", low=0)
        self.input_shape = None
        if input_shape is not None:
            self.input_shape = tuple(check_int_list(input_shape, "input_shape", low=1))
        self.copy = check_bool(copy, "copy")
        self.latency = check_bool(latency, "latency")
        self.slowdown_tolerance = check_number(slowdown_tolerance, "slowdown_tolerance", low=0)

    def run(self, model: nn.Module, trainer: Engine) -> tuple[nn.Module, CompressionReport]:
        """Compress ``model`` step by step; return the result and its report."""
        shape = self.input_shape or tuple(trainer.sample_inputs(1).shape[1:])
        report = CompressionReport(
            settings={
                "input_shape": list(shape),
                "batch_sizes": list(self.batch_sizes),
                "threads": self.threads,
                "repeats": self.repeats,
                "device_for_latency": "cpu",
                "torch": torch.__version__,
            }
        )
        original = model
        if self.copy:
            model = copy.deepcopy(model)
        report.before = self.measure(model, trainer, shape)
        # timed at the end: the model before the steps and after each of them (copies,
        # since a step may change the model in place)
        timed: list[nn.Module] = []
        if self.latency:
            timed.append(original if self.copy else copy.deepcopy(model))
        for step in self.compressors:
            started = time.perf_counter()
            result = step.apply(model, trainer)
            if not isinstance(result, nn.Module):
                raise ConfigError(
                    f"{step!r}.apply returned {type(result).__name__}, not an nn.Module",
                    field="compressors",
                )
            model = result
            seconds = time.perf_counter() - started
            entry = {
                "name": getattr(step, "name", type(step).__name__),
                "config": repr(step),
                "seconds": seconds,
                **self.measure(model, trainer, shape),
                "stats": jsonable(getattr(step, "stats", {}) or {}),
            }
            report.steps.append(entry)
            if self.latency:
                timed.append(copy.deepcopy(model))
            logger.info("compression step %s took %.1f s", entry["name"], seconds)
        report.after = self.measure(model, trainer, shape)
        if self.latency:
            self._time_steps(report, timed, shape)
        return model, report

    def _time_steps(
        self, report: CompressionReport, timed: list[nn.Module], shape: Sequence[int]
    ) -> None:
        """Time ``timed`` (the model before the steps, then after each) in turn; record
        the latencies in the report and warn about every step that made the model slower."""
        latencies = self.latencies(timed, shape)
        report.before.update(latencies[0])
        report.after.update(latencies[-1])
        for i, (step, after) in enumerate(zip(report.steps, latencies[1:], strict=True)):
            step.update(after)
            for key, ms in after.items():
                before = latencies[i][key]
                if ms > before * (1 + self.slowdown_tolerance):
                    message = (
                        f"compression step {i + 1} ({step['name']}) made the model "
                        f"{ms / before:.2f}x slower at batch {key.removeprefix('latency_ms_b')}"
                        f" ({before:.3g} ms -> {ms:.3g} ms, {self.threads} thread(s))"
                    )
                    report.warnings.append(message)
                    warnings.warn(message, SlowdownWarning, stacklevel=3)

    def latencies(
        self, models: Sequence[nn.Module], shape: Sequence[int]
    ) -> list[dict[str, float]]:
        """``latency_ms_b<N>`` of each model on the CPU, timed in turn call by call
        (:func:`~nasforge.measure.compare_latency`), so the ratio of two is robust to a busy
        machine."""
        cpu_models = {
            str(i): m if _device(m).type == "cpu" else copy.deepcopy(m).cpu()
            for i, m in enumerate(models)
        }
        results: list[dict[str, float]] = [{} for _ in models]
        for batch in self.batch_sizes:
            times = compare_latency(
                cpu_models,
                shape,
                batch_size=batch,
                threads=self.threads,
                warmup=self.warmup,
                repeats=self.repeats,
            )
            for i in range(len(models)):
                results[i][f"latency_ms_b{batch}"] = times[str(i)]
        return results

    def measure(
        self, model: nn.Module, trainer: Engine, shape: Sequence[int], *, latency: bool = False
    ) -> dict[str, float]:
        """Accuracy (if evaluation data exists), params, MACs, size (and CPU latency)."""
        metrics: dict[str, float] = {}
        if trainer.test_data is not None or trainer.val_data is not None:
            metrics["accuracy"] = trainer.evaluate(model)["accuracy"]
        cpu_model = model if _device(model).type == "cpu" else copy.deepcopy(model).cpu()
        metrics["params"] = count_params(cpu_model)
        metrics["macs"] = count_macs(cpu_model, shape)
        metrics["size_bytes"] = size_on_disk(cpu_model)
        if latency:
            metrics.update(self.latencies([cpu_model], shape)[0])
        return metrics

    def __repr__(self) -> str:
        return f"Pipeline({self.compressors!r})"


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")
