"""Zero-cost proxies: score an architecture untrained, in a fraction of a second.

Each proxy builds the architecture with a fixed initialisation (the same seed and arch give
the same weights), runs one forward (and backward) pass and returns one number that ranks
architectures roughly as their trained accuracy would, higher being better:

- :class:`Synflow` (``synflow``, data-free): the synaptic flow of Tanaka et al. (NeurIPS
  2020) as a NAS proxy (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR
  2021): ``sum |θ ⊙ ∂R/∂θ|`` over conv and linear weights, where ``R`` is the sum of the
  outputs of the network with absolute weights and no normalisation layers, in double
  precision, on one all-ones input.
- :class:`NASWOT` (``naswot``): the log-determinant of the kernel of binary activation
  codes over one batch (Mellor et al., "Neural Architecture Search without Training", ICML
  2021).
- :class:`SNIP` (``snip``): ``sum |θ ⊙ ∂L/∂θ|`` on one labelled batch (Lee et al., ICLR
  2019; a NAS proxy in Abdelfattah et al.).

A proxy is an :class:`~nasforge.nas.Evaluator` (``evaluate(arch) -> {"synflow": ...,
"params": ...}``), so it can drive a search by itself, but its main use is a warm start:
rank a pool of archs and let the search begin with the best::

    proxy = nf.build("evaluator", "synflow", space=space, input_shape=(3, 32, 32))
    nf.search(space, bench, strategy="local", budget=25, warm_start=proxy.rank(pool=500)[:10])
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from nasforge._progress import progress_bar
from nasforge.data.loaders import TensorLoader
from nasforge.data.splits import prepare_splits
from nasforge.errors import ConfigError
from nasforge.measure import count_params
from nasforge.nas.evaluator import Evaluator
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.validation import check_int, is_int

__all__ = ["NASWOT", "SNIP", "Synflow", "ZeroCostProxy"]

#: Normalisation layers: synflow bypasses them (on a constant input they would output zeros).
_NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
)
#: Activations whose inputs give NASWOT's binary codes (the sign of the pre-activation).
_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Tanh,
)


class ZeroCostProxy(Evaluator):
    """Base class of the zero-cost proxies: score each arch of ``space`` untrained.

    ``input_shape`` is one sample's shape, e.g. ``(3, 32, 32)``; ``num_classes`` the output
    size (default 10). ``data`` is anything :class:`TrainEvaluator` accepts (a dataset
    name, a :class:`DataBundle`, an ``(X, y)`` pair, a Dataset, or ``(train, val[,
    test])``); the shape and class count are then inferred from it. The proxies that need
    data (``naswot``, ``snip``) keep one batch of ``batch_size`` training samples, drawn
    with ``seed``, and score every arch on it; ``synflow`` needs only the shape.
    ``build_options`` go to :meth:`Space.build` (default: the space's own, e.g. the full
    NB201 network; ``{"channels": 16, "cells_per_stage": 1}`` ranks NB201 cells as well
    for ``synflow`` and ``naswot`` and is about five times faster). Each arch is built with
    weights initialised from ``seed``, so the same seed and arch give the same score.

    :meth:`evaluate` returns the score under the proxy's name (higher is better; a network
    whose output does not depend on its input gets the lowest score, 0) and ``params`` of
    the scored network; ``budget`` is ignored. :meth:`rank` sorts a pool of archs by score,
    best first, for a warm start.
    """

    #: Registry and metric name of the proxy.
    name: ClassVar[str] = "proxy"
    #: Whether the proxy needs a batch of labelled data.
    needs_data: ClassVar[bool] = True
    #: The scored network is built for the proxy and thrown away: nothing to continue.
    continues_trials = False

    def __init__(
        self,
        space: Space,
        *,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        data: Any = None,
        batch_size: int = 32,
        seed: int = 0,
        build_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError.invalid(
                "space", type(space).__name__, "a Space", hint='e.g. nf.build("space", "nb201")'
            )
        self.space = space
        self.seed = check_int(seed, "seed", low=0)
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.build_options = _check_build_options(build_options)
        num_classes = check_int(num_classes, "num_classes", low=1, optional=True)
        shape = _check_shape(input_shape) if input_shape is not None else None
        self.inputs: torch.Tensor | None = None
        self.targets: torch.Tensor | None = None
        if data is not None:
            splits = prepare_splits(data, val_fraction=0.2, seed=self.seed)
            if shape is not None and shape != tuple(splits.input_shape):
                raise ConfigError.invalid(
                    "input_shape", shape, f"the data's sample shape {tuple(splits.input_shape)}"
                )
            if num_classes is not None and num_classes < splits.num_classes:
                raise ConfigError.invalid(
                    "num_classes", num_classes, f"at least the data's {splits.num_classes}"
                )
            shape = tuple(splits.input_shape)
            num_classes = num_classes or splits.num_classes
            if self.needs_data:  # (synflow takes only the shape and classes)
                self.inputs, self.targets = _one_batch(splits.train, self.batch_size, self.seed)
        elif self.needs_data:
            raise ConfigError(
                f"the {self.name} proxy scores a batch of data, but got data=None. HINT: "
                "pass data=(X, y) (or a dataset name, a DataBundle, a Dataset); without "
                "data, use the data-free 'synflow' proxy",
                field="data",
            )
        if shape is None:
            raise ConfigError.invalid(
                "input_shape",
                None,
                "one sample's shape, e.g. (3, 32, 32) (or data to infer it from)",
            )
        self.input_shape: tuple[int, ...] = shape
        self.num_classes: int = num_classes or 10
        self._scores: dict[str, dict[str, float]] = {}  # by arch key
        self._build(space.sample(self.seed))  # refuse bad build options now, not per trial

    # ------------------------------------------------------------------ public API
    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        """The metrics :meth:`evaluate` returns: the proxy's score and ``params``."""
        return (self.name, "params")

    def evaluate(
        self, arch: Arch | Mapping[str, Any], budget: float | None = None
    ) -> dict[str, float]:
        """The proxy score of ``arch`` (higher is better) and its ``params``; ``budget`` is
        ignored. Computed once per arch (then remembered)."""
        arch = self.space.arch(arch)
        found = self._scores.get(arch.key)
        if found is None:
            model = self._build(arch)
            params = float(count_params(model))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)  # dropout masks, if any, are the same each time
                score = float(self.score(model))
            if not math.isfinite(score):
                raise ArithmeticError(f"{self.name} score of {arch.key!r} is {score}")
            found = self._scores[arch.key] = {self.name: score, "params": params}
        return dict(found)

    def measure(self, arch: Arch | Mapping[str, Any]) -> dict[str, float]:
        """``params`` of the scored network of ``arch``, without scoring it."""
        arch = self.space.arch(arch)
        if arch.key in self._scores:
            return {"params": self._scores[arch.key]["params"]}
        return {"params": float(count_params(self._build(arch)))}

    def rank(
        self,
        archs: Sequence[Arch | Mapping[str, Any] | str] | None = None,
        *,
        pool: int = 100,
        seed: int = 0,
        progress: bool | None = None,
    ) -> list[Arch]:
        """``archs`` sorted by score, best first (ties keep their order).

        Without ``archs``, ranks ``pool`` distinct archs drawn from the space with ``seed``
        (distinct up to :meth:`Space.canonical`, so no two compute the same function; fewer
        when the space has fewer). ``progress``: a bar (None: when standard error is a
        terminal). Typically the start of a search::

            nf.search(space, bench, strategy="local", budget=25,
                      warm_start=proxy.rank(pool=500)[:10])
        """
        if archs is None:
            candidates = self.sample(check_int(pool, "pool", low=1), seed=seed)
        elif isinstance(archs, str | Mapping) or not isinstance(archs, Sequence):
            raise ConfigError.invalid("archs", archs, "a list of archs (or keys), or None")
        else:
            candidates = [self._as_arch(a) for a in archs]
        scores = []
        with progress_bar(progress, total=len(candidates), desc=self.name, unit="arch") as bar:
            for arch in candidates:
                scores.append(self.evaluate(arch)[self.name])
                bar.update()
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return [candidates[i] for i in order]

    def sample(self, n: int, *, seed: int = 0) -> list[Arch]:
        """``n`` archs drawn at random with ``seed``, no two equivalent
        (:meth:`Space.canonical`); fewer when the space has fewer distinct archs."""
        check_int(n, "n", low=0)
        rng = np.random.default_rng(check_int(seed, "seed", low=0))
        size = self.space.distinct_size
        want = n if size is None else min(n, size)
        out: list[Arch] = []
        seen: set[str] = set()
        misses = 0
        while len(out) < want and misses < 64 * max(want, 16):
            arch = self.space.sample(rng)
            key = self.space.canonical(arch).key
            if key in seen:
                misses += 1
                continue
            seen.add(key)
            out.append(arch)
        return out

    def identity(self) -> dict[str, Any]:
        """What the scores depend on besides the arch (recorded in a search's journal)."""
        identity: dict[str, Any] = {
            "evaluator": self.name,
            "space": self.space.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "seed": self.seed,
            "build_options": json.loads(json.dumps(self.build_options, default=repr)),
        }
        if self.inputs is not None and self.targets is not None:
            digest = hashlib.sha256()
            for tensor in (self.inputs, self.targets):
                digest.update(tensor.contiguous().numpy().tobytes())
            identity["batch_size"] = len(self.inputs)
            identity["data_sha256"] = digest.hexdigest()
        return identity

    # ------------------------------------------------------------------ subclasses
    def score(self, model: nn.Module) -> float:
        """The proxy's score of a freshly initialised ``model`` (higher is better)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    # ------------------------------------------------------------------ internals
    def _build(self, arch: Arch) -> nn.Module:
        with torch.random.fork_rng(devices=[]):  # the same weights for the same seed and arch
            torch.manual_seed(self.seed)
            return self.space.build(
                arch,
                input_shape=self.input_shape,
                num_classes=self.num_classes,
                **self.build_options,
            )

    def _as_arch(self, arch: Arch | Mapping[str, Any] | str) -> Arch:
        return self.space.from_key(arch) if isinstance(arch, str) else self.space.arch(arch)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(space={self.space.name!r}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes}, "
            f"seed={self.seed}, build_options={self.build_options!r})"
        )


@register("evaluator", "synflow")
class Synflow(ZeroCostProxy):
    """Synaptic flow (data-free): ``sum |θ ⊙ ∂R/∂θ|`` over the conv and linear weights.

    The network is linearised (every parameter replaced by its absolute value), its
    normalisation layers are bypassed (as in Abdelfattah et al.'s code, which skips
    BatchNorm: on a constant input they would output zeros), and ``R`` is the sum of its
    outputs for one all-ones input, in double precision. A network whose output does not
    depend on its weights (e.g. the all-``none`` NB201 cell) scores 0.

    Example::

        proxy = Synflow(nf.build("space", "nb201"), input_shape=(3, 32, 32))
        proxy.evaluate(arch)      # {'synflow': 1.0e+36, 'params': 802426.0}
    """

    name = "synflow"
    needs_data = False

    def score(self, model: nn.Module) -> float:
        _bypass_norms(model)
        model.double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *self.input_shape), dtype=torch.float64)
        model(ones).sum().backward()
        return _saliency(model)


@register("evaluator", "naswot")
class NASWOT(ZeroCostProxy):
    """NASWOT: ``log det K`` of the binary activation codes over one batch of inputs.

    Every activation module (ReLU and its relatives, GELU, SiLU, Tanh...) contributes the
    sign pattern ``c`` of its input for each sample; ``K[i, j]`` counts the units where
    samples ``i`` and ``j`` agree (``K = Σ c cᵀ + (1 - c)(1 - c)ᵀ``). Networks that tell
    inputs apart have a better-conditioned ``K`` and a larger log-determinant. The network
    runs in training mode (batch statistics), dropout off. ``K`` has integer entries, so a
    nonsingular ``K`` has ``log det K >= 0``; a singular one (e.g. a network whose
    activations do not depend on the input) scores 0, the lowest score.

    Example::

        proxy = NASWOT(space, data=nf.load_dataset("digits", size=32, channels=3))
        proxy.evaluate(arch)      # {'naswot': 380.4, 'params': 802426.0}
    """

    name = "naswot"

    def score(self, model: nn.Module) -> float:
        assert self.inputs is not None
        n = len(self.inputs)
        kernel = torch.zeros((n, n), dtype=torch.float64)

        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:  # before in-place ops
            codes = (args[0].detach().reshape(n, -1) > 0).to(torch.float64)
            kernel.add_(codes @ codes.T).add_((1 - codes) @ (1 - codes).T)

        activations = [m for m in model.modules() if _is_activation(m)]
        handles = [m.register_forward_pre_hook(hook) for m in activations]
        try:
            _train_without_dropout(model)
            with torch.no_grad():
                model(self.inputs)
        finally:
            for handle in handles:
                handle.remove()
        sign, logdet = torch.linalg.slogdet(kernel)
        if sign <= 0 or not torch.isfinite(logdet):
            return 0.0
        return max(float(logdet), 0.0)


@register("evaluator", "snip")
class SNIP(ZeroCostProxy):
    """SNIP: ``sum |θ ⊙ ∂L/∂θ|`` over the conv and linear weights, ``L`` the cross-entropy
    of one labelled batch (the connection sensitivity of Lee et al., summed).

    The network runs in training mode (batch statistics), dropout off. A network whose
    output does not depend on its weights scores 0.

    Example::

        proxy = SNIP(space, data=(X, y))       # X: (N, 3, 32, 32) images, y: labels
        proxy.evaluate(arch)      # {'snip': 28.6, 'params': 802426.0}
    """

    name = "snip"

    def score(self, model: nn.Module) -> float:
        assert self.inputs is not None and self.targets is not None
        _train_without_dropout(model)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(self.inputs), self.targets).backward()
        return _saliency(model)


# ---------------------------------------------------------------------- helpers
def _weights(model: nn.Module) -> list[nn.Parameter]:
    """The weights of the conv and linear layers: what the proxies sum over."""
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear) and isinstance(m.weight, nn.Parameter)
    ]


def _saliency(model: nn.Module) -> float:
    """``sum |w ⊙ ∂/∂w|`` over the conv and linear weights (after a backward pass)."""
    total = 0.0
    with torch.no_grad():
        for w in _weights(model):
            if w.grad is not None:
                total += float((w * w.grad).abs().double().sum())
    return total


def _bypass_norms(model: nn.Module) -> None:
    """Replace every normalisation layer by the identity (in place)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _NORMS):
                setattr(parent, name, nn.Identity())


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, _ACTIVATIONS)


