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

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge._seed import seed_everything
from nasforge.data.loaders import TensorLoader
from nasforge.data.splits import fingerprint, prepare_splits, split_size
from nasforge.errors import CheckpointError, ConfigError
from nasforge.measure import LatencyOptions, count_macs, count_params
from nasforge.nas.evaluator import Evaluator
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.train.callbacks import Callback, ModelCheckpoint, load_checkpoint
from nasforge.train.config import TrainConfig
from nasforge.train.engine import Engine
from nasforge.train.optim import make_optimizer
from nasforge.validation import check_number, check_options, is_number

__all__ = ["TrainEvaluator", "retrain"]

_SETTINGS_FILE = "evaluator.json"


@register("evaluator", "train")
class TrainEvaluator(Evaluator):
    """Train each architecture of ``space`` on ``data`` and measure it.

    ``data`` is a dataset name (``"digits"``, ``"mnist1d"``...), a :class:`DataBundle`, a
    tuple ``(train, val)`` or ``(train, val, test)`` whose parts are ``(X, y)`` pairs of
    tensors or arrays, Datasets or DataLoaders, or one ``(X, y)`` pair or Dataset, which is
    split into train and validation (stratified, ``val_fraction``, the training seed). The
    sample shape and the class count (largest label + 1) are inferred.

    Training follows ``config`` (a :class:`~nasforge.train.TrainConfig`) or its fields as
    keyword arguments (``epochs=5, lr=3e-3``...); ``epochs`` is the largest budget. A named
    learning-rate schedule lasts ``epochs`` whatever the budget, so a trial continued to a
    larger budget follows the curve it would have followed from the start (``onecycle``,
    which steps every batch, is refused for that reason). ``latency`` says how latency is
    timed (:class:`~nasforge.measure.LatencyOptions`, a mapping of its fields, or False).
    ``build_options`` go to ``space.build`` besides the input shape and class count (e.g.
    ``{"channels": 16, "cells_per_stage": 1}`` for ``nb201``).

    :meth:`evaluate` returns ``val_acc`` (a fraction in [0, 1], like
    :meth:`Trainer.evaluate`), ``val_loss``, ``val_f1`` (macro), ``train_loss``,
    ``train_acc``, ``params``, ``macs`` (per sample), ``latency_ms`` (unless
    ``latency=False``), ``epochs`` and ``train_seconds``. The same seed and architecture
    give the same metrics. With ``checkpoint_dir``, every trial's training state is kept,
    and a larger budget later continues it instead of starting over.

    Example::

        evaluator = TrainEvaluator(nf.build("space", "mlp"), "digits", epochs=3)
        evaluator.evaluate(arch)["val_acc"]
    """

    timing_metrics = ("latency_ms", "train_seconds")

    def __init__(
        self,
        space: Space,
        data: Any,
        *,
        config: TrainConfig | None = None,
        latency: LatencyOptions | Mapping[str, Any] | bool | None = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        val_fraction: float = 0.2,
        build_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError.invalid(
                "space", type(space).__name__, "a Space", hint='e.g. nf.build("space", "cnn")'
            )
        check_number(val_fraction, "val_fraction", low=0, high=1, low_open=True, high_open=True)
        if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | os.PathLike):
            raise ConfigError.invalid("checkpoint_dir", checkpoint_dir, "a directory path or None")
        training = self._training_config(config, options)
        self.build_options = check_options(
            build_options, "build_options", ("input_shape", "num_classes")
        )
        self.space = space
        self.config = training
        self.latency = LatencyOptions.parse(latency)
        splits = prepare_splits(data, val_fraction=val_fraction, seed=training.seed)
        self.engine = Engine(splits.train, splits.val, test_data=splits.test, config=training)
        self.input_shape = splits.input_shape
        self.num_classes = splits.num_classes
        #: The label of each class (``DataBundle.classes``), None when the data has none.
        self.classes: tuple[str, ...] | None = getattr(data, "classes", None)
        self._measured: dict[str, dict[str, float]] = {}  # by arch key
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self._warm_up()
        #: What the trials' results depend on besides the arch: a resumed search and a
        #: reused ``checkpoint_dir`` must have the same.
        self.settings: dict[str, Any] = {
            "space": space.to_dict(),  # all of it: two spaces may share a name
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            **({"build_options": self.build_options} if self.build_options else {}),
            "train_size": split_size(splits.train),
            "val_size": split_size(splits.val),
            "data_sha256": fingerprint(splits.train, splits.val),
            **{k: v for k, v in training.describe().items() if k not in _NOT_SETTINGS},
        }
        if self.checkpoint_dir is not None:
            self._check_settings(self.settings)

    @staticmethod
    def _training_config(config: TrainConfig | None, options: Mapping[str, Any]) -> TrainConfig:
        """The config trials train with: ``config`` with ``options`` applied, no progress
        bars (trials may run in parallel workers), and a named schedule that lasts the
        largest budget."""
        if config is not None and not isinstance(config, TrainConfig):
            raise ConfigError.invalid("config", config, "a TrainConfig or None")
        base = config if config is not None else TrainConfig()
        training = base.replace(**{**options, "progress": False})
        if training.lr_schedule == "onecycle":
            raise ConfigError.invalid(
                "lr_schedule",
                "onecycle",
                "'cosine', 'step', None or a callable optimizer -> scheduler",
                hint="'onecycle' steps every batch, so a trial could not be continued "
                "at a larger budget; use 'cosine'",
            )
        if isinstance(training.lr_schedule, str):
            training = training.replace(schedule_epochs=training.epochs)
        return training

    @property
    def epochs(self) -> int:
        """The largest budget: the epochs a trial trains for at most."""
        return self.config.epochs

    @property
    def seed(self) -> int:
        """The training seed: the same seed and arch give the same metrics."""
        return self.config.seed

    @property
    def trainer(self) -> Engine:
        """The training engine every trial trains with (an alias of :attr:`engine`)."""
        return self.engine

    # ------------------------------------------------------------------ public API
    @staticmethod
    def metric_names(*, latency: bool = True) -> tuple[str, ...]:
        """The metrics :meth:`evaluate` returns (``latency_ms`` only with ``latency``)."""
        names = ["val_acc", "val_loss", "val_f1", "train_loss", "train_acc", "params", "macs"]
        if latency:
            names.append("latency_ms")
        return (*names, "epochs", "train_seconds")

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        """The metrics :meth:`evaluate` returns; a search checks its objectives against them."""
        return self.metric_names(latency=self.latency is not None)

    @property
    def has_test(self) -> bool:  # type: ignore[override]
        """Whether the data has a test split, so that :meth:`test` can score an arch."""
        return self.engine.test_data is not None

    @property
    def continues_trials(self) -> bool:  # type: ignore[override]
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
        return self._metrics(arch, history[epochs - 1], seconds)

    def train_model(
        self, arch: Arch | Mapping[str, Any], budget: float | None = None
    ) -> tuple[nn.Module, dict[str, float]]:
        """``arch`` trained as :meth:`evaluate` trains it: the model (on the CPU, in eval
        mode) and the metrics :meth:`evaluate` returns. A checkpoint already trained
        further than ``budget`` gives its later weights."""
        arch = self.space.arch(arch)
        epochs = self._budget(budget)
        model, history, seconds = self._train(arch, epochs)
        if model is None:
            model = self._build(arch)
            model.load_state_dict(self._load(arch)["model"])
        return model.cpu().eval(), self._metrics(arch, history[epochs - 1], seconds)

    def _metrics(self, arch: Arch, record: dict[str, float], seconds: float) -> dict[str, float]:
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
            metrics["latency_ms"] = self.latency.measure(model, self.input_shape)
        self._measured[arch.key] = metrics
        return dict(metrics)

    def test(self, arch: Arch | Mapping[str, Any]) -> dict[str, float]:
        """``test_acc``, ``test_loss`` and ``test_f1`` of ``arch`` trained for ``epochs``.

        Meant for the architectures a search ends with; uses the checkpoint when there is
        one (training first otherwise).
        """
        if self.engine.test_data is None:
            raise ConfigError(
                "the data has no test split. HINT: pass data as (train, val, test) or a "
                "DataBundle with a test split",
                field="data",
            )
        model = self.load_model(arch)
        result = self.engine.evaluate(model, self.engine.test_data)
        return {
            "test_acc": result["accuracy"],
            "test_loss": result["loss"],
            "test_f1": result["macro_f1"],
        }

    def load_model(self, arch: Arch | Mapping[str, Any]) -> nn.Module:
        """The model of ``arch`` trained for ``epochs``, on the CPU in eval mode.

        Loaded from the checkpoint when there is one; trained (and checkpointed) otherwise.
        """
        return self.train_model(arch)[0]

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
        config = self.config
        optimizer = make_optimizer(
            nn.ParameterList([weight]),
            config.optimizer,
            lr=config.lr,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
        )
        weight.sum().backward()
        optimizer.step()

    def _build(self, arch: Arch) -> nn.Module:
        seed_everything(self.seed)  # same seed, same arch -> same initial weights
        return self.space.build(
            arch, input_shape=self.input_shape, num_classes=self.num_classes, **self.build_options
        )

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
        train = self.engine.train_data
        if isinstance(train, TensorLoader):  # a user's loader (e.g. augmented): rewind it
            train.set_epoch(len(done))
        engine, callbacks = self._fit_setup(arch, model)
        if path is not None:
            callbacks.append(ModelCheckpoint(path, save="last"))
        started = time.perf_counter()
        history = engine.fit(
            model, epochs=epochs, callbacks=callbacks, resume_from=path if done else None
        )
        return model, list(history), time.perf_counter() - started

    def _fit_setup(self, arch: Arch, model: nn.Module) -> tuple[Engine, list[Callback]]:
        """The engine that trains ``arch``'s ``model`` and the callbacks it needs (a
        subclass may give each arch its own optimizer, as the transfer evaluator does)."""
        return self.engine, []

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
        whole = is_number(budget) and float(budget).is_integer()
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


