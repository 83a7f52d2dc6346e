"""The Trainer: a plain, fast training loop over any ``nn.Module`` with callbacks."""

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

from nasforge._seed import seed_everything
from nasforge.config import is_int, is_number
from nasforge.data.bundle import DataBundle
from nasforge.data.loaders import DataLike, TensorLoader, as_loader
from nasforge.errors import ConfigError, TrainingDivergedError, close_matches
from nasforge.train.callbacks import HOOKS, Callback, TrainState, load_checkpoint, overrides
from nasforge.train.metrics import ConfusionMatrix

__all__ = ["History", "Trainer", "resolve_device"]

logger = logging.getLogger(__name__)

OptimizerLike = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]
ScheduleLike = str | Callable[[torch.optim.Optimizer], Any] | None
LossLike = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr, wd, momentum: torch.optim.SGD(
        params, lr=lr, weight_decay=wd, momentum=momentum, nesterov=momentum > 0
    ),
    "adam": lambda params, lr, wd, momentum: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd, momentum: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
    "rmsprop": lambda params, lr, wd, momentum: torch.optim.RMSprop(
        params, lr=lr, weight_decay=wd, momentum=momentum
    ),
}
_SCHEDULES = ("none", "cosine", "step", "onecycle")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when it is available, else the CPU; anything else is passed on."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError.invalid("device", device, "'auto', 'cpu', 'cuda' or 'cuda:N'") from None


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


