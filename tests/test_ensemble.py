"""Ensembles: nf.Ensemble and SearchResult.ensemble(k) over a search's best archs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.export import export_torchscript


@pytest.fixture(scope="module")
def searched():
    data = nf.load_dataset("synthetic", num_samples=150, input_shape=(6,), num_classes=3, seed=0)
    space = nf.build("space", "mlp", max_depth=2, widths=(8, 16), max_dropout=0.0)
    evaluator = nf.TrainEvaluator(space, data, epochs=2, lr=1e-2, batch_size=32, latency=False)
    result = nf.search(space, evaluator, strategy="random", budget=6, seed=0, progress=False)
    return result, data


def _linear(weight: float) -> nn.Module:
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2) * weight)
    return layer


def test_an_ensemble_averages_logits_or_probabilities():
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    models = [_linear(1.0), _linear(3.0)]
    assert torch.allclose(nf.Ensemble(models)(x), 2.0 * x)
    probs = nf.Ensemble(models, combine="probabilities")(x).softmax(dim=1)
    expected = (x.softmax(dim=1) + (3 * x).softmax(dim=1)) / 2
    assert torch.allclose(probs, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("models", "options", "field"),
    [
        ([], {}, "models"),
        (_linear(1.0), {}, "models"),
        ([_linear(1.0), "x"], {}, "models"),
        ([_linear(1.0)], {"combine": "median"}, "combine"),
    ],
)
def test_bad_ensembles_are_refused(models, options, field):
    with pytest.raises(ConfigError, match=field):
        nf.Ensemble(models, **options)


def test_top_ranks_finished_archs_once_each(searched):
    result, _ = searched
    top = result.top(3)
    scores = [t.metrics["val_acc"] for t in top]
    assert top[0] is result.best
    assert scores == sorted(scores, reverse=True)
    assert len({t.key for t in top}) == 3
    others = [t.metrics["val_acc"] for t in result.final if t.key not in {x.key for x in top}]
    assert all(s <= scores[-1] for s in others)


def test_the_ensemble_is_the_mean_logit_of_the_top_k_trained_models(searched):
    result, data = searched
    ensemble = result.ensemble(3)
    x = data.test.tensors[0]
    members = [result.evaluator.load_model(t.arch) for t in result.top(3)]
    with torch.no_grad():
        expected = torch.stack([m(x) for m in members]).mean(dim=0)
        assert torch.allclose(ensemble(x), expected, atol=1e-6)
    assert not ensemble.training
    assert nf.count_params(ensemble) == sum(nf.count_params(m) for m in members)
    accuracy = nf.Trainer(data, progress=False).evaluate(ensemble)["accuracy"]
    assert 0.0 <= accuracy <= 1.0


def test_the_ensemble_exports_and_teaches(searched, tmp_path):
    result, data = searched
    ensemble = result.ensemble(2)
    x = data.test.tensors[0][:4]
    scripted = export_torchscript(ensemble, tmp_path / "ensemble.ts", x)
    assert torch.allclose(torch.jit.load(scripted)(x), ensemble(x), atol=1e-5)
    student = nn.Sequential(nn.Linear(6, 3))
    trainer = nf.Trainer(data, epochs=1, progress=False)
    assert nf.Distiller(teacher=ensemble).apply(student, trainer) is student


def test_an_ensemble_needs_enough_archs_and_trained_models(searched):
    result, _ = searched
    with pytest.raises(ConfigError, match="k=99 but only"):
        result.ensemble(99)
    with pytest.raises(ConfigError, match="k"):
        result.top(0)
    space = nf.build("space", "nb201")
    table = nf.TabularBenchmark({space.sample(seed=i).key: {"val_acc": float(i)} for i in range(3)})
    tabular = nf.search(space, table, strategy="random", budget=3, seed=0, progress=False)
    with pytest.raises(ConfigError, match="cannot load them"):
        tabular.ensemble(2)
