"""Training-based evaluation: build an architecture, train it, measure it.

:class:`TrainEvaluator` (registered as evaluator ``train``) turns an :class:`Arch` into a
model with its space, trains it with the :class:`~nasforge.Trainer` for ``budget`` epochs
and returns validation accuracy, loss and macro-F1 with the model's parameters, MACs and
CPU latency::

    import nasforge as nf

    space = nf.build("space", "cnn", max_stages=2)
    evaluator = nf.TrainEvaluator(space, "mnist1d", epochs=5, checkpoint_dir="ckpt")
    evaluator.evaluate(space.sample(seed=0), budget=2)  # {'val_acc': 0.41, ...}
    evaluator.evaluate(space.sample(seed=0))            # continues to 5 epochs from ckpt
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from nasforge._seed import seed_everything
from nasforge.config import is_int, is_number
from nasforge.data.bundle import DataBundle, load_dataset, stratified_split
from nasforge.data.loaders import TensorLoader
from nasforge.errors import CheckpointError, ConfigError
from nasforge.measure import count_macs, count_params, measure_latency
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.space.builtin import CNNSpace
from nasforge.train.callbacks import ModelCheckpoint, load_checkpoint
from nasforge.train.trainer import OptimizerLike, Trainer

__all__ = ["LatencyOptions", "TrainEvaluator"]

_SETTINGS_FILE = "evaluator.json"


@dataclass(frozen=True)
class LatencyOptions:
    """How :class:`TrainEvaluator` times a forward pass (see :func:`nasforge.measure_latency`).

    The median of ``repeats`` timed passes of ``batch_size`` samples on the CPU with
    ``threads`` intra-op threads (None keeps the current setting), after ``warmup`` passes.
    """

    batch_size: int = 1
    threads: int | None = 1
    warmup: int = 3
    repeats: int = 20

    def __post_init__(self) -> None:
        for name, low in (("batch_size", 1), ("warmup", 0), ("repeats", 1)):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                raise ConfigError.invalid(f"latency.{name}", value, f"an integer >= {low}")
        threads = self.threads
        if threads is not None and (not is_int(threads) or threads < 1):
            raise ConfigError.invalid("latency.threads", threads, "a positive integer or None")


class _Splits(NamedTuple):
    train: Any
    val: Any
    test: Any
    input_shape: tuple[int, ...]
    num_classes: int


@dataclass(frozen=True)
class _FixedSchedule:
    """A named per-epoch schedule whose length is always the evaluator's ``epochs``."""

    name: str
    epochs: int

    def __call__(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.name == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=max(1, self.epochs // 3), gamma=0.1
        )


@register("evaluator", "train")
class TrainEvaluator:
    """Train each architecture of ``space`` on ``data`` and measure it.

    ``data`` is a dataset name (``"digits"``, ``"mnist1d"``...), a :class:`DataBundle`, a
    tuple ``(train, val)`` or ``(train, val, test)`` whose parts are ``(X, y)`` pairs of
    tensors or arrays, Datasets or DataLoaders, or one ``(X, y)`` pair or Dataset, which is
    split into train and validation (stratified, ``val_fraction``, ``seed``). The sample
    shape and the class count (largest label + 1) are inferred. Feature vectors ``(N, F)``
    given to a ``cnn`` space are read as one-channel signals: the model gets an
    ``nn.Unflatten`` in front, so it still takes the data as given.

    :meth:`evaluate` returns ``val_acc`` (a fraction in [0, 1], like
    :meth:`Trainer.evaluate`), ``val_loss``, ``val_f1`` (macro), ``train_loss``,
    ``train_acc``, ``params``, ``macs`` (per sample), ``latency_ms`` (unless
    ``latency=False``), ``epochs`` and ``train_seconds``. The same seed and architecture
    give the same metrics. With ``checkpoint_dir``, every trial's training state is kept,
    and a larger budget later continues it instead of starting over; ``epochs`` is then the
    largest budget and the length of the learning-rate schedule.

    Example::

        evaluator = TrainEvaluator(nf.build("space", "mlp"), "digits", epochs=3)
        evaluator.evaluate(arch)["val_acc"]
    """

    def __init__(
        self,
        space: Space,
        data: Any,
        *,
        epochs: int = 5,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        optimizer: OptimizerLike = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        lr_schedule: str | Callable[[torch.optim.Optimizer], Any] | None = None,
        label_smoothing: float = 0.0,
        grad_clip: float | None = None,
        seed: int = 0,
        latency: LatencyOptions | Mapping[str, Any] | bool | None = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        val_fraction: float = 0.2,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError.invalid(
                "space", type(space).__name__, "a Space", hint='e.g. nf.build("space", "cnn")'
            )
        if not is_int(seed) or seed < 0:
            raise ConfigError.invalid("seed", seed, "a non-negative integer")
        if not (is_number(val_fraction) and 0 < val_fraction < 1):
            raise ConfigError.invalid("val_fraction", val_fraction, "a fraction in (0, 1)")
        if isinstance(lr_schedule, str) and lr_schedule.lower() not in ("none", "cosine", "step"):
            raise ConfigError.invalid(
                "lr_schedule",
                lr_schedule,
                "'cosine', 'step', None or a callable optimizer -> scheduler",
                hint="'onecycle' steps every batch, so a trial could not be continued "
                "at a larger budget; use 'cosine'",
            )
        if lr_schedule is not None and not (isinstance(lr_schedule, str) or callable(lr_schedule)):
            raise ConfigError.invalid("lr_schedule", lr_schedule, "a name, a callable or None")
        schedule: Any = lr_schedule
        if isinstance(lr_schedule, str):
            name = lr_schedule.lower()
            schedule = None if name == "none" else _FixedSchedule(name, epochs)
        self.space = space
        self.epochs = epochs
        self.seed = seed
        self.latency = _latency_options(latency)
        splits = _prepare_data(data, val_fraction=val_fraction, seed=seed)
        # The Trainer validates the remaining options (epochs, lr, optimizer, device...).
        self.trainer = Trainer(
            splits.train,
            splits.val,
            test_data=splits.test,
            epochs=epochs,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            lr_schedule=schedule,
            label_smoothing=label_smoothing,
            grad_clip=grad_clip,
            device=device,
            seed=seed,
            progress=False,
        )
        self.input_shape = splits.input_shape
        self.num_classes = splits.num_classes
        self._add_channel = len(self.input_shape) == 1 and isinstance(space, CNNSpace)
        self._measured: dict[str, dict[str, float]] = {}  # by arch key
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self._warm_up()
        #: What the trials' results depend on besides the arch: a resumed search and a
        #: reused ``checkpoint_dir`` must have the same.
        self.settings: dict[str, Any] = {
            "space": space.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train_size": _size(splits.train),
            "val_size": _size(splits.val),
            "data_sha256": _fingerprint(splits.train, splits.val),
            "schedule_epochs": epochs if schedule is not None else None,
            "batch_size": batch_size,
            "optimizer": _describe(optimizer),
            "lr": float(lr),
            "weight_decay": float(weight_decay),
            "momentum": float(momentum),
            "lr_schedule": _describe(lr_schedule),
            "label_smoothing": float(label_smoothing),
            "grad_clip": grad_clip,
            "seed": seed,
        }
        if self.checkpoint_dir is not None:
            self._check_settings(self.settings)

    # ------------------------------------------------------------------ public API
    @staticmethod
    def metric_names(*, latency: bool = True) -> tuple[str, ...]:
        """The metrics :meth:`evaluate` returns (``latency_ms`` only with ``latency``)."""
        names = ["val_acc", "val_loss", "val_f1", "train_loss", "train_acc", "params", "macs"]
        if latency:
            names.append("latency_ms")
        return (*names, "epochs", "train_seconds")

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics :meth:`evaluate` returns; a search checks its objectives against them."""
        return self.metric_names(latency=self.latency is not None)

    @property
    def has_test(self) -> bool:
        """Whether the data has a test split, so that :meth:`test` can score an arch."""
        return self.trainer.test_data is not None

    @property
    def continues_trials(self) -> bool:
        """Whether a larger budget continues a trial (with ``checkpoint_dir``) rather than
        training it again from scratch."""
        return self.checkpoint_dir is not None

    def identity(self) -> dict[str, Any]:
        """What the metrics depend on besides the arch (recorded in a search's journal)."""
        return {"evaluator": "train", "epochs": self.epochs, **self.settings}

    def evaluate(
        self, arch: Arch | Mapping[str, Any], budget: float | None = None
    ) -> dict[str, float]:
        """Train ``arch`` for ``budget`` epochs (default ``epochs``) and return its metrics.

        With ``checkpoint_dir``, training continues from the trial's checkpoint; a budget
        it already reached is answered from the recorded history without training.
        """
        arch = self.space.arch(arch)
        epochs = self._budget(budget)
        _, history, seconds = self._train(arch, epochs)
        record = history[epochs - 1]
        metrics = {
            "val_acc": record["val_accuracy"],
            "val_loss": record["val_loss"],
            "val_f1": record["val_macro_f1"],
            "train_loss": record["train_loss"],
            "train_acc": record.get("train_accuracy", math.nan),
            **self.measure(arch),
            "epochs": record["epoch"],
            "train_seconds": seconds,
        }
        return {k: float(v) for k, v in metrics.items()}

    def measure(self, arch: Arch | Mapping[str, Any]) -> dict[str, float]:
        """``params``, ``macs`` (per sample) and ``latency_ms`` of ``arch``, without training.

        Measured once per arch in this process: a search's constraint check and the
        evaluation that follows it share the measurement.
        """
        arch = self.space.arch(arch)
        if arch.key in self._measured:
            return dict(self._measured[arch.key])
        model = self._build(arch)
        metrics = {
            "params": float(count_params(model)),
            "macs": float(count_macs(model, self.input_shape)),
        }
        if self.latency is not None:
            metrics["latency_ms"] = measure_latency(
                model, self.input_shape, **dataclasses.asdict(self.latency)
            )
        self._measured[arch.key] = metrics
        return dict(metrics)

    def test(self, arch: Arch | Mapping[str, Any]) -> dict[str, float]:
        """``test_acc``, ``test_loss`` and ``test_f1`` of ``arch`` trained for ``epochs``.

        Meant for the architectures a search ends with; uses the checkpoint when there is
        one (training first otherwise).
        """
        if self.trainer.test_data is None:
            raise ConfigError(
                "the data has no test split. HINT: pass data as (train, val, test) or a "
                "DataBundle with a test split",
                field="data",
            )
        model = self.load_model(arch)
        result = self.trainer.evaluate(model, self.trainer.test_data)
        return {
            "test_acc": result["accuracy"],
            "test_loss": result["loss"],
            "test_f1": result["macro_f1"],
        }

    def load_model(self, arch: Arch | Mapping[str, Any]) -> nn.Module:
        """The model of ``arch`` trained for ``epochs``, on the CPU in eval mode.

        Loaded from the checkpoint when there is one; trained (and checkpointed) otherwise.
        """
        arch = self.space.arch(arch)
        model, _, _ = self._train(arch, self.epochs)
        if model is None:
            model = self._build(arch)
            model.load_state_dict(self._load(arch)["model"])
        return model.cpu().eval()

    def checkpoint_path(self, arch: Arch | Mapping[str, Any]) -> Path | None:
        """Where the checkpoint of ``arch`` lives (None without ``checkpoint_dir``).

        The name is a hash of :attr:`Arch.key`, safe for any file system.
        """
        if self.checkpoint_dir is None:
            return None
        key = self.space.arch(arch).key
        return self.checkpoint_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt"

    # ------------------------------------------------------------------ internals
    def _warm_up(self) -> None:
        """One optimizer step on a throw-away parameter, here in the search's process.

        The first ``optimizer.step()`` of a process imports more of PyTorch (about a second
        for ``torch._dynamo``); a worker forked by the process executor inherits what this
        process has imported, so without this every trial would pay it again. The weight is
        float64 so that no valid learning rate, however large, overflows the step.
        """
        weight = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        optimizer = self.trainer._make_optimizer(nn.ParameterList([weight]))
        weight.sum().backward()
        optimizer.step()

    def _build(self, arch: Arch) -> nn.Module:
        seed_everything(self.seed)  # same seed, same arch -> same initial weights
        if not self._add_channel:
            return self.space.build(
                arch, input_shape=self.input_shape, num_classes=self.num_classes
            )
        shape = (1, *self.input_shape)
        net = self.space.build(arch, input_shape=shape, num_classes=self.num_classes)
        return nn.Sequential(nn.Unflatten(1, shape), net)

    def _train(
        self, arch: Arch, epochs: int
    ) -> tuple[nn.Module | None, list[dict[str, float]], float]:
        """Train ``arch`` up to ``epochs``, continuing its checkpoint if it has one.

        Returns the trained model (None when the checkpoint already had ``epochs``), the
        per-epoch history and the seconds spent training in this call.
        """
        path = self.checkpoint_path(arch)
        done: list[dict[str, float]] = []
        if path is not None and path.exists():
            done = list(self._load(arch)["history"])
            if len(done) >= epochs:
                return None, done, 0.0
        model = self._build(arch)
        train = self.trainer.train_data
        if isinstance(train, TensorLoader):  # a user's loader (e.g. augmented): rewind it
            train.set_epoch(len(done))
        callbacks = [] if path is None else [ModelCheckpoint(path, save="last")]
        started = time.perf_counter()
        history = self.trainer.fit(
            model, epochs=epochs, callbacks=callbacks, resume_from=path if done else None
        )
        return model, list(history), time.perf_counter() - started

    def _load(self, arch: Arch) -> dict[str, Any]:
        path = self.checkpoint_path(arch)
        assert path is not None
        checkpoint = load_checkpoint(path)  # CheckpointError when unreadable
        history = checkpoint.get("history")
        if not isinstance(history, list) or len(history) != checkpoint.get("epoch"):
            raise CheckpointError(
                f"checkpoint {str(path)!r} of {arch.key!r} has no per-epoch history. "
                "HINT: delete it to train this architecture again"
            )
        return checkpoint

    def _budget(self, budget: Any) -> int:
        if budget is None:
            return self.epochs
        whole = (
            not isinstance(budget, bool)
            and isinstance(budget, int | float | np.integer | np.floating)
            and float(budget).is_integer()
        )
        if not whole or not 1 <= budget <= self.epochs:
            raise ConfigError.invalid(
                "budget",
                budget,
                f"a whole number of epochs in [1, {self.epochs}]",
                hint="epochs is the largest budget; raise TrainEvaluator(epochs=...) for more",
            )
        return int(budget)

    def _check_settings(self, settings: dict[str, Any]) -> None:
        """Refuse a checkpoint_dir written with other training settings (it would mix them)."""
        assert self.checkpoint_dir is not None
        if self.checkpoint_dir.exists() and not self.checkpoint_dir.is_dir():
            raise ConfigError.invalid("checkpoint_dir", str(self.checkpoint_dir), "a directory")
        path = self.checkpoint_dir / _SETTINGS_FILE
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CheckpointError(
                    f"{str(path)!r} cannot be read ({exc}). HINT: delete the directory "
                    "to start over"
                ) from exc
            changed = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
            if changed:
                diff = ", ".join(
                    f"{k}: {old!r} there, {new!r} here" for k, (old, new) in changed.items()
                )
                raise ConfigError(
                    f"checkpoint_dir {str(self.checkpoint_dir)!r} holds trials trained with "
                    f"other settings ({diff}). HINT: use a new checkpoint_dir for new "
                    "settings, or the same settings to continue those trials",
                    field="checkpoint_dir",
                )
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(settings, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def __repr__(self) -> str:
        return (
            f"TrainEvaluator(space={self.space.name!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, epochs={self.epochs}, seed={self.seed}, "
            f"checkpoint_dir={str(self.checkpoint_dir) if self.checkpoint_dir else None!r})"
        )


# ---------------------------------------------------------------------- options
def _latency_options(latency: Any) -> LatencyOptions | None:
    if latency is None or latency is False:
        return None
    if latency is True:
        return LatencyOptions()
    if isinstance(latency, LatencyOptions):
        return latency
    if isinstance(latency, Mapping):
        fields = [f.name for f in dataclasses.fields(LatencyOptions)]
        unknown = sorted(set(latency) - set(fields))
        if unknown:
            raise ConfigError.invalid("latency", unknown[0], f"one of the options {fields}")
        return LatencyOptions(**latency)
    raise ConfigError.invalid(
        "latency", latency, "True, False, a LatencyOptions or a mapping of its fields"
    )


def _describe(value: Any) -> Any:
    """A JSON-able description of an option that may be a callable."""
    if value is None or isinstance(value, str | int | float):
        return value
    name = getattr(value, "__qualname__", type(value).__qualname__)
    return f"{getattr(value, '__module__', '?')}.{name}"


# ------------------------------------------------------------------------- data
def _prepare_data(data: Any, *, val_fraction: float, seed: int) -> _Splits:
    """Normalise every accepted form of ``data`` to train/val/test splits, shape and classes."""
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, DataBundle):
        train, val = data.train, data.val
        if val is None:
            train, val = _split(train, _labels(train, "data.train"), val_fraction, seed)
        return _Splits(train, val, data.test, tuple(data.input_shape), data.num_classes)
    if _is_pair(data) or isinstance(data, Dataset):
        parts = {"data": _as_split(data, "data")}  # split into train/val below
    elif isinstance(data, DataLoader | TensorLoader):
        raise ConfigError.invalid(
            "data",
            type(data).__name__,
            "data that can be split into train and validation",
            hint="pass (train_loader, val_loader), or the loader's dataset",
        )
    elif (
        isinstance(data, tuple | list)
        and len(data) in (2, 3)
        and all(d is not None for d in data[:2])
    ):
        parts = {  # (train, val) or (train, val, test); test may be None
            f"data[{i}]": _as_split(d, f"data[{i}]") for i, d in enumerate(data) if d is not None
        }
    else:
        raise ConfigError.invalid(
            "data",
            type(data).__name__,
            "a dataset name, a DataBundle, (X, y), a Dataset, or a tuple (train, val[, test]) "
            "of those or of DataLoaders",
        )
    shapes = {name: _sample_shape(split, name) for name, split in parts.items()}
    input_shape = next(iter(shapes.values()))
    for name, shape in shapes.items():
        if shape != input_shape:
            raise ConfigError.invalid(
                f"{name} sample shape", shape, f"the training data's {input_shape}"
            )
    labels = {name: _labels(split, name) for name, split in parts.items()}
    num_classes = max(int(y.max()) for y in labels.values()) + 1
    if "data" in parts:
        train, val = _split(parts["data"], labels["data"], val_fraction, seed)
        return _Splits(train, val, None, input_shape, num_classes)
    train, val, *rest = parts.values()
    return _Splits(train, val, rest[0] if rest else None, input_shape, num_classes)


def _is_pair(data: Any) -> bool:
    return (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(v, torch.Tensor | np.ndarray) for v in data)
    )


def _as_split(data: Any, name: str) -> Any:
    """One split: an ``(X, y)`` pair or TensorDataset becomes a float32/int64 TensorDataset;
    other Datasets and loaders are kept as they are."""
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        data = data.tensors
    elif isinstance(data, Dataset | DataLoader | TensorLoader):
        if _size(data) == 0:
            raise ConfigError.invalid(name, "an empty dataset", "at least one sample")
        return data
    if not _is_pair(data):
        raise ConfigError.invalid(
            name,
            type(data).__name__,
            "(X, y) tensors or numpy arrays, a Dataset or a DataLoader",
        )
    x, y = (torch.as_tensor(v) for v in data)
    if len(x) != len(y):
        raise ConfigError(f"{name}: X and y differ in length ({len(x)} vs {len(y)})", field=name)
    if len(x) == 0:
        raise ConfigError.invalid(name, "empty arrays", "at least one sample")
    if x.dim() < 2:
        raise ConfigError.invalid(
            f"{name} X shape", tuple(x.shape), "(N, ...) with at least one feature per sample"
        )
    _check_labels(y, name)
    return TensorDataset(x.float(), y.long())


def _check_labels(y: torch.Tensor, name: str) -> None:
    if y.dim() != 1 or y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ConfigError.invalid(
            f"{name} labels",
            f"{y.dtype} of shape {tuple(y.shape)}",
            "a 1-D array of integer class labels 0..K-1",
            hint="convert with y.astype(int) or y.long(); one-hot labels need y.argmax(1)",
        )
    if len(y) and int(y.min()) < 0:
        raise ConfigError.invalid(f"{name} labels", int(y.min()), "class labels >= 0")


def _labels(split: Any, name: str) -> torch.Tensor:
    """Every label of ``split`` as a 1-D tensor (read without loading inputs when possible)."""
    if isinstance(split, TensorDataset | TensorLoader):
        y = split.tensors[1]
    elif isinstance(split, DataLoader):
        if not isinstance(split.dataset, IterableDataset):
            return _labels(split.dataset, name)
        y = torch.cat([torch.as_tensor(batch[1]) for batch in split])
    elif isinstance(split, Subset):
        y = _labels(split.dataset, name)[torch.as_tensor(split.indices, dtype=torch.long)]
    elif hasattr(split, "targets") and len(split.targets) == len(split):
        y = torch.as_tensor(split.targets)
    else:
        y = torch.stack([torch.as_tensor(split[i][1]) for i in range(len(split))])
    y = torch.as_tensor(y)
    _check_labels(y, name)
    if not len(y):
        raise ConfigError.invalid(name, "no samples", "at least one sample")
    return y


def _sample_shape(split: Any, name: str) -> tuple[int, ...]:
    if isinstance(split, TensorDataset | TensorLoader):
        return tuple(split.tensors[0].shape[1:])
    if isinstance(split, DataLoader):
        return tuple(torch.as_tensor(next(iter(split))[0]).shape[1:])
    sample = split[0]
    if not isinstance(sample, tuple | list) or len(sample) < 2:
        raise ConfigError.invalid(f"{name}[0]", type(sample).__name__, "an (input, label) pair")
    return tuple(torch.as_tensor(sample[0]).shape)


def _split(data: Any, labels: torch.Tensor, fraction: float, seed: int) -> tuple[Any, Any]:
    """Hold out a stratified ``fraction`` of ``data`` (with these ``labels``) for validation."""
    train_idx, val_idx = stratified_split(labels.numpy(), (fraction,), seed)
    if not len(train_idx) or not len(val_idx):
        raise ConfigError.invalid(
            "val_fraction",
            fraction,
            f"a fraction that leaves both training and validation samples of {len(labels)}",
            hint="pass a validation split explicitly as (train, val)",
        )
    if isinstance(data, TensorDataset):
        return (
            TensorDataset(*(t[train_idx] for t in data.tensors)),
            TensorDataset(*(t[val_idx] for t in data.tensors)),
        )
    return Subset(data, train_idx.tolist()), Subset(data, val_idx.tolist())


def _fingerprint(*splits: Any) -> str | None:
    """A SHA-256 of in-memory splits' tensors (None when a split is not in memory)."""
    digest = hashlib.sha256()
    for split in splits:
        if not isinstance(split, TensorDataset | TensorLoader):
            return None
        for tensor in split.tensors:
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().data)  # no copy
    return digest.hexdigest()


def _size(split: Any) -> int | None:
    dataset: Any = split.dataset if isinstance(split, DataLoader | TensorLoader) else split
    try:
        return len(dataset)
    except TypeError:
        return None
