"""Training a supernet by uniform single-path sampling (SPOS, Guo et al. 2020; RSPS, Li &
Talwalkar 2019).

Every training batch runs one uniformly random path through the shared weights, so after
training any arch can be scored with the weights it inherits. Training is an ordinary
``fit`` with the :class:`SinglePathSampling` callback; :func:`train_supernet` adds the
checkpoint that makes it resumable::

    supernet = Supernet.from_space(space, input_shape=(1, 40), channels=16)
    nf.Trainer(train_data, epochs=30).fit(supernet, callbacks=[SinglePathSampling()])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nasforge.data.bundle import DataBundle
from nasforge.data.loaders import DataLike
from nasforge.errors import ConfigError
from nasforge.space.supernet import Supernet
from nasforge.train.callbacks import Callback, ModelCheckpoint, TrainState
from nasforge.train.config import TrainConfig
from nasforge.train.engine import Engine, History

__all__ = ["SinglePathSampling", "train_supernet"]


class SinglePathSampling(Callback):
    """Before every training batch, set the supernet to a uniformly random path.

    Paths are drawn from torch's random state, which checkpoints save, so a resumed fit
    samples the same paths as an uninterrupted one.
    """

    def on_fit_begin(self, trainer: Engine, state: TrainState) -> None:
        if not isinstance(state.model, Supernet):
            raise ConfigError.invalid(
                "model",
                type(state.model).__name__,
                "a Supernet",
                hint="SinglePathSampling trains a nasforge Supernet (Supernet.from_space)",
            )

    def on_batch_begin(self, trainer: Engine, state: TrainState) -> None:
        state.model.set_arch(state.model.sample_arch())


def train_supernet(
    supernet: Supernet,
    data: DataLike | DataBundle,
    *,
    config: TrainConfig | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    **options: Any,
) -> History:
    """Train ``supernet`` in place by single-path sampling; return its per-epoch history.

    ``data`` is the training data (a DataBundle's training split); ``config`` or keyword
    options say how (:class:`~nasforge.train.TrainConfig`). With ``checkpoint``, a file
    written after every epoch: when it exists, training continues from it up to
    ``epochs``, so an interrupted run loses at most one epoch.
    """
    if not isinstance(supernet, Supernet):
        raise ConfigError.invalid("supernet", type(supernet).__name__, "a Supernet")
    if isinstance(data, DataBundle):
        data = data.train
    engine = Engine(data, config=config, **options)
    callbacks: list[Callback] = [SinglePathSampling()]
    resume = None
    if checkpoint is not None:
        path = Path(checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(ModelCheckpoint(path, save="last"))
        resume = path if path.exists() else None
    return engine.fit(supernet, callbacks=callbacks, resume_from=resume)
