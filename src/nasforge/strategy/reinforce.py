"""REINFORCE (``reinforce``): a policy-gradient controller over the parameters, Williams 1992."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.space.params import Choice, Fixed, FloatRange, IntRange, Param
from nasforge.strategy.base import Score, Strategy
from nasforge.validation import check_int, check_number

__all__ = ["Reinforce"]

#: Policy samples tried per proposal, at each temperature in turn, before falling back to
#: :meth:`Strategy.random_unseen`: a concentrated policy whose likely archs were all seen
#: is flattened step by step, so new proposals stay near what it learnt.
_TRIES = 25
_TEMPERATURES = (1.0, 2.0, 4.0, 8.0)


class _Head:
    """A softmax over the values of one parameter: the choices of a :class:`Choice`, every
    value of a small :class:`IntRange`, or ``bins`` equal bins (on the parameter's own,
    possibly logarithmic, scale) of a wide :class:`IntRange` or a :class:`FloatRange`."""

    __slots__ = ("_cumulative", "binned", "logits", "param")

    def __init__(self, param: Param, bins: int) -> None:
        size = param.size
        self.param = param
        self.binned = size is None or (not isinstance(param, Choice) and size > bins)
        self.logits = np.zeros(bins if size is None or self.binned else size)
        self._cumulative: np.ndarray | None = None

    def probabilities(self, temperature: float = 1.0) -> np.ndarray:
        z = np.exp((self.logits - self.logits.max()) / temperature)
        return z / z.sum()

    def index(self, value: Any) -> int:
        """The category of ``value`` (its bin for a binned range)."""
        p = self.param
        if isinstance(p, Choice):
            return p.index(value)
        if isinstance(p, IntRange) and not self.binned:
            return (value - p.low) // p.step
        unit = p.encode(value)[0]  # position in [0, 1] on the parameter's scale
        return min(len(self.logits) - 1, int(unit * len(self.logits)))

    def sample(self, rng: np.random.Generator, temperature: float = 1.0) -> Any:
        if temperature != 1.0:
            cumulative = np.cumsum(self.probabilities(temperature))
        else:
            if self._cumulative is None:
                self._cumulative = np.cumsum(self.probabilities())
            cumulative = self._cumulative
        k = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right"))
        k = min(k, len(self.logits) - 1)
        p = self.param
        if isinstance(p, Choice):
            return p.choices[k]
        if isinstance(p, IntRange) and not self.binned:
            return p.low + k * p.step
        assert isinstance(p, IntRange | FloatRange)
        return _at(p, (k + rng.random()) / len(self.logits))  # uniform within the bin

    def step(self, value: Any, amount: float) -> None:
        """Move the logits by ``amount`` times the gradient of ``log p(value)``."""
        grad = -self.probabilities()
        grad[self.index(value)] += 1.0
        self.logits += amount * grad
        self._cumulative = None


def _at(param: IntRange | FloatRange, unit: float) -> float | int:
    """The value at ``unit`` in [0, 1] of a range (log-scaled if ``log``), on its grid."""
    low, high = param.low, param.high
    x = low * (high / low) ** unit if param.log else low + unit * (high - low)
    if isinstance(param, FloatRange):
        return float(min(high, max(low, x)))
    k = round((x - low) / param.step)
    return int(min(high, max(low, low + k * param.step)))


@register("strategy", "reinforce")
class Reinforce(Strategy):
    """REINFORCE: a sampled policy of independent softmaxes trained by policy gradient.

    The policy has one vector of logits per parameter, all zero at first (uniform): over
    the choices of a :class:`Choice`, over the values of an :class:`IntRange` with at most
    ``bins`` values, and over ``bins`` equal bins of a wider integer range or a
    :class:`FloatRange` (a value is drawn uniformly within its bin, on a log scale for
    ``log=True``). A proposal samples the active parameters in order (conditional ones
    follow their parents) until the arch is unseen: 25 tries, then 25 each with the logits
    divided by 2, 4 and 8 (so a concentrated policy proposes archs near the ones it
    prefers), before falling back to a random unseen arch. Archs given to
    :meth:`warm_start` come first.

    Each told score ``r`` moves the logits of the parameters active in the arch by
    ``lr * A * grad log p(arch)`` (plain gradient ascent, no optimiser state). The
    advantage ``A = (r - b) / s`` is scale-free: ``b`` is the bias-corrected exponential
    moving average (momentum ``baseline_momentum``) of the earlier scores and ``s`` the
    root of the moving average of the squared deviations ``(r - b)**2``, this one included,
    which bounds ``|A|`` by ``1 / sqrt(1 - baseline_momentum)``; accuracies in % or as
    fractions, or negated losses, give the same search. The first score only starts the
    baseline; failed trials (None) are skipped. The policy depends only on the told
    ``(arch, score)`` sequence (archs it never proposed included), so resuming needs only
    the history. ``lr=0.3`` is mid-way in the rates that did best on NAS-Bench-201 at
    100-200 queries (0.2-0.5); ``baseline_momentum=0.9`` is the NAS-Bench-201 authors'.

    Williams, "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning", Machine Learning 1992; the REINFORCE baseline of Dong & Yang,
    "NAS-Bench-201", ICLR 2020.

    Example::

        strategy = nf.build("strategy", "reinforce", space=space, seed=0, lr=0.3)
        arch = strategy.ask(); strategy.tell(arch, 0.9)
        strategy.probabilities()["edge_1_0"]   # the policy's softmax over that edge's ops
    """

    name = "reinforce"

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        lr: float = 0.3,
        baseline_momentum: float = 0.9,
        bins: int = 10,
    ) -> None:
        super().__init__(space, seed=seed)
        self.lr = check_number(lr, "lr", low=0, low_open=True)
        self.baseline_momentum = check_number(
            baseline_momentum, "baseline_momentum", low=0, high=1, high_open=True
        )
        self.bins = check_int(bins, "bins", low=2)
        self._heads = {
            p.name: _Head(p, self.bins) for p in space.params if not isinstance(p, Fixed)
        }
        self._mean = _MovingAverage(self.baseline_momentum)  # of the scores: the baseline
        self._square = _MovingAverage(self.baseline_momentum)  # of squared deviations

    @property
    def baseline(self) -> float | None:
        """The moving average of the scores told so far (None before the first one)."""
        return self._mean.value

    def probabilities(self) -> dict[str, np.ndarray]:
        """The policy: for each non-fixed parameter, the probabilities of its choices, of
        the values of a small integer range (ascending), or of the bins of a range (low to
        high)."""
        return {name: head.probabilities() for name, head in self._heads.items()}

    def propose(self) -> Arch:
        if any(not self.is_seen(a) for a in self.warm_pending):
            return self.random_unseen()  # draws the warm-start archs first
        for temperature in _TEMPERATURES:
            for _ in range(_TRIES):
                arch = self._sample(temperature)
                if not self.is_seen(arch):
                    return arch
        return self.random_unseen()

    def _sample(self, temperature: float) -> Arch:
        values: dict[str, Any] = {}
        for p in self.space.params:
            if p.active(values):
                head = self._heads.get(p.name)
                # a Fixed parameter has no head: its default is its value
                values[p.name] = head.sample(self.rng, temperature) if head else p.default
        return self.space.arch(values)

    def observe(self, arch: Arch, score: Score) -> None:
        if not isinstance(score, float):  # a failed trial (None)
            return
        baseline = self._mean.value
        self._mean.update(score)
        if baseline is None:
            return
        deviation = score - baseline
        self._square.update(deviation * deviation)
        scale = math.sqrt(self._square.value or 0.0)
        if scale <= 1e-9 * abs(baseline):  # every score so far equal (up to rounding)
            return
        amount = self.lr * deviation / scale
        for name, head in self._heads.items():
            if name in arch:
                head.step(arch[name], amount)


class _MovingAverage:
    """An exponential moving average, bias-corrected like Adam's moments (Kingma & Ba
    2015): divided by the total weight so far, so early values are not pulled to zero."""

    __slots__ = ("_momentum", "_total", "_weight")

    def __init__(self, momentum: float) -> None:
        self._momentum = momentum
        self._total = 0.0
        self._weight = 0.0

    def update(self, value: float) -> None:
        m = self._momentum
        self._total = m * self._total + (1 - m) * value
        self._weight = m * self._weight + (1 - m)

    @property
    def value(self) -> float | None:
        return self._total / self._weight if self._weight else None
