"""Fine-tuning a pretrained backbone, with the search choosing how.

:class:`TransferEvaluator` (registered as evaluator ``transfer``) is the training
evaluator for a :class:`~nasforge.space.transfer.TransferSpace`: every arch trains through
the Trainer with two parameter groups, the backbone at the arch's ``backbone_lr`` and the
new head at its ``head_lr`` (the config's optimizer, Adam by default), its first
``freeze`` stages frozen, and with ``unfreeze`` one more stage trainable after each
epoch::

    space = nf.build("space", "transfer", backbone="resnet18", weights="pretrained.pt")
    evaluator = nf.TransferEvaluator(space, target_data, epochs=10)
    result = nf.search(space, evaluator, strategy="bayesian", budget=20)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.evaluators.training import TrainEvaluator
from nasforge.measure import LatencyOptions
from nasforge.registry import register
from nasforge.space._transfer_model import TransferModel
from nasforge.space.base import Arch
from nasforge.space.transfer import TransferSpace
from nasforge.train.callbacks import Callback, TrainState
from nasforge.train.config import TrainConfig
from nasforge.train.engine import Engine
from nasforge.train.optim import OPTIMIZERS

__all__ = ["GradualUnfreezing", "TransferEvaluator"]


@register("evaluator", "transfer")
class TransferEvaluator(TrainEvaluator):
    """:class:`~nasforge.TrainEvaluator` for a ``transfer`` space (the same options and
    metrics); the arch's learning rates replace the config's ``lr``."""

    def __init__(
        self,
        space: TransferSpace,
        data: Any,
        *,
        config: TrainConfig | None = None,
        latency: LatencyOptions | Mapping[str, Any] | bool | None = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        val_fraction: float = 0.2,
        **options: Any,
    ) -> None:
        if not isinstance(space, TransferSpace):
            raise ConfigError.invalid(
                "space",
                getattr(space, "name", type(space).__name__),
                "a TransferSpace",
                hint='e.g. nf.build("space", "transfer", backbone="resnet18")',
            )
        super().__init__(
            space,
            data,
            config=config,
            latency=latency,
            checkpoint_dir=checkpoint_dir,
            val_fraction=val_fraction,
            **options,
        )
        if not isinstance(self.config.optimizer, str):
            raise ConfigError.invalid(
                "optimizer",
                self.config.optimizer,
                f"a name ({', '.join(OPTIMIZERS)}): the transfer evaluator makes the "
                "backbone and head groups itself",
            )

    def _fit_setup(self, arch: Arch, model: nn.Module) -> tuple[Engine, list[Callback]]:
        assert isinstance(model, TransferModel)
        config = self.config
        head = {id(p) for p in model.head_parameters()}
        groups = [
            {
                "params": [p for p in model.parameters() if id(p) not in head],
                "lr": arch["backbone_lr"],
            },
            {"params": model.head_parameters(), "lr": arch["head_lr"]},
        ]

        def optimizer(params: Any) -> torch.optim.Optimizer:
            # every group, frozen stages included, so that unfrozen ones start training
            make = OPTIMIZERS[config.optimizer]
            return make(groups, config.lr, config.weight_decay, config.momentum)

        engine = self.engine.with_options(optimizer=optimizer)
        callbacks: list[Callback] = []
        if arch["unfreeze"] and arch["freeze"] > 0:
            callbacks.append(GradualUnfreezing(arch["freeze"]))
        return engine, callbacks


class GradualUnfreezing(Callback):
    """Start with the first ``frozen`` stages of a :class:`TransferModel` frozen and make
    one more trainable (the deepest frozen one) before each later epoch (ULMFiT, Howard &
    Ruder 2018). It depends only on the epoch, so a resumed fit unfreezes the same."""

    def __init__(self, frozen: int) -> None:
        self.frozen = frozen

    def on_epoch_begin(self, trainer: Engine, state: TrainState) -> None:
        state.model.freeze(max(0, self.frozen - state.epoch))
