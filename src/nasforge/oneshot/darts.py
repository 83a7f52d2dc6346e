"""DARTS: the choice of op relaxed to a softmax and learned by gradient (Liu et al. 2019).

Every mixed op of the space's supernet returns the softmax-weighted sum of its candidates.
Training alternates an architecture step (the softmax logits ``alpha``, on a validation
batch) with a weight step (the network, on a training batch, through the Trainer); the
discrete arch takes the strongest candidate of each choice. ``order=2`` uses the unrolled,
second-order architecture gradient with the paper's finite-difference Hessian product.

Plain DARTS drifts towards parameter-free ops (skip connections, pooling, ``none``): their
outputs are easy to combine early in training, so their weights grow first, and on
NAS-Bench-201 it ends with 54.30% on CIFAR-10 against an optimum of 94.37% (Dong & Yang
2020). ``guard`` counters it:

- ``"beta"`` (default): β-DARTS's beta-decay regularisation (Ye et al. 2022), the mean
  over choices of ``logsumexp(alpha)`` added to the architecture loss with a weight that
  rises linearly to ``guard_strength``. Its gradient is the softmax itself, so it holds
  back whichever candidate is taking over before its lead is locked in.
- ``"aux_skip"``: DARTS-'s auxiliary skip (Chu et al. 2021), ``guard_strength * x``
  added to every mixed op's output and decayed linearly to zero, so that a skip
  connection gains nothing from being chosen early. Needs ops whose input and output
  shapes match (every NAS-Bench-201 edge). On MNIST-1D it turns the choice towards
  pooling instead (``benchmarks/oneshot.py``).
- ``None``: plain DARTS.

docs/oneshot.md shows the guard's effect (``benchmarks/oneshot.py`` measures it)::

    result = Darts(nf.build("space", "nb201"), "mnist1d", epochs=20,
                   build_options={"channels": 16, "cells_per_stage": 1}).run()
    result.arch.key, result.weights["edge_1_0"]
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nasforge._seed import seed_everything
from nasforge.data.loaders import as_loader
from nasforge.data.splits import prepare_splits
from nasforge.errors import ConfigError
from nasforge.space.base import Arch, Space
from nasforge.space.supernet import Supernet
from nasforge.train.callbacks import Callback, TrainState
from nasforge.train.config import TrainConfig
from nasforge.train.engine import Engine
from nasforge.validation import check_choice, check_int, check_number, check_options

__all__ = ["GUARDS", "Darts", "DartsResult"]

#: The collapse guards :class:`Darts` offers (None: plain DARTS).
GUARDS = ("beta", "aux_skip")
_DEFAULT_STRENGTH = {"beta": 1.0, "aux_skip": 1.0}


@dataclass
class DartsResult:
    """What a DARTS run found: the derived ``arch``, the softmax ``weights`` of every choice
    (``{parameter: {value text: weight}}``), the per-epoch ``history`` (training loss and
    the arch derived after each epoch) and the trained ``supernet``."""

    arch: Arch
    weights: dict[str, dict[str, float]]
    history: list[dict[str, Any]]
    seconds: float
    supernet: Supernet = field(repr=False)


class Darts:
    """DARTS over the supernet of ``space`` (:meth:`Space.supernet`) on ``data``.

    ``data`` takes the forms :class:`~nasforge.TrainEvaluator` takes: the network weights
    learn on its training split and the architecture on its validation split (split off
    the training data with ``val_fraction`` when there is none). Training follows ``config``
    or the keyword options (:class:`~nasforge.train.TrainConfig`); ``arch_lr`` and
    ``arch_weight_decay`` drive the architecture's Adam, as in the paper. ``exclude``
    lists values never derived (``none``, as in DARTS). ``guard`` and ``guard_strength``
    are described in the module docstring.
    """

    def __init__(
        self,
        space: Space,
        data: Any,
        *,
        order: int = 1,
        guard: str | None = "beta",
        guard_strength: float | None = None,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        exclude: Sequence[Any] = ("none",),
        build_options: Mapping[str, Any] | None = None,
        config: TrainConfig | None = None,
        val_fraction: float = 0.5,
        **options: Any,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError.invalid("space", type(space).__name__, "a Space with a supernet")
        self.order = check_int(order, "order", low=1, high=2)
        self.guard = None if guard is None else check_choice(guard, "guard", GUARDS)
        strength = _DEFAULT_STRENGTH.get(self.guard or "", 0.0)
        if guard_strength is not None:
            strength = check_number(guard_strength, "guard_strength", low=0)
        self.guard_strength = strength
        self.arch_lr = check_number(arch_lr, "arch_lr", low=0, low_open=True)
        self.arch_weight_decay = check_number(arch_weight_decay, "arch_weight_decay", low=0)
        if isinstance(exclude, str) or not isinstance(exclude, Sequence):
            raise ConfigError.invalid("exclude", exclude, "a list of values never derived")
        self.exclude = list(exclude)
        if config is not None and not isinstance(config, TrainConfig):
            raise ConfigError.invalid("config", config, "a TrainConfig or None")
        self.config = (config or TrainConfig()).replace(**options)
        self.space = space
        self.splits = prepare_splits(data, val_fraction=val_fraction, seed=self.config.seed)
        self.build_options = check_options(
            build_options, "build_options", ("input_shape", "num_classes")
        )

    def run(self) -> DartsResult:
        """Search: train the supernet and the architecture together, derive the arch."""
        started = time.perf_counter()
        seed_everything(self.config.seed)
        supernet = Supernet.from_space(
            self.space,
            input_shape=self.splits.input_shape,
            num_classes=self.splits.num_classes,
            **self.build_options,
        )
        for name, values in supernet.choices.items():
            if all(v in self.exclude for v in values):
                raise ConfigError.invalid("exclude", self.exclude, f"leaving a value of {name!r}")
        alphas = {
            name: (1e-3 * torch.randn(len(values))).requires_grad_()
            for name, values in supernet.choices.items()
        }
        step = _ArchitectureStep(self, supernet, alphas)
        engine = Engine(self.splits.train, config=self.config)
        history = engine.fit(supernet, callbacks=[step])
        weights = step.weights()
        return DartsResult(
            arch=self.derive(supernet, weights),
            weights={
                name: {str(v): float(w) for v, w in zip(supernet.choices[name], ws, strict=True)}
                for name, ws in weights.items()
            },
            history=[{**h, "arch": key} for h, key in zip(history, step.archs, strict=True)],
            seconds=time.perf_counter() - started,
            supernet=supernet,
        )

    def derive(self, supernet: Supernet, weights: Mapping[str, torch.Tensor]) -> Arch:
        """The arch taking, for each choice, its strongest value not in ``exclude``."""
        values = {}
        for name, options in supernet.choices.items():
            allowed = [i for i, v in enumerate(options) if v not in self.exclude]
            values[name] = options[max(allowed, key=lambda i: float(weights[name][i]))]
        return self.space.arch(values)


class _ArchitectureStep(Callback):
    """Before each weight step: one architecture step on a validation batch, then the
    mixture weights the weight step trains with."""

    def __init__(self, darts: Darts, supernet: Supernet, alphas: dict[str, torch.Tensor]):
        self.darts = darts
        self.supernet = supernet
        self.alphas = alphas
        self.optimizer = torch.optim.Adam(
            alphas.values(),
            lr=darts.arch_lr,
            betas=(0.5, 0.999),
            weight_decay=darts.arch_weight_decay,
        )
        self.progress = 0.0  # fraction of training done after this epoch (guard schedules)
        self._val: Iterator[Any] = iter(())
        self.archs: list[str] = []  # the arch derived after each epoch
        self.bypass = 0.0  # the auxiliary skip's current scale

    def softmax(self) -> dict[str, torch.Tensor]:
        return {name: torch.softmax(a, 0) for name, a in self.alphas.items()}

    def weights(self) -> dict[str, torch.Tensor]:
        """The softmax of every choice, detached from the graph."""
        return {name: torch.softmax(a.detach(), 0) for name, a in self.alphas.items()}

    def on_epoch_begin(self, trainer: Engine, state: TrainState) -> None:
        self.progress = (state.epoch + 1) / state.epochs
        config = self.darts.config
        loader = as_loader(
            self.darts.splits.val,
            batch_size=config.batch_size,
            shuffle=True,
            seed=config.seed + 7919 * (state.epoch + 1),
        )
        self._val = _cycle(loader)
        if self.darts.guard == "aux_skip":
            self.bypass = self.darts.guard_strength * (1 - state.epoch / state.epochs)
            self.supernet.set_bypass(self.bypass)

    def on_batch_begin(self, trainer: Engine, state: TrainState) -> None:
        device = trainer.device
        x_val, y_val = (t.to(device) for t in next(self._val))
        if self.darts.order == 1:
            grads = torch.autograd.grad(self._arch_loss(x_val, y_val), list(self.alphas.values()))
        else:
            grads = self._unrolled(state, x_val, y_val, lr=trainer.config.lr)
        self.optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.alphas.values(), grads, strict=True):
            alpha.grad = grad
        self.optimizer.step()
        self.supernet.set_weights(self.softmax())  # what the weight step trains with

    def on_epoch_end(self, trainer: Engine, state: TrainState) -> None:
        weights = self.weights()
        self.archs.append(self.darts.derive(self.supernet, weights).key)
        entropy = [-(w * w.clamp_min(1e-12).log()).sum().item() for w in weights.values()]
        state.metrics["arch_entropy"] = sum(entropy) / len(entropy)
        if self.darts.guard == "aux_skip":
            state.metrics["aux_skip"] = self.bypass

    def on_fit_end(self, trainer: Engine, state: TrainState) -> None:
        self.supernet.set_bypass(0.0)  # the auxiliary skip only guides the search

    def _arch_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.supernet.set_weights(self.softmax())
        loss = F.cross_entropy(self.supernet(x), y)
        if self.darts.guard == "beta":
            smoothmax = torch.stack([torch.logsumexp(a, 0) for a in self.alphas.values()])
            loss = loss + self.darts.guard_strength * self.progress * smoothmax.mean()
        return loss

    def _unrolled(
        self, state: TrainState, x_val: torch.Tensor, y_val: torch.Tensor, *, lr: float
    ) -> list[torch.Tensor]:
        """The second-order architecture gradient: the validation loss after one virtual
        weight step, with the Hessian-vector product by finite differences."""
        params = [p for p in self.supernet.parameters() if p.requires_grad]
        alphas = list(self.alphas.values())
        saved = [p.detach().clone() for p in params]
        x_train, y_train = state.inputs, state.targets

        def train_loss() -> torch.Tensor:
            self.supernet.set_weights(self.softmax())
            return F.cross_entropy(self.supernet(x_train), y_train)

        grads = torch.autograd.grad(train_loss(), params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    p.sub_(lr * g)
        found = torch.autograd.grad(
            self._arch_loss(x_val, y_val), alphas + params, allow_unused=True
        )
        d_alpha, d_w = found[: len(alphas)], found[len(alphas) :]
        norm = math.sqrt(sum(float(g.pow(2).sum()) for g in d_w if g is not None))
        eps = 0.01 / max(norm, 1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, w, g in zip(params, saved, d_w, strict=True):
                    p.copy_(w if g is None else w + sign * eps * g)
            hessian.append(torch.autograd.grad(train_loss(), alphas))
        with torch.no_grad():
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
        return [
            da - lr * (hp - hm) / (2 * eps)
            for da, hp, hm in zip(d_alpha, hessian[0], hessian[1], strict=True)
        ]


def _cycle(loader: Any) -> Iterator[Any]:
    while True:
        yield from loader
