"""The user-facing :class:`Trainer`: fit, evaluate, search and compress in one object.

It is the training engine (:class:`nasforge.train.Engine`) plus the two workflows built on
it: :meth:`Trainer.search` trains every candidate of a space with the Trainer's data and
options, :meth:`Trainer.compress` runs a compression pipeline. Everything it composes
lives in a lower layer and knows nothing about it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from nasforge.compress.base import Compressor
from nasforge.compress.pipeline import Pipeline
from nasforge.compress.report import CompressionReport
from nasforge.errors import ConfigError
from nasforge.evaluators.training import TrainEvaluator
from nasforge.measure import LatencyOptions
from nasforge.nas.loop import search
from nasforge.nas.result import SearchResult
from nasforge.space.base import Space
from nasforge.train.engine import Engine

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


class Trainer(Engine):
    """Train, evaluate, search and compress PyTorch classifiers.

    Data may be a :class:`~nasforge.DataBundle` (its splits are used), ``Dataset``\\ s,
    ``DataLoader``\\ s, or ``(inputs, targets)`` pairs of tensors or arrays; the options are
    the fields of :class:`~nasforge.TrainConfig`, as keyword arguments or ``config=``::

        import nasforge as nf

        data = nf.load_dataset("digits")
        trainer = nf.Trainer(data, epochs=5, seed=0)
        history = trainer.fit(model)
        print(trainer.evaluate(model, data.test))

    ``optimizer`` is a name (``sgd``, ``adam``, ``adamw``, ``rmsprop``), an optimizer class,
    or a callable ``params -> Optimizer``; ``lr_schedule`` is a name (``none``, ``cosine``,
    ``step``, ``onecycle``) or a callable ``optimizer -> scheduler`` stepped every epoch.
    The same ``seed`` gives the same result twice on the same machine.
    """

    def search(
        self,
        space: Space,
        *,
        latency: LatencyOptions | bool | Any = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> SearchResult:
        """Search ``space``, training every candidate with this Trainer's data and options.

        Builds a :class:`~nasforge.TrainEvaluator` with this Trainer's whole
        :class:`~nasforge.TrainConfig` (``latency`` and ``checkpoint_dir`` go to it) and
        runs :func:`nasforge.search` with ``options`` (``strategy``, ``budget``,
        ``objective``, ``constraints``, ``scheduler``, ``executor``, ``journal``...)::

            trainer = nf.Trainer(data, epochs=5, seed=0)
            result = trainer.search(nf.build("space", "mlp"), strategy="bayesian", budget=30)

        Callbacks are not used (each trial trains on its own, possibly in a worker).
        """
        if self.train_data is None:
            raise ConfigError.invalid("train_data", None, "training data for the search")
        if self.callbacks:
            logger.warning("Trainer.search does not use the trainer's callbacks")
        splits = [self.train_data]
        if self.val_data is not None:
            splits.append(self.val_data)
            if self.test_data is not None:
                splits.append(self.test_data)
        evaluator = TrainEvaluator(
            space,
            tuple(splits) if len(splits) > 1 else splits[0],
            config=self.config,
            latency=latency,
            checkpoint_dir=checkpoint_dir,
        )
        options.setdefault("seed", self.config.seed)
        options.setdefault("progress", self.config.progress)
        return search(space, evaluator, **options)

    def compress(
        self, model: nn.Module, compressors: Sequence[Compressor], **options: Any
    ) -> tuple[nn.Module, CompressionReport]:
        """Run ``compressors`` in order on a copy of ``model``; return it and a report.

        The report (a :class:`~nasforge.CompressionReport`) compares accuracy, parameters,
        MACs, size on disk and CPU latency before and after. ``options`` go to
        :class:`~nasforge.Pipeline` (``batch_sizes``, ``threads``, ``latency``...)::

            small, report = trainer.compress(model, [nf.build("compressor", "channel_prune")])
            print(report.table())
        """
        return Pipeline(compressors, **options).run(model, self)
