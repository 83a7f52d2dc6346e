"""Transfer learning: the transfer space around a torchvision backbone and its evaluator."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

import nasforge as nf
from nasforge.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A resnet18 state_dict (1000-class head) with weights no fresh model has."""
    import torchvision

    torch.manual_seed(1)
    model = torchvision.models.resnet18()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


@pytest.fixture(scope="module")
def data():
    """A quarter of the digits, at 16x16."""
    full = nf.load_dataset("digits", size=16, seed=0)
    splits = {s: getattr(full, s) for s in ("train", "val", "test")}
    return dataclasses.replace(
        full, **{s: type(d)(*(t[::4] for t in d.tensors)) for s, d in splits.items()}
    )


def _arch(space, **values):
    base = {
        "freeze": 0,
        "unfreeze": False,
        "head_depth": 0,
        "dropout": 0.0,
        "backbone_lr": 1e-3,
        "head_lr": 1e-2,
    }
    return space.arch({**base, **values})


def test_the_space_builds_the_backbone_with_a_new_head_and_frozen_stages(pretrained):
    path, state = pretrained
    space = nf.build("space", "transfer", backbone="resnet18", weights=str(path))
    assert [p.name for p in space.params][:3] == ["freeze", "unfreeze", "head_depth"]
    assert space["freeze"].high == 6  # conv1, bn1, layer1-4
    model = space.build(
        _arch(space, freeze=2, head_depth=1, head_width=128), input_shape=(1, 16, 16), num_classes=4
    )
    trainable = [all(p.requires_grad for p in s.parameters()) for s in model.stages]
    assert trainable == [False, False, True, True, True, True]
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert model(torch.randn(3, 1, 16, 16)).shape == (3, 4)  # 1 channel repeated to 3
    head = model.head_parameters()
    assert [tuple(p.shape) for p in head] == [(128, 512), (128,), (4, 128), (4,)]
    assert pickle.loads(pickle.dumps(space)) == space
    assert nf.Space.from_dict(space.to_dict()) == space


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_b0"])
def test_other_backbones_get_their_last_linear_layer_replaced(backbone):
    space = nf.build("space", "transfer", backbone=backbone, max_head_depth=0)
    model = space.build(space.sample(seed=0), input_shape=(3, 32, 32), num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert space["freeze"].high == len(model.stages) > 5


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"backbone": "resnet_eighteen"}, ConfigError, "transfer.backbone"),
        ({"weights": "missing/weights.pt"}, ConfigError, "transfer.weights"),
        ({"dropouts": "0.5"}, ConfigError, "transfer.dropouts"),
        ({"head_lr": (0.1,)}, ConfigError, "transfer.head_lr"),
    ],
)
def test_bad_transfer_options_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        space = nf.build("space", "transfer", **options)
        space.build(space.sample(seed=0), input_shape=(3, 16, 16), num_classes=2)


def test_weights_of_another_backbone_are_refused(tmp_path):
    import torchvision

    path = tmp_path / "mobilenet.pt"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    space = nf.build("space", "transfer", backbone="resnet18", weights=str(path))
    with pytest.raises(CheckpointError, match="does not hold resnet18 weights"):
        space.build(space.sample(seed=0), input_shape=(3, 16, 16), num_classes=2)


def test_frozen_stages_keep_their_weights_and_unfreezing_trains_them(pretrained, data, tmp_path):
    path, state = pretrained
    space = nf.build("space", "transfer", backbone="resnet18", weights=str(path))
    evaluator = nf.TransferEvaluator(
        space, data, epochs=2, batch_size=64, latency=False, checkpoint_dir=tmp_path
    )
    frozen = evaluator.load_model(_arch(space, freeze=3))
    gradual = evaluator.load_model(_arch(space, freeze=3, unfreeze=True))

    def same(model, prefix):
        trained = model.backbone.state_dict()
        return all(
            torch.equal(trained[k], v)
            for k, v in state.items()
            if k.startswith(prefix) and "running" not in k and "num_batches" not in k
        )

    assert same(frozen, "conv1.") and same(frozen, "layer1.")  # stages 0 and 2
    assert not same(frozen, "layer2.")
    # gradual: stage 2 (layer1) trains from the second epoch; stages 0-1 stay frozen
    assert same(gradual, "conv1.") and not same(gradual, "layer1.")
    metrics = evaluator.evaluate(_arch(space, freeze=3))
    assert 0 <= metrics["val_acc"] <= 1 and metrics["params"] > 1e6


def test_the_transfer_evaluator_needs_a_transfer_space_and_a_named_optimizer(data):
    with pytest.raises(ConfigError, match="TransferSpace"):
        nf.TransferEvaluator(nf.build("space", "mlp"), data)
    space = nf.build("space", "transfer", backbone="resnet18")
    with pytest.raises(ConfigError, match="optimizer"):
        nf.TransferEvaluator(space, data, optimizer=torch.optim.SGD, latency=False)


def test_a_checkpoint_dir_of_other_weights_is_refused(pretrained, data, tmp_path):
    path, _ = pretrained
    options = {"epochs": 1, "latency": False, "checkpoint_dir": tmp_path}
    nf.TransferEvaluator(nf.build("space", "transfer", weights=path), data, **options)
    scratch = nf.build("space", "transfer")  # the same backbone, no weights
    with pytest.raises(ConfigError, match=r"checkpoint_dir .* other settings .*space"):
        nf.TransferEvaluator(scratch, data, **options)
