"""Issue #5, memory: 50 trials in the ``process`` executor leave the driver's resident memory
(RSS) within 10% of where it was after the first trial.

Each trial allocates 32 MB, builds and runs a small CNN, and leaks 4 MB into a module-level
list, all inside its worker; the driver (this process) only asks, tells and records. A
strategy that wraps ``tell`` reads the driver's RSS from ``/proc/self/status`` after every
told trial.
"""

from __future__ import annotations

import sys

import pytest
import torch

import nasforge as nf
from nasforge.strategy.random import RandomSearch

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads VmRSS from /proc/self/status"
)

TRIALS = 50
_LEAKED: list[bytes] = []  # grows in the workers only


def rss_mb() -> float:
    """This process's resident set size in MB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class HeavyEvaluator:
    """Allocates a 32 MB tensor, builds and runs a small CNN, and leaks 4 MB per trial."""

    def __init__(self, space: nf.Space) -> None:
        self.space = space

    def evaluate(self, arch: nf.Arch, budget: float | None = None) -> dict[str, float]:
        buffer = torch.randn(8_000_000)  # 32 MB of float32
        model = self.space.build(arch, input_shape=(1, 40), num_classes=10)
        with torch.no_grad():
            out = model(buffer[: 64 * 40].reshape(64, 1, 40))
        _LEAKED.append(b"x" * 4_000_000)  # touched, so resident
        score = float(out.softmax(1).max(1).values.mean())
        return {"val_acc": score, "params": float(sum(p.numel() for p in model.parameters()))}


class RssRecordingRandom(RandomSearch):
    """Random search that records the driver's RSS after every ``tell``."""

    def __init__(self, space: nf.Space, *, seed: int = 0) -> None:
        super().__init__(space, seed=seed)
        self.rss: list[float] = []

    def tell(self, arch, score) -> None:  # type: ignore[no-untyped-def]
        super().tell(arch, score)
        self.rss.append(rss_mb())


def test_process_executor_keeps_driver_rss_flat_over_50_trials():
    space = nf.build("space", "cnn", max_stages=2, channels=[8, 16, 32], max_blocks=2)
    strategy = RssRecordingRandom(space, seed=0)
    result = nf.search(
        space,
        HeavyEvaluator(space),
        strategy=strategy,
        budget=TRIALS,
        executor={"name": "process", "workers": 2, "threads_per_worker": 1},
        progress=False,
    )

    assert len(result.trials) == TRIALS
    assert all(t.finished for t in result.trials), [t.error for t in result.trials]
    assert _LEAKED == []  # the per-trial leaks died with their workers
    assert len(strategy.rss) == TRIALS
    first, last = strategy.rss[0], strategy.rss[-1]
    assert abs(last - first) <= 0.10 * first, (
        f"driver RSS went from {first:.1f} MB after trial 1 to {last:.1f} MB after trial "
        f"{TRIALS} (max {max(strategy.rss):.1f} MB)"
    )
