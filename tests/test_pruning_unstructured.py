"""Unstructured magnitude pruning and its sparsity report."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import nasforge as nf
from nasforge.compress.prune import MagnitudePruner, make_permanent, sparsity_report
from nasforge.errors import ConfigError


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
    )


@pytest.fixture
def trainer():
    data = nf.load_dataset("digits", seed=0)
    return nf.Trainer(data, epochs=1, lr=3e-3, progress=False)


def test_layerwise_pruning_gives_every_layer_the_same_sparsity(trainer):
    pruner = MagnitudePruner(sparsity=0.6)
    model = pruner.apply(_model(), trainer)
    for name in ("0", "3"):
        weight = model.get_submodule(name).weight
        assert (weight == 0).float().mean().item() == pytest.approx(0.6, abs=0.01)
    assert pruner.stats["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert not parametrize.is_parametrized(model[0])  # permanent by default
    assert set(model.state_dict()) == set(_model().state_dict())


def test_global_pruning_removes_the_smallest_weights_anywhere(trainer):
    model = _model()
    with torch.no_grad():
        model[0].weight.mul_(100)  # the conv's weights are now all larger than the linear's
    pruner = MagnitudePruner(sparsity=0.5, scope="global")
    pruner.apply(model, trainer)
    layers = pruner.stats["layers"]
    assert layers["0"]["sparsity"] == 0.0
    assert layers["3"]["sparsity"] > 0.5
    assert pruner.stats["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_masks_hold_during_fine_tuning_and_until_made_permanent(trainer):
    pruner = MagnitudePruner(
        sparsity=0.7, schedule="agp", steps=2, finetune_epochs=1, permanent=False
    )
    model = pruner.apply(_model(), trainer)
    zeros = model[3].weight == 0
    assert zeros.float().mean().item() == pytest.approx(0.7, abs=0.01)
    trainer.fit(model)  # more training: the mask still holds
    assert torch.equal(model[3].weight == 0, zeros)
    make_permanent(model)
    assert not parametrize.is_parametrized(model[3])
    assert torch.equal(model[3].weight == 0, zeros)


def test_sparsity_report_counts_sparse_bytes_and_says_there_is_no_speedup():
    layer = nn.Linear(100, 10, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:, :5] = 1.0
    report = sparsity_report(nn.Sequential(layer))
    assert report["sparsity"] == pytest.approx(0.95)
    assert report["nonzero_params"] == 50
    assert report["dense_bytes"] == 1000 * 4
    assert report["sparse_bytes"] == 50 * (4 + 4) + 11 * 4  # values + column indices + rows
    assert "no faster" in report["note"]


def test_validation_names_the_field():
    with pytest.raises(ConfigError, match="sparsity"):
        MagnitudePruner(sparsity=1.0)
    with pytest.raises(ConfigError, match="scope"):
        MagnitudePruner(scope="model")
    with pytest.raises(ConfigError, match="layer_types"):
        MagnitudePruner(layer_types=["lstm"])
    assert "magnitude_prune" in nf.available("compressor")
