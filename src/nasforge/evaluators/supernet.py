"""Weight-sharing evaluation: score any arch of a cell space with a trained supernet.

:class:`SupernetEvaluator` (registered as evaluator ``supernet``) trains one supernet of the
space by uniform single-path sampling (or takes a trained one), then scores an arch by
running its path with the inherited weights: batch-norm statistics are re-estimated on a
few training batches for that path (they are shared by every path during training, so
they fit none), then validation accuracy is measured. Every strategy and the search loop
use it as they use any evaluator::

    space = nf.build("space", "nb201")
    evaluator = nf.SupernetEvaluator(space, "mnist1d", epochs=30,
                                     build_options={"channels": 16, "cells_per_stage": 1})
    result = nf.search(space, evaluator, strategy="evolution", budget=200)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from itertools import islice
from typing import Any

import torch
from torch import nn

from nasforge._seed import seed_everything
from nasforge.data.loaders import as_loader
from nasforge.data.splits import Splits, fingerprint, prepare_splits, split_size
from nasforge.errors import ConfigError
from nasforge.nas.evaluator import Evaluator
from nasforge.oneshot.single_path import train_supernet
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.space.supernet import Supernet
from nasforge.train.config import TrainConfig
from nasforge.train.engine import Engine
from nasforge.validation import check_int, check_number, check_options

__all__ = ["SupernetEvaluator"]


@register("evaluator", "supernet")
class SupernetEvaluator(Evaluator):
    """Score archs of ``space`` with the inherited weights of a supernet trained on ``data``.

    ``data`` takes the forms :class:`~nasforge.TrainEvaluator` takes. The supernet is
    ``supernet`` when given (already trained), else ``space.supernet(**build_options)``
    trained here by single-path sampling as ``config`` or the keyword options say
    (:class:`~nasforge.train.TrainConfig`); with ``checkpoint`` that training resumes
    after a crash. :meth:`evaluate` re-estimates batch-norm statistics on
    ``calibration_batches`` training batches for the arch's path, then returns
    ``val_acc``, ``val_loss`` and ``val_f1``: the same arch always gets the same scores.
    """

    metrics = ("val_acc", "val_loss", "val_f1")

    def __init__(
        self,
        space: Space,
        data: Any,
        *,
        supernet: Supernet | None = None,
        config: TrainConfig | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        calibration_batches: int = 8,
        build_options: Mapping[str, Any] | None = None,
        val_fraction: float = 0.2,
        **options: Any,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError.invalid("space", type(space).__name__, "a Space")
        if supernet is not None and not isinstance(supernet, Supernet):
            raise ConfigError.invalid("supernet", type(supernet).__name__, "a Supernet or None")
        if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
            raise ConfigError.invalid("checkpoint", checkpoint, "a file path or None")
        check_number(val_fraction, "val_fraction", low=0, high=1, low_open=True, high_open=True)
        self.calibration_batches = check_int(calibration_batches, "calibration_batches", low=1)
        self.build_options = check_options(
            build_options, "build_options", ("input_shape", "num_classes")
        )
        if config is not None and not isinstance(config, TrainConfig):
            raise ConfigError.invalid("config", config, "a TrainConfig or None")
        self.config = (config or TrainConfig()).replace(**options)
        if supernet is None and type(space).supernet is Space.supernet:
            raise ConfigError.invalid(
                "space",
                space.name,
                "a space with a supernet, such as 'nb201'",
                hint="a cell space of your own gets one by implementing Space.supernet() "
                "(docs/oneshot.md)",
            )
        splits = prepare_splits(data, val_fraction=val_fraction, seed=self.config.seed)
        self.space = space
        self.engine = Engine(splits.train, splits.val, test_data=splits.test, config=self.config)
        self.input_shape, self.num_classes = splits.input_shape, splits.num_classes
        if supernet is None:
            seed_everything(self.config.seed)
            supernet = Supernet.from_space(
                space,
                input_shape=self.input_shape,
                num_classes=self.num_classes,
                **self.build_options,
            )
            train_supernet(supernet, splits.train, config=self.config, checkpoint=checkpoint)
        elif supernet.space != space:
            raise ConfigError.invalid(
                "supernet", supernet.space.name, f"a supernet of {space.name!r}"
            )
        self.supernet = supernet.cpu() if self.engine.device.type == "cpu" else supernet
        loader = as_loader(
            splits.train, batch_size=self.config.batch_size, shuffle=True, seed=self.config.seed
        )
        self._calibration = [batch[0] for batch in islice(loader, self.calibration_batches)]
        #: What the scores depend on besides the arch (recorded in a search's journal).
        self.settings = self._settings(splits)

    def _settings(self, splits: Splits) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "build_options": self.build_options,
            "train_size": split_size(splits.train),
            "val_size": split_size(splits.val),
            "data_sha256": fingerprint(splits.train, splits.val),
            "calibration_batches": self.calibration_batches,
            **{k: v for k, v in self.config.describe().items() if k not in _NOT_SETTINGS},
        }

    @property
    def has_test(self) -> bool:  # type: ignore[override]
        """Whether the data has a test split (scored with inherited weights too)."""
        return self.engine.test_data is not None

    def identity(self) -> dict[str, Any]:
        return {"evaluator": "supernet", **self.settings}

    def evaluate(
        self, arch: Arch | Mapping[str, Any], budget: float | None = None
    ) -> dict[str, float]:
        """``val_acc``, ``val_loss`` and ``val_f1`` of ``arch``'s path (``budget`` is
        ignored: there is nothing to train)."""
        scores = self._score(arch, self.engine.val_data)
        return {
            "val_acc": scores["accuracy"],
            "val_loss": scores["loss"],
            "val_f1": scores["macro_f1"],
        }

    def test(self, arch: Arch | Mapping[str, Any]) -> dict[str, float]:
        """``test_acc``, ``test_loss`` and ``test_f1`` of ``arch``'s path, with inherited
        weights (retrain the arch for its stand-alone accuracy)."""
        if self.engine.test_data is None:
            raise ConfigError("the data has no test split", field="data")
        scores = self._score(arch, self.engine.test_data)
        return {
            "test_acc": scores["accuracy"],
            "test_loss": scores["loss"],
            "test_f1": scores["macro_f1"],
        }

    def _score(self, arch: Arch | Mapping[str, Any], data: Any) -> dict[str, float]:
        self.supernet.set_arch(arch)
        recalibrate_batch_norm(self.supernet, self._calibration, self.engine.device)
        return self.engine.evaluate(self.supernet, data)

    def __repr__(self) -> str:
        return (
            f"SupernetEvaluator(space={self.space.name!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, build_options={self.build_options!r})"
        )


def recalibrate_batch_norm(
    model: nn.Module, batches: list[torch.Tensor], device: torch.device | str = "cpu"
) -> None:
    """Re-estimate every batch-norm layer's running statistics from ``batches`` (their
    exact mean over the batches), leaving the weights untouched."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    was_training = model.training
    model.train()
    with torch.no_grad():
        for inputs in batches:
            model(inputs.to(device))
    model.train(was_training)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


#: Options that do not change the supernet's weights.
_NOT_SETTINGS = ("eval_batch_size", "device", "progress", "num_workers")