class Trainer:
    """Train and evaluate PyTorch classifiers with a plain loop, callbacks and metrics.

    Data may be a :class:`~nasforge.data.DataBundle` (its splits are used), ``Dataset``\\ s,
    ``DataLoader``\\ s, or ``(inputs, targets)`` pairs of tensors or arrays::

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

    def __init__(
        self,
        train_data: DataLike | DataBundle | None = None,
        val_data: DataLike | None = None,
        *,
        test_data: DataLike | None = None,
        epochs: int = 10,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        optimizer: OptimizerLike = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        lr_schedule: ScheduleLike = None,
        loss: LossLike = "cross_entropy",
        label_smoothing: float = 0.0,
        grad_clip: float | None = None,
        callbacks: Sequence[Callback] = (),
        device: str | torch.device = "auto",
        seed: int = 0,
        progress: bool = True,
        num_workers: int = 0,
    ) -> None:
        if isinstance(train_data, DataBundle):
            val_data = train_data.val if val_data is None else val_data
            test_data = train_data.test if test_data is None else test_data
            train_data = train_data.train
        _check_positive_int("epochs", epochs)
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("eval_batch_size", eval_batch_size)
        if not (is_number(lr) and lr > 0):
            raise ConfigError.invalid("lr", lr, "a positive number")
        if not (is_number(weight_decay) and weight_decay >= 0):
            raise ConfigError.invalid("weight_decay", weight_decay, "a number >= 0")
        if not is_number(momentum):
            raise ConfigError.invalid("momentum", momentum, "a number")
        if not (is_number(label_smoothing) and 0 <= label_smoothing < 1):
            raise ConfigError.invalid("label_smoothing", label_smoothing, "a number in [0, 1)")
        if grad_clip is not None and not (is_number(grad_clip) and grad_clip > 0):
            raise ConfigError.invalid("grad_clip", grad_clip, "a positive number or None")
        if not is_int(seed):
            raise ConfigError.invalid("seed", seed, "an integer")
        if not (_is_name_in(optimizer, _OPTIMIZERS) or callable(optimizer)):
            raise ConfigError.invalid(
                "optimizer", optimizer, f"one of {sorted(_OPTIMIZERS)}, a class or a callable"
            )
        if not (
            lr_schedule is None or _is_name_in(lr_schedule, _SCHEDULES) or callable(lr_schedule)
        ):
            raise ConfigError.invalid(
                "lr_schedule", lr_schedule, f"one of {list(_SCHEDULES)}, a callable or None"
            )
        if not (loss == "cross_entropy" or (callable(loss) and not isinstance(loss, str))):
            raise ConfigError.invalid("loss", loss, "'cross_entropy' or a callable")
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError.invalid(
                    "callbacks", cb, "instances of nasforge.Callback", "subclass Callback"
                )
        self.train_data = train_data
        self.val_data = val_data
        self.test_data = test_data
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.optimizer = optimizer
        self.lr = float(lr)
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.lr_schedule = lr_schedule
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.grad_clip = grad_clip
        self.callbacks = list(callbacks)
        self.device = resolve_device(device)
        self.seed = seed
        self.progress = progress
        self.num_workers = num_workers

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

        ``train_data``/``val_data``/``epochs`` override the Trainer's for this call;
        ``callbacks`` are added to the Trainer's. ``resume_from`` names a checkpoint written
        by :class:`~nasforge.ModelCheckpoint`: model, optimizer, schedule, random state and
        history are restored and training continues up to ``epochs`` in total.
        """
        train_data = self.train_data if train_data is None else train_data
        val_data = self.val_data if val_data is None else val_data
        epochs = self.epochs if epochs is None else epochs
        _check_positive_int("epochs", epochs)
        if train_data is None:
            raise ConfigError(
                "no training data. HINT: pass it to Trainer(train_data, ...) or fit(model, "
                "train_data)",
                field="train_data",
            )
        if not isinstance(model, nn.Module):
            raise ConfigError.invalid("model", type(model).__name__, "a torch.nn.Module")
        callbacks = [*self.callbacks, *callbacks]
        hooks = {h: [cb for cb in callbacks if overrides(cb, h)] for h in HOOKS}

        seed_everything(self.seed)
        model.to(self.device)
        train_loader = self._loader(train_data, train=True)
        val_loader = self._loader(val_data, train=False) if val_data is not None else None
        optimizer = self._make_optimizer(model)
        scheduler, per_batch = self._make_schedule(optimizer, epochs, len(train_loader))
        loss_fn = self._loss_fn()
        state = TrainState(model=model, optimizer=optimizer, scheduler=scheduler, epochs=epochs)
        if resume_from is not None:
            self._restore(state, resume_from)
        start_epoch = len(state.history)

        for cb in hooks["on_fit_begin"]:
            cb.on_fit_begin(self, state)
        from tqdm.auto import tqdm

        bar = tqdm(
            total=(epochs - start_epoch) * len(train_loader),
            desc=f"epoch {start_epoch + 1}/{epochs}",
            unit="batch",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        device = self.device
        grad_clip = self.grad_clip
        try:
            for epoch in range(start_epoch, epochs):
                state.epoch = epoch
                started = time.perf_counter()
                if train_loader is not train_data:  # never reseed a user's own loader
                    _set_epoch(train_loader, self.seed, epoch)
                model.train()
                for cb in hooks["on_epoch_begin"]:
                    cb.on_epoch_begin(self, state)
                # per-batch values stay tensors until the epoch ends: no host syncs
                batch_losses: list[torch.Tensor] = []
                batch_sizes: list[int] = []
                batch_correct: list[torch.Tensor] = []
                labelled = True
                for batch, (inputs, targets) in enumerate(train_loader):
                    inputs = inputs.to(device, non_blocking=True)
                    targets = targets.to(device, non_blocking=True)
                    state.batch, state.inputs, state.targets = batch, inputs, targets
                    if hooks["on_batch_begin"]:
                        for cb in hooks["on_batch_begin"]:
                            cb.on_batch_begin(self, state)
                        inputs, targets = state.inputs, state.targets  # hooks may replace them
                    outputs = model(inputs)
                    loss = loss_fn(outputs, targets)
                    if hooks["on_loss"]:
                        state.outputs, state.loss = outputs, loss
                        for cb in hooks["on_loss"]:
                            cb.on_loss(self, state)
                        loss = state.loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    for cb in hooks["on_after_backward"]:
                        cb.on_after_backward(self, state)
                    if grad_clip is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                    optimizer.step()
                    if per_batch:
                        scheduler.step()
                    state.global_step += 1
                    state.outputs, state.loss = outputs, loss
                    for cb in hooks["on_batch_end"]:
                        cb.on_batch_end(self, state)
                    batch_losses.append(loss.detach())
                    batch_sizes.append(targets.shape[0])
                    labelled = labelled and targets.dtype == torch.long
                    if labelled:
                        batch_correct.append((outputs.detach().argmax(1) == targets).sum())
                    bar.update()
                state.inputs = state.targets = state.outputs = state.loss = None
                seen = sum(batch_sizes)
                if not seen:
                    raise ConfigError("the training data is empty", field="train_data")
                train_loss = _weighted_mean(batch_losses, batch_sizes)
                if not math.isfinite(train_loss):
                    raise TrainingDivergedError(
                        f"the training loss became {train_loss} in epoch {epoch + 1}. HINT: "
                        "lower the learning rate, or set grad_clip"
                    )
                metrics = {"epoch": float(epoch + 1), "train_loss": train_loss}
                if seen and labelled:
                    metrics["train_accuracy"] = torch.stack(batch_correct).sum().item() / seen
                if val_loader is not None:
                    val = self._run_eval(model, val_loader, loss_fn)
                    metrics.update({f"val_{k}": v for k, v in val.items()})
                metrics["lr"] = optimizer.param_groups[0]["lr"]
                if scheduler is not None and not per_batch:
                    scheduler.step()
                metrics["time"] = time.perf_counter() - started
                state.metrics = metrics
                state.history.append(metrics)
                for cb in hooks["on_epoch_end"]:
                    cb.on_epoch_end(self, state)
                bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
                bar.set_postfix(_short(metrics, _PROGRESS_METRICS), refresh=False)
                logger.info("epoch %d/%d %s", epoch + 1, epochs, _short(metrics))
                if state.stop:
                    break
        finally:
            bar.close()
        for cb in hooks["on_fit_end"]:
            cb.on_fit_end(self, state)
        return History(state.history)

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, model: nn.Module, data: DataLike | None = None) -> dict[str, float]:
        """Loss, accuracy, macro-F1, macro precision and macro recall of ``model`` on ``data``.

        ``data`` defaults to the Trainer's test data, else its validation data.
        """
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
        """Model outputs (logits) for every sample of ``data``, in order, on the CPU."""
        model.to(self.device)
        model.eval()
        outputs = []
        with torch.inference_mode():
            for batch in self._loader(data, train=False):
                inputs = batch[0] if isinstance(batch, list | tuple) else batch
                outputs.append(model(inputs.to(self.device)).cpu())
        return torch.cat(outputs)

    def search(
        self,
        space: Any,
        *,
        latency: Any = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> Any:
        """Search ``space``, training every candidate with this Trainer's data and settings.

        Builds a :class:`~nasforge.TrainEvaluator` (``latency`` and ``checkpoint_dir`` go to
        it) and runs :func:`nasforge.search` with ``options`` (``strategy``, ``budget``,
        ``objective``, ``constraints``, ``scheduler``, ``executor``, ``journal``...)::

            trainer = nf.Trainer(data, epochs=5, seed=0)
            result = trainer.search(nf.build("space", "mlp"), strategy="bayesian", budget=30)

        Callbacks are not used (each trial trains on its own, possibly in a worker).
        """
        from nasforge.nas.loop import search
        from nasforge.nas.train_evaluator import TrainEvaluator

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
            epochs=self.epochs,
            batch_size=self.batch_size,
            eval_batch_size=self.eval_batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            lr_schedule=self.lr_schedule,
            label_smoothing=self.label_smoothing,
            grad_clip=self.grad_clip,
            seed=self.seed,
            latency=latency,
            checkpoint_dir=checkpoint_dir,
            device=self.device,
        )
        options.setdefault("seed", self.seed)
        options.setdefault("progress", self.progress)
        return search(space, evaluator, **options)

    def compress(
        self, model: nn.Module, compressors: Sequence[Any], **options: Any
    ) -> tuple[nn.Module, Any]:
        """Run ``compressors`` in order on a copy of ``model``; return it and a report.

        The report (a :class:`~nasforge.compress.CompressionReport`) compares accuracy,
        parameters, MACs, size on disk and CPU latency before and after. ``options`` go to
        :class:`~nasforge.compress.Pipeline` (``batch_sizes``, ``threads``, ``latency``...)::

            small, report = trainer.compress(model, [nf.build("compressor", "channel_prune")])
            print(report.table())
        """
        from nasforge.compress.pipeline import Pipeline

        return Pipeline(compressors, **options).run(model, self)

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
        return as_loader(
            data,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            num_workers=self.num_workers,
            name="train_data" if train else "evaluation data",
        )

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("the model has no trainable parameters", field="model")
        opt = self.optimizer
        if isinstance(opt, str):
            return _OPTIMIZERS[opt.lower()](params, self.lr, self.weight_decay, self.momentum)
        if isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer):
            return opt(params, lr=self.lr, weight_decay=self.weight_decay)
        built = opt(params)
        if not isinstance(built, torch.optim.Optimizer):
            raise ConfigError.invalid(
                "optimizer", built, "a callable returning a torch.optim.Optimizer"
            )
        return built

    def _make_schedule(
        self, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
    ) -> tuple[Any, bool]:
        schedule = self.lr_schedule
        if schedule is None or schedule == "none":
            return None, False
        if callable(schedule):
            return schedule(optimizer), False
        lr_sched = torch.optim.lr_scheduler
        if schedule == "cosine":
            return lr_sched.CosineAnnealingLR(optimizer, T_max=epochs), False
        if schedule == "step":
            return lr_sched.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), False
        return (
            lr_sched.OneCycleLR(
                optimizer,
                max_lr=self.lr,
                epochs=epochs,
                steps_per_epoch=max(1, steps_per_epoch),
            ),
            True,
        )

    def _loss_fn(self) -> Callable[..., torch.Tensor]:
        if callable(self.loss):
            return self.loss
        return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

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
        return (
            f"Trainer(epochs={self.epochs}, batch_size={self.batch_size}, "
            f"optimizer={self.optimizer!r}, lr={self.lr}, device={str(self.device)!r}, "
            f"seed={self.seed})"
        )


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


_PROGRESS_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def _short(metrics: dict[str, float], keys: Sequence[str] | None = None) -> dict[str, str]:
    """Metrics formatted for a log line or a progress bar (only ``keys`` when given)."""
    return {
        k: f"{v:.4g}"
        for k, v in metrics.items()
        if (k in keys if keys is not None else k not in ("epoch", "time"))
    }


def _is_name_in(value: Any, names: Iterable[str]) -> bool:
    return isinstance(value, str) and value.lower() in names


def _check_positive_int(name: str, value: Any) -> None:
    if not is_int(value) or value < 1:
        raise ConfigError.invalid(name, value, "a positive integer")