def retrain(
    space: Space,
    arch: Arch | Mapping[str, Any] | str,
    data: Any,
    *,
    build_options: Mapping[str, Any] | None = None,
    val_fraction: float = 0.2,
    **options: Any,
) -> tuple[nn.Module, dict[str, float]]:
    """Build ``arch`` as a stand-alone network, train it from scratch and measure it.

    The way to the final model of a weight-sharing or proxy search, whose scores come
    from no trained network of the arch. ``data``, ``build_options`` and the training
    ``options`` (``epochs=20, lr=3e-3``..., or ``config=``) are those of
    :class:`TrainEvaluator`. Returns the trained model (CPU, eval mode) and its
    ``val_acc``/``val_loss``/``val_f1`` with ``test_*`` when the data has a test split,
    ``params`` and ``train_seconds``::

        model, metrics = nf.retrain(space, result.best.arch, "mnist1d", epochs=20)
    """
    evaluator = TrainEvaluator(
        space,
        data,
        build_options=build_options,
        val_fraction=val_fraction,
        latency=False,
        **options,
    )
    arch = space.from_key(arch) if isinstance(arch, str) else space.arch(arch)
    started = time.perf_counter()
    model = evaluator.load_model(arch)
    seconds = time.perf_counter() - started
    engine = evaluator.engine
    metrics = {}
    splits = [("val", engine.val_data)] + (
        [("test", engine.test_data)] if evaluator.has_test else []
    )
    for split, part in splits:
        scores = engine.evaluate(model, part)
        metrics.update(
            {
                f"{split}_acc": scores["accuracy"],
                f"{split}_loss": scores["loss"],
                f"{split}_f1": scores["macro_f1"],
            }
        )
    metrics["params"] = float(count_params(model))
    metrics["train_seconds"] = seconds
    return model.cpu().eval(), metrics


#: Options that do not change what a trial learns: not part of the settings a reused
#: checkpoint directory must share.
_NOT_SETTINGS = ("epochs", "eval_batch_size", "device", "progress", "num_workers")
