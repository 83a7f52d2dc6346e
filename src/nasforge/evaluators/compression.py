"""Compression-aware evaluation: score an architecture as it will be deployed.

:class:`CompressionEvaluator` (registered as evaluator ``compression``) takes archs of a
:class:`~nasforge.space.compression.CompressedSpace`. For each it trains the architecture
(:class:`~nasforge.TrainEvaluator`; an architecture is trained once, whatever compression
is asked of it), compresses it as the arch's ``compress.*`` choices say (channel pruning,
fine-tuning with or without distillation from the uncompressed model or a given teacher,
int8), and measures the compressed model: validation accuracy, parameters, size on disk
and CPU latency. A search over such a space gives a Pareto front of deployed models, and
:meth:`load_model` rebuilds any of them exactly as measured::

    space = nf.build("space", "compressed", base="cnn", prune=[0.0, 0.5, 0.75])
    evaluator = nf.CompressionEvaluator(space, "digits", epochs=5, finetune_epochs=2)
    result = nf.search(space, evaluator, strategy="nsga2", budget=30,
                       objective=["val_acc", "latency_ms"], mode=["max", "min"])
    deployed = [evaluator.load_model(t.arch) for t in result.pareto_front()]
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from typing import Any

from torch import nn

from nasforge._seed import seed_everything
from nasforge.errors import ConfigError
from nasforge.evaluators.training import TrainEvaluator
from nasforge.measure import LatencyOptions, count_macs, count_params, size_on_disk
from nasforge.nas.evaluator import Evaluator
from nasforge.registry import build, register
from nasforge.space.base import Arch
from nasforge.space.compression import CompressedSpace
from nasforge.train.config import TrainConfig
from nasforge.validation import check_int, check_number

__all__ = ["CompressionEvaluator"]

#: Trained uncompressed models an evaluator keeps in memory (the oldest goes first).
_KEPT_MODELS = 8


@register("evaluator", "compression")
class CompressionEvaluator(Evaluator):
    """Train, compress as chosen, and measure the compressed model.

    ``space`` is a :class:`~nasforge.space.compression.CompressedSpace`; ``data``,
    ``config`` (or keyword training options), ``checkpoint_dir``, ``val_fraction`` and
    ``build_options`` go to the :class:`~nasforge.TrainEvaluator` that trains the
    architectures. After pruning, the model is fine-tuned for ``finetune_epochs`` at
    ``finetune_lr`` (default: a third of the training lr, cosine), distilling from
    ``teacher`` (default: the uncompressed model) with the arch's distillation weight at
    ``temperature``. int8 calibrates on ``calibration_batches`` training batches.
    ``latency`` says how the compressed model is timed (as for TrainEvaluator).

    :meth:`evaluate` returns the compressed model's ``val_acc``, ``val_loss`` and
    ``val_f1``, ``params``, ``macs``, ``size_bytes`` and ``latency_ms``, the uncompressed
    model's ``base_val_acc``, and ``train_seconds`` and ``compress_seconds``.
    """

    timing_metrics = ("latency_ms", "train_seconds", "compress_seconds")

    def __init__(
        self,
        space: CompressedSpace,
        data: Any,
        *,
        config: TrainConfig | None = None,
        finetune_epochs: int = 2,
        finetune_lr: float | None = None,
        teacher: nn.Module | None = None,
        temperature: float = 4.0,
        calibration_batches: int = 16,
        latency: LatencyOptions | Mapping[str, Any] | bool | None = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        val_fraction: float = 0.2,
        build_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(space, CompressedSpace):
            raise ConfigError.invalid(
                "space",
                getattr(space, "name", type(space).__name__),
                "a CompressedSpace",
                hint='e.g. nf.build("space", "compressed", base="cnn")',
            )
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise ConfigError.invalid("teacher", type(teacher).__name__, "an nn.Module or None")
        self.space = space
        self.trainer = TrainEvaluator(
            space.base,
            data,
            config=config,
            latency=False,
            checkpoint_dir=checkpoint_dir,
            val_fraction=val_fraction,
            build_options=build_options,
            **options,
        )
        self.finetune_epochs = check_int(finetune_epochs, "finetune_epochs", low=1)
        lr = self.trainer.config.lr / 3 if finetune_lr is None else finetune_lr
        self.finetune_lr = check_number(lr, "finetune_lr", low=0, low_open=True)
        self.temperature = check_number(temperature, "temperature", low=0, low_open=True)
        self.calibration_batches = check_int(calibration_batches, "calibration_batches", low=1)
        self.teacher = teacher
        self.latency = LatencyOptions.parse(latency)
        self.input_shape = self.trainer.input_shape
        self.num_classes = self.trainer.num_classes
        self.build_options = self.trainer.build_options
        self._trained: dict[str, tuple[nn.Module, float, float]] = {}  # by base arch key

    @staticmethod
    def metric_names(*, latency: bool = True) -> tuple[str, ...]:
        """The metrics :meth:`evaluate` returns (``latency_ms`` only with ``latency``)."""
        names = ["val_acc", "val_loss", "val_f1", "params", "macs", "size_bytes"]
        if latency:
            names.append("latency_ms")
        return (*names, "base_val_acc", "train_seconds", "compress_seconds")

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        """The metrics :meth:`evaluate` returns."""
        return self.metric_names(latency=self.latency is not None)

    @property
    def has_test(self) -> bool:  # type: ignore[override]
        return self.trainer.has_test

    def identity(self) -> dict[str, Any]:
        return {
            "evaluator": "compression",
            "space": self.space.to_dict(),
            "finetune_epochs": self.finetune_epochs,
            "finetune_lr": self.finetune_lr,
            "temperature": self.temperature,
            "calibration_batches": self.calibration_batches,
            "teacher": None if self.teacher is None else type(self.teacher).__name__,
            **{k: v for k, v in self.trainer.identity().items() if k != "evaluator"},
        }

    def evaluate(
        self, arch: Arch | Mapping[str, Any], budget: float | None = None
    ) -> dict[str, float]:
        """Train ``arch``'s architecture (``budget`` epochs, default the config's), compress
        it as ``arch`` says and measure the result."""
        base, _ = self.space.split(arch)
        model, base_val_acc, train_seconds = self._train(base, budget)
        started = time.perf_counter()
        compressed = self._compress(arch, model)
        compress_seconds = time.perf_counter() - started
        scores = self.trainer.engine.evaluate(compressed, self.trainer.engine.val_data)
        metrics = {
            "val_acc": scores["accuracy"],
            "val_loss": scores["loss"],
            "val_f1": scores["macro_f1"],
            "params": float(count_params(compressed)),
            "macs": float(count_macs(compressed, self.input_shape)),
            "size_bytes": float(size_on_disk(compressed)),
        }
        if self.latency is not None:
            metrics["latency_ms"] = self.latency.measure(compressed, self.input_shape)
        metrics.update(
            base_val_acc=base_val_acc,
            train_seconds=train_seconds,
            compress_seconds=compress_seconds,
        )
        return {k: float(v) for k, v in metrics.items()}

    def load_model(self, arch: Arch | Mapping[str, Any]) -> nn.Module:
        """The compressed model of ``arch``, exactly as :meth:`evaluate` measured it (on
        the CPU, in eval mode). An int8 model is a ``torch.ao`` module: export it with
        :func:`nasforge.export_torchscript`."""
        base, _ = self.space.split(arch)
        model, _, _ = self._train(base, None)
        return self._compress(arch, model).cpu().eval()

    def test(self, arch: Arch | Mapping[str, Any]) -> dict[str, float]:
        """``test_acc``, ``test_loss`` and ``test_f1`` of the compressed model."""
        if not self.has_test:
            raise ConfigError("the data has no test split", field="data")
        model = self.load_model(arch)
        scores = self.trainer.engine.evaluate(model, self.trainer.engine.test_data)
        return {
            "test_acc": scores["accuracy"],
            "test_loss": scores["loss"],
            "test_f1": scores["macro_f1"],
        }

    def _train(self, base: Arch, budget: float | None) -> tuple[nn.Module, float, float]:
        """The trained uncompressed model of ``base``, its validation accuracy and the
        seconds its training took; the last few are kept, since a search asks for the same
        architecture with several compressions."""
        key = f"{base.key}@{budget}"
        if key not in self._trained:
            model, metrics = self.trainer.train_model(base, budget)
            if len(self._trained) >= _KEPT_MODELS:
                del self._trained[next(iter(self._trained))]
            self._trained[key] = (model, metrics["val_acc"], metrics["train_seconds"])
        return self._trained[key]

    def _compress(self, arch: Arch | Mapping[str, Any], model: nn.Module) -> nn.Module:
        """``model`` (left intact) compressed as ``arch``'s choices say; the same arch
        always gives the same model."""
        _, choice = self.space.split(arch)
        teacher = self.teacher if self.teacher is not None else model
        finetune = self.trainer.engine.with_options(
            epochs=self.finetune_epochs,
            lr=self.finetune_lr,
            lr_schedule="cosine",
            schedule_epochs=None,
        )
        steps = []
        if choice["prune"] > 0:
            distill = choice["distill"] > 0
            steps.append(
                build(
                    "compressor",
                    "channel_prune",
                    ratio=choice["prune"],
                    finetune_epochs=0 if distill else self.finetune_epochs,
                )
            )
            if distill:
                steps.append(
                    build(
                        "compressor",
                        "distill",
                        teacher=teacher,
                        alpha=choice["distill"],
                        temperature=self.temperature,
                    )
                )
        if choice["int8"]:
            steps.append(build("compressor", "int8", calibration_batches=self.calibration_batches))
        seed_everything(self.trainer.seed)
        compressed = copy.deepcopy(model)
        for step in steps:
            compressed = step.apply(compressed, finetune)
        return compressed.eval()
