"""Bayesian optimisation (``bayesian``): a GP with an architecture kernel, on numpy/scipy."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from scipy import linalg, optimize, special

from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.strategy.base import Score, Strategy
from nasforge.validation import check_choice, check_int, check_number

__all__ = ["BayesianOptimization"]

_ACQUISITIONS = ("ei", "ucb")
_controller: Any = None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run the small GP algebra on one BLAS thread: with matrices of a few hundred rows,
    a multi-threaded BLAS on a busy machine is 10-20x slower. Uses threadpoolctl when it
    is installed and does nothing otherwise."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    if _controller is False:
        yield
        return
    with _controller.limit(limits=1, user_api="blas"):
        yield


@register("strategy", "bayesian")
class BayesianOptimization(Strategy):
    """GP-based Bayesian optimisation whose acquisition is maximised by mutating the best archs.

    The surrogate is a Gaussian process on :meth:`Space.encode` with an *architecture
    kernel*: ``k(a, b) = s2 * exp(-sum_p theta_p * d_p(a, b))`` where ``d_p`` is the squared
    distance of parameter ``p``'s block of the encoding (for a choice: 2 if the two archs
    differ in it, else 0), i.e. an exponentiated, ARD-weighted Hamming kernel on categorical
    parameters (as in COMBO/CoCaBO-style categorical BO). Scores are rank-transformed to
    normal quantiles (a Gaussian copula) so outliers like broken archs do not dominate, and
    the kernel weights, signal and noise variance are fitted by maximum marginal likelihood
    every ``refit_every`` results. The expected improvement (or UCB) is maximised over a
    candidate pool: the unseen neighbours of the best archs (best first, until there are at
    least ``n_local``), ``n_mutations`` 2-3-edit mutations of the ``top_k`` best, and
    ``n_random`` random archs - the "mutate the best" acquisition optimiser of BANANAS
    (White, Neiswanger & Savani, AAAI 2021). The first ``n_init`` proposals are random.
    Parallel asks use the kriging believer: pending archs count as observed at the GP mean.

    Several objectives (tuple scores) are handled as in ParEGO (Knowles, IEEE TEVC 2006):
    before every proposal the objectives are normalised to [0, 1] over the results so far
    and folded into one score with the augmented Chebyshev function under weights drawn
    uniformly from the simplex, so successive proposals aim at different parts of the
    Pareto front.

    Example::

        strategy = nf.build("strategy", "bayesian", space=space, seed=0, n_init=10)
    """

    name = "bayesian"
    multi_objective = True

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        n_init: int = 5,
        acquisition: str = "ei",
        n_local: int = 100,
        top_k: int = 5,
        n_mutations: int = 100,
        n_random: int = 200,
        refit_every: int = 5,
        xi: float = 0.0,
        kappa: float = 2.0,
    ) -> None:
        super().__init__(space, seed=seed)
        self.n_init = check_int(n_init, "n_init", low=1)
        self.acquisition = check_choice(acquisition, "acquisition", _ACQUISITIONS)
        self.n_local = check_int(n_local, "n_local", low=0)
        self.top_k = check_int(top_k, "top_k", low=1)
        self.n_mutations = check_int(n_mutations, "n_mutations", low=0)
        self.n_random = check_int(n_random, "n_random", low=0)
        self.refit_every = check_int(refit_every, "refit_every", low=1)
        self.xi = check_number(xi, "xi", low=0)
        self.kappa = check_number(kappa, "kappa", low=0)
        if n_local + n_mutations + n_random == 0:
            raise ConfigError.invalid(
                "n_random",
                n_random,
                "> 0 when n_local and n_mutations are 0",
                hint="the candidate pool would be empty",
            )
        self._blocks = space.encode_blocks()
        # column -> block index, to expand per-parameter weights to columns
        self._column_block = np.zeros(space.encoding_width, dtype=int)
        for b, (_, start, stop) in enumerate(self._blocks):
            self._column_block[start:stop] = b
        # log hyperparameters: [theta_1..theta_B, signal variance, noise variance]
        self._hyper = np.concatenate([np.full(len(self._blocks), math.log(0.5)), [0.0, -3.0]])
        self._fitted_at = -1
        self._codes: dict[str, np.ndarray] = {}

    # --- surrogate --------------------------------------------------------------------------
    def _encode(self, arch: Arch) -> np.ndarray:
        code = self._codes.get(arch.key)
        if code is None:
            code = self._codes[arch.key] = self.space.encode(self.space.canonical(arch))
        return code

    def _scaled(self, x: np.ndarray, hyper: np.ndarray) -> np.ndarray:
        theta = np.exp(hyper[: len(self._blocks)])
        return x * np.sqrt(theta)[self._column_block]

    @staticmethod
    def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.maximum(d, 0.0)

    def _nll(self, hyper: np.ndarray, dists: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log marginal likelihood and its gradient in the log hyperparameters."""
        n_blocks = len(self._blocks)
        theta = np.exp(hyper[:n_blocks])
        signal, noise = math.exp(hyper[-2]), math.exp(hyper[-1])
        k_signal = signal * np.exp(-np.tensordot(theta, dists, axes=1))
        k = k_signal.copy()
        k[np.diag_indices_from(k)] += noise + 1e-8
        try:
            chol = linalg.cholesky(k, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return 1e10, np.zeros_like(hyper)
        alpha = linalg.cho_solve((chol, True), y, check_finite=False)
        k_inv = linalg.cho_solve((chol, True), np.eye(len(y)), check_finite=False)
        w = k_inv - np.outer(alpha, alpha)
        grad = np.empty_like(hyper)
        wk = w * k_signal
        grad[:n_blocks] = -0.5 * theta * np.tensordot(dists, wk, axes=([1, 2], [0, 1]))
        grad[-2] = 0.5 * wk.sum()
        grad[-1] = 0.5 * noise * np.trace(w)
        nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum()
        return float(nll), grad

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        dists = np.stack([self._sqdist(x[:, a:b], x[:, a:b]) for _, a, b in self._blocks])
        bounds = [(math.log(1e-3), math.log(20.0))] * len(self._blocks)
        bounds += [(math.log(0.05), math.log(20.0)), (math.log(1e-4), math.log(1.0))]
        result = optimize.minimize(
            self._nll,
            self._hyper,
            args=(dists, y),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 50},
        )
        if np.all(np.isfinite(result.x)):
            self._hyper = result.x

    def _transform(self, scores: np.ndarray) -> np.ndarray:
        ranks = scores.argsort().argsort() + 1.0
        return special.ndtri(ranks / (len(scores) + 1.0))

    # --- proposals --------------------------------------------------------------------------
    def _pool(self, ranked: list[Arch]) -> list[Arch]:
        pool: dict[str, Arch] = {}
        for arch in ranked:  # trust region: unseen neighbours of the best archs first
            for n in self.space.neighbors(arch):
                if not self.is_seen(n):
                    pool.setdefault(self.canonical_key(n), n)
            if len(pool) >= self.n_local:
                break
        top = ranked[: self.top_k]
        for i in range(self.n_mutations):
            parent = top[i % len(top)]
            child = self.space.mutate(parent, self.rng, n=2 + int(self.rng.integers(2)))
            pool.setdefault(self.canonical_key(child), child)
        for _ in range(self.n_random):
            arch = self.space.sample(self.rng)
            pool.setdefault(self.canonical_key(arch), arch)
        return [a for k, a in pool.items() if k not in self._seen]

    def propose(self) -> Arch:
        scored = [s for _, s in self._history if s is not None]
        if len(scored) < self.n_init:
            return self.random_unseen()
        history = self._parego(self._history) if self._width else self._history
        # Failed and infeasible archs count as the worst result seen, so the model learns
        # to avoid their region instead of proposing more of it.
        worst = min(s for _, s in history if s is not None)
        told = [(a, worst if s is None else s) for a, s in history]
        with _single_threaded_blas():
            return self._propose_with_model(told)

    def _parego(self, history: list[tuple[Arch, Score]]) -> list[tuple[Arch, float | None]]:
        """Tuple scores folded into floats to maximise: ParEGO's augmented Chebyshev
        function ``-(max_i w_i d_i + 0.05 * sum_i w_i d_i)`` of the normalised distances
        ``d_i`` to the best value of each objective, with fresh random weights ``w``."""
        values = np.array([s for _, s in history if s is not None], dtype=float)
        low, high = values.min(0), values.max(0)
        span = np.where(high > low, high - low, 1.0)
        weights = self.rng.dirichlet(np.ones(values.shape[1]))
        folded: list[tuple[Arch, float | None]] = []
        for arch, score in history:
            if score is None:
                folded.append((arch, None))
                continue
            gap = weights * (high - np.asarray(score, dtype=float)) / span
            folded.append((arch, -float(gap.max() + 0.05 * gap.sum())))
        return folded

    def _propose_with_model(self, finished: list[tuple[Arch, float]]) -> Arch:
        scores = np.array([s for _, s in finished])
        y = self._transform(scores)
        x = np.stack([self._encode(a) for a, _ in finished])
        if self._fitted_at < 0 or len(finished) - self._fitted_at >= self.refit_every:
            self._fit(x, y)
            self._fitted_at = len(finished)
        order = np.argsort(-scores, kind="stable")
        ranked = [finished[int(i)][0] for i in order]
        pool = self._pool(ranked)
        if not pool:
            return self.random_unseen()
        hyper = self._hyper
        noise = math.exp(hyper[-1]) + 1e-8
        signal = math.exp(hyper[-2])
        xs = self._scaled(x, hyper)
        k = signal * np.exp(-self._sqdist(xs, xs))
        k[np.diag_indices_from(k)] += noise
        chol = linalg.cholesky(k, lower=True, check_finite=False)
        alpha = linalg.cho_solve((chol, True), y, check_finite=False)
        if self._pending:  # kriging believer: pending archs observed at their GP mean
            xp = self._scaled(np.stack([self._encode(a) for a in self._pending.values()]), hyper)
            yp = (signal * np.exp(-self._sqdist(xp, xs))) @ alpha
            xs = np.vstack([xs, xp])
            y = np.concatenate([y, yp])
            k = signal * np.exp(-self._sqdist(xs, xs))
            k[np.diag_indices_from(k)] += noise
            chol = linalg.cholesky(k, lower=True, check_finite=False)
            alpha = linalg.cho_solve((chol, True), y, check_finite=False)
        xc = self._scaled(np.stack([self._encode(a) for a in pool]), hyper)
        kc = signal * np.exp(-self._sqdist(xc, xs))
        mean = kc @ alpha
        v = linalg.solve_triangular(chol, kc.T, lower=True, check_finite=False)
        std = np.sqrt(np.maximum(signal - (v * v).sum(0), 1e-12))
        if self.acquisition == "ucb":
            value = mean + self.kappa * std
        else:
            z = (mean - y.max() - self.xi) / std
            value = (mean - y.max() - self.xi) * special.ndtr(z) + std * np.exp(
                -0.5 * z * z
            ) / math.sqrt(2 * math.pi)
        return pool[int(np.argmax(value))]

    def observe(self, arch: Arch, score: Score) -> None:
        self._encode(arch)

    def extra_state(self) -> dict[str, Any]:
        return {"hyper": self._hyper.tolist(), "fitted_at": self._fitted_at}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._hyper = np.asarray(state["hyper"], dtype=float)
        self._fitted_at = int(state["fitted_at"])