def _train_without_dropout(model: nn.Module) -> None:
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd | nn.AlphaDropout):
            m.eval()


def _one_batch(split: Any, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` samples of ``split`` (fewer if it has fewer), drawn with ``seed``."""
    if isinstance(split, TensorLoader):
        split = split.dataset
    if isinstance(split, IterableDataset):
        split = DataLoader(split, batch_size=size)
    if isinstance(split, DataLoader):
        xs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        for batch in split:
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
            if sum(len(x) for x in xs) >= size:
                break
        return torch.cat(xs)[:size].float(), torch.cat(ys)[:size].long()
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(split), generator=generator)[:size].tolist()
    samples = [split[i] for i in picks]
    inputs = torch.stack([torch.as_tensor(s[0]) for s in samples]).float()
    targets = torch.stack([torch.as_tensor(s[1]) for s in samples]).long().reshape(-1)
    return inputs, targets


def _check_shape(shape: Any) -> tuple[int, ...]:
    ok = isinstance(shape, Sequence) and not isinstance(shape, str) and len(shape) >= 1
    if not ok or not all(is_int(s) and s >= 1 for s in shape):
        raise ConfigError.invalid(
            "input_shape",
            shape,
            "one sample's shape: a tuple of positive integers, e.g. (3, 32, 32)",
        )
    return tuple(int(s) for s in shape)


def _check_build_options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ConfigError.invalid(
            "build_options",
            options,
            "a mapping of Space.build keyword arguments, e.g. {'channels': 16}, or None",
        )
    reserved = {"input_shape", "num_classes"} & set(options)
    if reserved:
        raise ConfigError.invalid(
            "build_options",
            options,
            "Space.build options other than input_shape and num_classes",
            hint=f"pass {', '.join(sorted(reserved))} to the proxy itself",
        )
    return dict(options)
