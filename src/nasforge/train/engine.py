"""The training engine: a plain, fast fit/evaluate loop over any ``nn.Module``.

:class:`Engine` holds the data, a :class:`~nasforge.train.TrainConfig` and callbacks. The
evaluators and compressors train through it; users meet it as :class:`nasforge.Trainer`,
which adds ``search`` and ``compress`` on top.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from nasforge._progress import progress_bar
from nasforge._seed import seed_everything
from nasforge.data.bundle import DataBundle
from nasforge.data.loaders import DataLike, TensorLoader, as_loader
from nasforge.errors import ConfigError, TrainingDivergedError, close_matches
from nasforge.train.callbacks import HOOKS, Callback, TrainState, load_checkpoint, overrides
from nasforge.train.config import TrainConfig, resolve_device
from nasforge.train.metrics import ConfusionMatrix
from nasforge.train.optim import make_optimizer, make_schedule
from nasforge.validation import check_int

__all__ = ["Engine", "History"]

logger = logging.getLogger(__name__)

_PROGRESS_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


@dataclass
class History:
    """Per-epoch metrics of one ``fit``: ``epoch``, ``train_*``, ``val_*``, ``lr``, ``time``."""

    records: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, float]]:
        return iter(self.records)

    def __getitem__(self, metric: str) -> list[float]:
        """All values of one metric, e.g. ``history["val_accuracy"]``."""
        if not self.records or metric not in self.records[-1]:
            known = sorted(self.records[-1]) if self.records else []
            raise KeyError(
                f"no metric {metric!r}; recorded: {known}" + close_matches(metric, known)
            )
        return [r[metric] for r in self.records]

    @property
    def last(self) -> dict[str, float]:
        """The metrics of the last epoch ({} before any epoch ran)."""
        return self.records[-1] if self.records else {}

    def best(self, metric: str, mode: Literal["min", "max", "auto"] = "auto") -> dict[str, float]:
        """The record of the epoch where ``metric`` was best (min for losses, else max)."""
        values = self[metric]
        minimize = mode == "min" or (mode == "auto" and "loss" in metric)
        index = min(range(len(values)), key=lambda i: values[i] if minimize else -values[i])
        return self.records[index]


@dataclass
class _Fit:
    """Everything one ``fit`` call works with."""

    state: TrainState
    hooks: dict[str, list[Callback]]
    train_data: Any
    train_loader: Any
    val_loader: Any
    loss_fn: Callable[..., torch.Tensor]
    per_batch_schedule: bool

    def call(self, hook: str, engine: Engine) -> None:
        for callback in self.hooks[hook]:
            getattr(callback, hook)(engine, self.state)


class Engine:
    """Train and evaluate PyTorch classifiers with a plain loop, callbacks and metrics.

    Data may be a :class:`~nasforge.data.DataBundle` (its splits are used), ``Dataset``\\ s,
    ``DataLoader``\\ s, or ``(inputs, targets)`` pairs of tensors or arrays. The options are
    a :class:`~nasforge.train.TrainConfig` (``config=``) or its fields as keyword arguments;
    ``engine.lr`` reads ``engine.config.lr``. The same ``seed`` gives the same result twice
    on the same machine.
    """

    def __init__(
        self,
        train_data: DataLike | DataBundle | None = None,
        val_data: DataLike | None = None,
        *,
        test_data: DataLike | None = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        **options: Any,
    ) -> None:
        if isinstance(train_data, DataBundle):
            val_data = train_data.val if val_data is None else val_data
            test_data = train_data.test if test_data is None else test_data
            train_data = train_data.train
        if config is not None and not isinstance(config, TrainConfig):
            raise ConfigError.invalid("config", config, "a TrainConfig or None")
        base = config if config is not None else TrainConfig()
        self.config = base.replace(**options) if options else base
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError.invalid(
                    "callbacks", cb, "instances of nasforge.Callback", "subclass Callback"
                )
        self.train_data = train_data
        self.val_data = val_data
        self.test_data = test_data
        self.callbacks = list(callbacks)
        self.device = resolve_device(self.config.device)

    def __getattr__(self, name: str) -> Any:
        """The training options read as attributes: ``engine.lr`` is ``engine.config.lr``."""
        if name != "config" and name in TrainConfig.FIELDS and "config" in self.__dict__:
            return getattr(self.config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def with_options(self, **changes: Any) -> Engine:
        """A copy with the same data and callbacks, and ``changes`` to the options."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.config = self.config.replace(**changes)
        copy.device = resolve_device(copy.config.device)
        copy.callbacks = list(self.callbacks)
        return copy

    # ------------------------------------------------------------------ training
    def fit(
        self,
        model: nn.Module,
        train_data: DataLike | None = None,
        val_data: DataLike | None = None,
        *,
        epochs: int | None = None,
        callbacks: Sequence[Callback] = (),
        resume_from: str | os.PathLike[str] | None = None,
    ) -> History:
        """Train ``model`` in place and return its per-epoch :class:`History`.

        ``train_data``/``val_data``/``epochs`` override the Engine's for this call;
        ``callbacks`` are added to the Engine's. ``resume_from`` names a checkpoint written
        by :class:`~nasforge.ModelCheckpoint`: model, optimizer, schedule, random state and
        history are restored and training continues up to ``epochs`` in total.
        """
        run = self._start(model, train_data, val_data, epochs, callbacks, resume_from)
        state = run.state
        run.call("on_fit_begin", self)
        first = len(state.history)
        bar = progress_bar(
            self.config.progress,
            total=(state.epochs - first) * len(run.train_loader),
            desc=f"epoch {first + 1}/{state.epochs}",
            unit="batch",
        )
        try:
            for epoch in range(first, state.epochs):
                self._epoch(run, epoch, bar)
                if state.stop:
                    break
        finally:
            bar.close()
        run.call("on_fit_end", self)
        return History(state.history)

    def _start(
        self,
        model: nn.Module,
        train_data: DataLike | None,
        val_data: DataLike | None,
        epochs: int | None,
        callbacks: Sequence[Callback],
        resume_from: str | os.PathLike[str] | None,
    ) -> _Fit:
        """Check the arguments, seed, and set up loaders, optimizer, schedule and state."""
        if isinstance(train_data, DataBundle):  # its training and validation splits
            val_data = train_data.val if val_data is None else val_data
            train_data = train_data.train
        train_data = self.train_data if train_data is None else train_data
        val_data = self.val_data if val_data is None else val_data
        epochs = self.config.epochs if epochs is None else check_int(epochs, "epochs", low=1)
        if train_data is None:
            raise ConfigError(
                "no training data. HINT: pass it to Trainer(train_data, ...) or fit(model, "
                "train_data)",
                field="train_data",
            )
        if not isinstance(model, nn.Module):
            raise ConfigError.invalid("model", type(model).__name__, "a torch.nn.Module")
        all_callbacks = [*self.callbacks, *callbacks]
        hooks = {h: [cb for cb in all_callbacks if overrides(cb, h)] for h in HOOKS}
        config = self.config
        seed_everything(config.seed)
        model.to(self.device)
        train_loader = self._loader(train_data, train=True)
        val_loader = self._loader(val_data, train=False) if val_data is not None else None
        optimizer = make_optimizer(
            model,
            config.optimizer,
            lr=config.lr,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
        )
        scheduler, per_batch = make_schedule(
            optimizer,
            config.lr_schedule,
            epochs=config.schedule_epochs or epochs,
            steps_per_epoch=len(train_loader),
            max_lr=config.lr,
        )
        state = TrainState(model=model, optimizer=optimizer, scheduler=scheduler, epochs=epochs)
        if resume_from is not None:
            self._restore(state, resume_from)
        return _Fit(state, hooks, train_data, train_loader, val_loader, self._loss_fn(), per_batch)

    def _epoch(self, run: _Fit, epoch: int, bar: Any) -> None:
        """One epoch: train on every batch, validate, step the schedule, run callbacks."""
        state = run.state
        state.epoch = epoch
        started = time.perf_counter()
        if run.train_loader is not run.train_data:  # never reseed a user's own loader
            _set_epoch(run.train_loader, self.config.seed, epoch)
        state.model.train()
        run.call("on_epoch_begin", self)
        metrics = self._train_pass(run, bar)
        if not math.isfinite(metrics["train_loss"]):
            raise TrainingDivergedError(
                f"the training loss became {metrics['train_loss']} in epoch {epoch + 1}. "
                "HINT: lower the learning rate, or set grad_clip"
            )
        metrics = {"epoch": float(epoch + 1), **metrics}
        if run.val_loader is not None:
            val = self._run_eval(state.model, run.val_loader, run.loss_fn)
            metrics.update({f"val_{k}": v for k, v in val.items()})
        metrics["lr"] = state.optimizer.param_groups[0]["lr"]
        if state.scheduler is not None and not run.per_batch_schedule:
            state.scheduler.step()
        metrics["time"] = time.perf_counter() - started
        state.metrics = metrics
        state.history.append(metrics)
        run.call("on_epoch_end", self)
        bar.set_description(f"epoch {epoch + 1}/{state.epochs}", refresh=False)
        bar.set_postfix(_short(metrics, _PROGRESS_METRICS), refresh=False)
        logger.info("epoch %d/%d %s", epoch + 1, state.epochs, _short(metrics))

    def _train_pass(self, run: _Fit, bar: Any) -> dict[str, float]:
        """Every training batch once; the epoch's mean loss (and accuracy, for labels).

        Per-batch values stay tensors until the epoch ends, so there are no host syncs.
        """
        state, hooks, device = run.state, run.hooks, self.device
        losses: list[torch.Tensor] = []
        sizes: list[int] = []
        correct: list[torch.Tensor] = []
        labelled = True
        for batch, (inputs, targets) in enumerate(run.train_loader):
            state.batch = batch
            state.inputs = inputs.to(device, non_blocking=True)
            state.targets = targets.to(device, non_blocking=True)
            if hooks["on_batch_begin"]:
                run.call("on_batch_begin", self)  # hooks may replace inputs and targets
            outputs, loss = self._train_step(run)
            losses.append(loss.detach())
            sizes.append(state.targets.shape[0])
            labelled = labelled and state.targets.dtype == torch.long
            if labelled:
                correct.append((outputs.detach().argmax(1) == state.targets).sum())
            bar.update()
        state.inputs = state.targets = state.outputs = state.loss = None
        seen = sum(sizes)
        if not seen:
            raise ConfigError("the training data is empty", field="train_data")
        metrics = {"train_loss": _weighted_mean(losses, sizes)}
        if labelled:
            metrics["train_accuracy"] = torch.stack(correct).sum().item() / seen
        return metrics

    def _train_step(self, run: _Fit) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss (which ``on_loss`` hooks may replace), backward, optimizer step."""
        state, hooks = run.state, run.hooks
        outputs = state.model(state.inputs)
        loss = run.loss_fn(outputs, state.targets)
        if hooks["on_loss"]:
            state.outputs, state.loss = outputs, loss
            run.call("on_loss", self)
            loss = state.loss
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hooks["on_after_backward"]:
            run.call("on_after_backward", self)
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(state.model.parameters(), self.config.grad_clip)
        state.optimizer.step()
        if run.per_batch_schedule:
            state.scheduler.step()
        state.global_step += 1
        state.outputs, state.loss = outputs, loss
        if hooks["on_batch_end"]:
            run.call("on_batch_end", self)
        return outputs, loss

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, model: nn.Module, data: DataLike | None = None) -> dict[str, float]:
        """Loss, accuracy, macro-F1, macro precision and macro recall of ``model`` on ``data``.

        ``data`` defaults to the test data, else the validation data (the same for a
        DataBundle).
        """
        data = _evaluation_split(data)
        data = data if data is not None else self.test_data
        data = data if data is not None else self.val_data
        if data is None:
            raise ConfigError(
                "no data to evaluate on. HINT: pass evaluate(model, data) or give the "
                "Trainer test_data",
                field="data",
            )
        model.to(self.device)
        return self._run_eval(model, self._loader(data, train=False), self._loss_fn())

    def predict(self, model: nn.Module, data: DataLike) -> torch.Tensor:
        """Model outputs (logits) for every sample of ``data`` (a DataBundle's test split,
        else its validation split), in order, on the CPU."""
        data = _evaluation_split(data)
        model.to(self.device)
        model.eval()
        outputs = []
        with torch.inference_mode():
            for batch in self._loader(data, train=False):
                inputs = batch[0] if isinstance(batch, list | tuple) else batch
                outputs.append(model(inputs.to(self.device)).cpu())
        return torch.cat(outputs)

    def sample_inputs(self, n: int = 1) -> torch.Tensor:
        """The first ``n`` training inputs (validation inputs without training data), e.g.
        to trace a model or time it."""
        data = self.train_data if self.train_data is not None else self.val_data
        if data is None:
            raise ConfigError(
                "example inputs are needed, but the Trainer has no data. HINT: build it as "
                "Trainer(train_data, val_data, ...)",
                field="train_data",
            )
        batch = next(iter(as_loader(data, batch_size=n, shuffle=False)))
        inputs = batch[0] if isinstance(batch, list | tuple) else batch
        return inputs[:n]

    def _run_eval(
        self, model: nn.Module, loader: Iterable[Any], loss_fn: Callable[..., torch.Tensor]
    ) -> dict[str, float]:
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        confusion: ConfusionMatrix | None = None
        with torch.inference_mode():
            for inputs, targets in loader:
                inputs = inputs.to(self.device, non_blocking=True)
                targets = targets.to(self.device, non_blocking=True)
                outputs = model(inputs)
                loss_sum += loss_fn(outputs, targets) * targets.shape[0]
                seen += targets.shape[0]
                if confusion is None:
                    confusion = ConfusionMatrix(outputs.shape[1], self.device)
                confusion.update(outputs, targets)
        model.train(was_training)
        metrics = {"loss": loss_sum.item() / max(seen, 1)}
        if confusion is not None:
            metrics.update(confusion.compute())
        return metrics

    # ------------------------------------------------------------------- helpers
    def _loader(self, data: DataLike, *, train: bool) -> DataLoader | TensorLoader:
        config = self.config
        return as_loader(
            data,
            batch_size=config.batch_size if train else config.eval_batch_size,
            shuffle=train,
            seed=config.seed,
            num_workers=config.num_workers,
            name="train_data" if train else "evaluation data",
        )

    def _loss_fn(self) -> Callable[..., torch.Tensor]:
        if callable(self.config.loss):
            return self.config.loss
        return nn.CrossEntropyLoss(label_smoothing=self.config.label_smoothing)

    def _restore(self, state: TrainState, path: str | os.PathLike[str]) -> None:
        checkpoint = load_checkpoint(path)
        state.model.load_state_dict(checkpoint["model"])
        state.optimizer.load_state_dict(checkpoint["optimizer"])
        if state.scheduler is not None and checkpoint["scheduler"] is not None:
            state.scheduler.load_state_dict(checkpoint["scheduler"])
        state.history = list(checkpoint["history"])
        state.metrics = dict(checkpoint["metrics"])
        state.global_step = 0
        torch.set_rng_state(checkpoint["rng"])
        logger.info("resumed from %s after epoch %d", path, checkpoint["epoch"])

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{type(self).__name__}(epochs={c.epochs}, batch_size={c.batch_size}, "
            f"optimizer={c.optimizer!r}, lr={c.lr}, device={str(self.device)!r}, "
            f"seed={c.seed})"
        )


def _evaluation_split(data: Any) -> Any:
    """A DataBundle's test split (its validation split without one); other data as is."""
    if isinstance(data, DataBundle):
        return data.test if data.test is not None else data.val
    return data


def _set_epoch(loader: Any, seed: int, epoch: int) -> None:
    """Make epoch ``epoch``'s shuffle depend only on ``seed`` and ``epoch`` (so resume matches)."""
    if isinstance(loader, TensorLoader):
        loader.set_epoch(epoch)
    elif isinstance(loader, DataLoader) and loader.generator is not None:
        loader.generator.manual_seed(seed + epoch)


def _weighted_mean(values: list[torch.Tensor], weights: list[int]) -> float:
    if not values:
        return math.nan
    stacked = torch.stack(values).double().cpu()
    return float((stacked * torch.tensor(weights, dtype=torch.double)).sum() / sum(weights))


def _short(metrics: dict[str, float], keys: Sequence[str] | None = None) -> dict[str, str]:
    """Metrics formatted for a log line or a progress bar (only ``keys`` when given)."""
    return {
        k: f"{v:.4g}"
        for k, v in metrics.items()
        if (k in keys if keys is not None else k not in ("epoch", "time"))
    }
