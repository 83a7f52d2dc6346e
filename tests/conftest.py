"""Shared test fixtures: small data and a tiny model, so the suite stays fast."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests draw the same cases on every run, so CI cannot fail by chance;
# HYPOTHESIS_PROFILE=explore draws fresh ones (how new bugs are hunted).
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(autouse=True)
def _single_thread():
    """Tests run on 2 shared cores; one intra-op thread keeps them predictable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def synthetic_bundle():
    import nasforge as nf

    return nf.load_dataset(
        "synthetic", num_samples=240, input_shape=(6,), num_classes=3, noise=0.5, seed=0
    )


@pytest.fixture
def tiny_mlp():
    def make(in_features: int = 6, num_classes: int = 3):
        import torch
        from torch import nn

        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, num_classes))

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``ray`` run last. Once Ray is up, its threads live in this process, and
    forking it (as the ``process`` executor does) can deadlock a child or this process."""
    items.sort(key=lambda item: item.get_closest_marker("ray") is not None)
