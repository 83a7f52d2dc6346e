"""Structured channel pruning: the dependency graph, importances, and the compressor."""

from __future__ import annotations

import fnmatch
import itertools

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.compress.prune import (
    ChannelPruner,
    build_graph,
    keep_count,
    prune_channels,
    schedule_amounts,
)
from nasforge.errors import ConfigError, UnsupportedModelError


def _conv_bn(cin: int, cout: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 8)
        self.a = _conv_bn(8, 8)
        self.b = _conv_bn(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.b(self.a(x))  # stem, b: coupled; a: free
        return self.head(x.mean((2, 3)))


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.left = _conv_bn(3, 6)
        self.right = _conv_bn(3, 10)
        self.depthwise = _conv_bn(16, 16, groups=16)
        self.fc = nn.Linear(16 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        x = self.depthwise(x)
        return self.fc(torch.flatten(x, 1))


def test_residual_additions_couple_channels():
    model = Residual().eval()
    graph = build_graph(model, torch.randn(1, 3, 8, 8))
    groups = {g.name: g for g in graph.groups}
    assert set(groups) == {"stem.0", "a.0"}
    coupled = {m.module_name for m in groups["stem.0"].members}
    assert {"stem.0", "stem.1", "b.0", "b.1", "a.0", "head"} <= coupled
    small = prune_channels(model, torch.randn(1, 3, 8, 8), ratio=0.5)
    assert small.stem[0].out_channels == small.b[0].out_channels == 4
    assert small.head.in_features == 4 and small.head.out_features == 4
    assert small.a[0].out_channels == small.b[0].in_channels == 4


def test_concat_depthwise_and_flatten_are_pruned_consistently():
    torch.manual_seed(0)
    model = Concat().eval()
    x = torch.randn(2, 3, 4, 4)
    small = prune_channels(model, x, ratio=0.5)
    assert small.left[0].out_channels == 3 and small.right[0].out_channels == 5
    dw = small.depthwise[0]
    assert dw.in_channels == dw.out_channels == dw.groups == 8
    assert small.depthwise[1].num_features == 8
    assert small.fc.in_features == 8 * 16  # every kept channel keeps its 4x4 block
    assert small(x).shape == (2, 5)


def test_kept_channels_compute_what_they_computed_before():
    """With the removed channels zeroed instead, the original gives the same outputs."""
    torch.manual_seed(0)
    model = Concat().eval()
    x = torch.randn(2, 3, 4, 4)
    importance = lambda group: torch.arange(group.size, 0, -1).float()  # noqa: E731
    small = prune_channels(model, x, ratio=0.5, importance=importance)  # keeps the first half
    masked = Concat().eval()
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():
        for branch, keep in ((masked.left, 3), (masked.right, 5)):
            branch[1].weight[keep:] = 0
            branch[1].bias[keep:] = 0
        masked.depthwise[1].weight[torch.tensor([3, 4, 5, 11, 12, 13, 14, 15])] = 0
        masked.depthwise[1].bias[torch.tensor([3, 4, 5, 11, 12, 13, 14, 15])] = 0
    torch.testing.assert_close(small(x), masked(x))


@pytest.mark.parametrize(
    ("name", "size", "kwargs"),
    [
        ("resnet18", 16, {}),
        ("mobilenet_v2", 16, {}),
        pytest.param("vgg11_bn", 32, {"init_weights": False}, marks=pytest.mark.slow),
    ],
)
def test_torchvision_models_really_shrink(name, size, kwargs):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=10, **kwargs).eval()
    x = torch.randn(2, 3, size, size)
    excluded = {
        "resnet18": "layer1.0.conv1",
        "mobilenet_v2": "features.1.*",
        "vgg11_bn": "features.0",
    }[name]
    before = {n: m.weight.shape for n, m in model.named_modules() if hasattr(m, "weight")}
    small = prune_channels(model, x, ratio=0.5, round_to=4, exclude=[excluded])
    after = {n: m.weight.shape for n, m in small.named_modules() if hasattr(m, "weight")}
    assert small(x).shape == model(x).shape == (2, 10)
    assert nf.count_params(small) < 0.5 * nf.count_params(model)
    assert nf.count_macs(small, x) < 0.5 * nf.count_macs(model, x)
    for layer in [n for n in before if fnmatch.fnmatch(n, excluded)]:
        assert after[layer] == before[layer], layer
    shrunk = [n for n in before if after[n] != before[n]]
    assert len(shrunk) > 10
    for n in shrunk:  # round_to=4: every pruned output dimension is a multiple of 4
        assert after[n][0] % 4 == 0 or after[n][0] == before[n][0]
    # the original is untouched
    assert {n: m.weight.shape for n, m in model.named_modules() if hasattr(m, "weight")} == before


def test_inputs_outputs_and_excluded_layers_keep_their_shapes():
    model = Residual().eval()
    small = prune_channels(model, torch.randn(1, 3, 8, 8), ratio=0.5, exclude=["a.0"])
    assert small.stem[0].in_channels == 3  # model input
    assert small.head.out_features == 4  # model output
    assert small.a[0].weight.shape == (8, 8, 3, 3)  # excluded: its input group stays too
    assert small.stem[0].out_channels == 8


def test_untraceable_layer_gives_a_clear_error_naming_it():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow
                return self.conv(x)
            return -self.conv(x)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Conv2d(3, 3, 1)
            self.block = Branchy()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(self.first(x)).flatten(1)

    with pytest.raises(UnsupportedModelError, match="'block'") as info:
        prune_channels(Net(), torch.randn(1, 3, 8, 8), ratio=0.5)
    assert info.value.layer == "block"
    assert "leaf_modules" in str(info.value)
    # the hint works: the block is kept whole, the rest is still analysed
    graph = build_graph(Net(), torch.randn(1, 3, 8, 8), leaf_modules=["block"])
    assert graph.groups == []
    assert "block" not in {m.module_name for g in graph.groups for m in g.members}


def test_unknown_operations_fence_off_channels_instead_of_breaking():
    class Shuffle(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)
            self.b = nn.Conv2d(8, 8, 1)
            self.c = nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.a(x)
            n, _, h, w = x.shape
            x = x.view(n, 2, 4, h, w).transpose(1, 2).reshape(n, 8, h, w)  # channel shuffle
            return self.c(self.b(x))

    model = Shuffle().eval()
    graph = build_graph(model, torch.randn(1, 3, 4, 4))
    assert [g.name for g in graph.groups] == ["b"]
    assert "a" in graph.fixed
    small = prune_channels(model, torch.randn(1, 3, 4, 4), ratio=0.5)
    assert small.a.out_channels == 8 and small.b.out_channels == 4


def test_importances_choose_different_channels():
    model = nn.Sequential(_conv_bn(3, 4), nn.Conv2d(4, 2, 1)).eval()
    with torch.no_grad():
        model[0][0].weight.copy_(
            torch.tensor([1.0, 4.0, 2.0, 3.0]).view(4, 1, 1, 1).expand(4, 3, 3, 3)
        )
        model[0][1].weight.copy_(torch.tensor([4.0, 1.0, 3.0, 2.0]))
        model[1].weight.zero_()
    x = torch.randn(1, 3, 4, 4)
    by_l1 = prune_channels(model, x, ratio=0.5, importance="l1")
    by_bn = prune_channels(model, x, ratio=0.5, importance="bn_scale")
    assert by_l1[0][1].weight.tolist() == [1.0, 2.0]  # filters 1 and 3 (norms 4 and 3)
    assert by_bn[0][1].weight.tolist() == [4.0, 3.0]  # gammas 4 and 3 (channels 0 and 2)
    with pytest.raises(ConfigError, match="gradients"):
        prune_channels(model, x, ratio=0.5, importance="taylor")
    with pytest.raises(ConfigError, match="importance"):
        prune_channels(model, x, ratio=0.5, importance="l3")


def test_keep_count_and_schedules():
    assert keep_count(64, 0.5) == 32
    assert keep_count(100, 0.3, round_to=8) == 64
    assert keep_count(6, 0.5, round_to=8) == 6  # never more than there are
    assert keep_count(10, 0.99) == 1
    assert schedule_amounts("one_shot", 0.5, 1) == [0.5]
    agp = schedule_amounts("agp", 0.5, 4)
    assert agp[-1] == pytest.approx(0.5)
    assert all(a < b for a, b in itertools.pairwise(agp))
    assert agp[0] > 0.5 / 4  # prunes fastest at first
    with pytest.raises(ConfigError, match="steps"):
        schedule_amounts("one_shot", 0.5, 3)


def test_constructor_validation_names_the_field():
    with pytest.raises(ConfigError, match="ratio"):
        ChannelPruner(ratio=1.5)
    with pytest.raises(ConfigError, match="round_to"):
        ChannelPruner(round_to=0)
    with pytest.raises(ConfigError, match="exclude"):
        ChannelPruner(exclude="fc")
    with pytest.raises(ConfigError, match="schedule"):
        ChannelPruner(schedule="cubic")
    with pytest.raises(ConfigError, match=r"exclude.*no module.*'head'"):
        prune_channels(Residual(), torch.randn(1, 3, 8, 8), exclude=["haed"])
    assert "channel_prune" in nf.available("compressor")


@pytest.fixture
def image_data():
    return nf.load_dataset(
        "synthetic", num_samples=240, input_shape=(3, 4, 4), num_classes=4, noise=0.5
    )


def test_agp_compressor_fine_tunes_through_the_trainer(image_data):
    torch.manual_seed(0)
    model = Concat()
    trainer = nf.Trainer(image_data, epochs=3, lr=3e-3, progress=False)
    trainer.fit(model)
    assert trainer.evaluate(model)["accuracy"] > 0.9
    fits = []

    class Count(nf.Callback):
        def on_fit_begin(self, trainer, state):
            fits.append(sum(p.numel() for p in state.model.parameters()))

    trainer.callbacks.append(Count())
    pruner = nf.build(
        "compressor", "channel_prune", ratio=0.5, schedule="agp", steps=3, finetune_epochs=1
    )
    small = pruner.apply(model, trainer)
    assert len(fits) == 3 and fits[0] > fits[1] > fits[2]  # shrinking between fine-tunes
    assert small.left[0].out_channels == 3 and small.right[0].out_channels == 5
    assert pruner.stats["channels_before"] == 16 and pruner.stats["channels_after"] == 8
    assert trainer.evaluate(small)["accuracy"] > 0.85


def test_taylor_importance_runs_with_trainer_gradients(image_data):
    model = Concat()
    trainer = nf.Trainer(image_data, epochs=1, progress=False)
    pruner = ChannelPruner(ratio=0.5, importance="taylor", taylor_batches=2)
    small = pruner.apply(model, trainer)
    assert small.left[0].out_channels == 3
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("space", "shape"), [("mlp", (1, 40)), ("cnn", (1, 8, 8)), ("nb201", (3, 8, 8))]
)
def test_every_network_of_nasforges_spaces_prunes_and_reloads(space, shape, tmp_path):
    from nasforge.compress import load_model, save_model

    built = nf.build("space", space)
    for seed in range(3):
        arch = built.sample(seed=seed)
        model = built.build(arch, input_shape=shape, num_classes=10).eval()
        x = torch.randn(2, *shape)
        small = prune_channels(model, x, ratio=0.5).eval()
        assert small(x).shape == (2, 10)
        assert nf.count_params(small) < 0.6 * nf.count_params(model)
        save_model(small, tmp_path / "m.pt")
        fresh = built.build(arch, input_shape=shape, num_classes=10)
        torch.testing.assert_close(load_model(tmp_path / "m.pt", model=fresh)(x), small(x))


def test_a_pruned_copy_that_fails_to_run_is_reported_with_the_layer():
    """Simulate a coupling the analysis missed: drop one layer from the plan."""
    from nasforge.compress.prune.importance import MagnitudeImportance
    from nasforge.compress.prune.structured import _prune

    model = Residual().eval()
    x = torch.randn(1, 3, 8, 8)
    graph = build_graph(model, x)
    del graph.specs["b.0"]  # b.0 would keep reading all 8 stem channels
    targets = {g.name: g.size // 2 for g in graph.groups}
    with pytest.raises(UnsupportedModelError, match=r"'b\.0' \(Conv2d\)") as info:
        _prune(model, graph, targets, MagnitudeImportance(1), x)
    assert info.value.layer == "b.0"
    assert model.stem[0].out_channels == 8  # the original is untouched


def test_reshapes_with_literal_channel_counts_are_fenced_off():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)
            self.b = nn.Conv2d(8, 8, 1)
            self.fc = nn.Linear(8 * 16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.a(x).view(x.size(0), 8, 4, 4)  # a literal 8: must not prune a
            x = self.b(x)
            return self.fc(x.view(x.size(0), -1))  # flattening with -1: b is prunable

    model = Net().eval()
    small = prune_channels(model, torch.randn(2, 3, 4, 4), ratio=0.5)
    assert small.a.out_channels == 8
    assert small.b.out_channels == 4 and small.fc.in_features == 4 * 16


def test_batch_norm_statistics_are_re_estimated_after_pruning():
    torch.manual_seed(0)
    model = Residual()
    trainer = nf.Trainer(
        nf.load_dataset("synthetic", num_samples=120, input_shape=(3, 8, 8), num_classes=4),
        epochs=1,
        progress=False,
    )
    trainer.fit(model)
    kept = ChannelPruner(ratio=0.5, bn_recalibration_batches=0).apply(model, trainer)
    fresh = ChannelPruner(ratio=0.5, bn_recalibration_batches=4).apply(model, trainer)
    # a.1 normalises a.0's output, which now reads only half of the stem's channels
    assert not torch.allclose(fresh.a[1].running_mean, kept.a[1].running_mean)
    x = torch.cat([b[0] for b in itertools.islice(nf.TensorLoader(
        *trainer.train_data.tensors, batch_size=64, shuffle=True), 4)])  # fmt: skip
    with torch.no_grad():
        fresh.eval()
        pre = fresh.a[0](fresh.stem(x))
    torch.testing.assert_close(fresh.a[1].running_mean, pre.mean((0, 2, 3)), rtol=0.1, atol=0.05)


def test_l2_importance_ranks_channels_by_euclidean_norm():
    """One filter with a single weight of 4 (L1 = L2 = 4) against one of 27 weights of 0.2
    (L1 = 5.4, L2 = 1.04): L1 keeps the second, L2 the first."""
    model = nn.Sequential(nn.Conv2d(3, 2, 3, bias=False), nn.Conv2d(2, 1, 1, bias=False)).eval()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, 0, 0, 0] = 4.0
        model[0].weight[1] = 0.2
        model[1].weight.zero_()  # the reading kernels add nothing
    x = torch.randn(1, 3, 5, 5)
    by_l1 = prune_channels(model, x, ratio=0.5, importance="l1")
    by_l2 = prune_channels(model, x, ratio=0.5, importance="l2")
    assert torch.allclose(by_l1[0].weight, torch.full((1, 3, 3, 3), 0.2))
    assert by_l2[0].weight.abs().sum().item() == 4.0 and by_l2[0].weight[0, 0, 0, 0] == 4.0
    assert "p=2" in repr(ChannelPruner(importance="L2").importance)  # names in any case


def _eight_channels() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(_conv_bn(3, 8), nn.Conv2d(8, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.mark.parametrize(("min_channels", "kept"), [(1, 1), (3, 3), (20, 8)])
def test_min_channels_is_a_floor_on_every_group(min_channels, kept):
    x = torch.randn(1, 3, 4, 4)
    small = prune_channels(_eight_channels(), x, ratio=0.9, min_channels=min_channels)
    assert small[0][0].out_channels == small[1].in_channels == kept  # 8 - int(7.2) = 1


def test_min_channels_in_the_compressor(image_data):
    trainer = nf.Trainer(image_data, epochs=1, progress=False)
    pruner = ChannelPruner(ratio=0.9, min_channels=3, bn_recalibration_batches=0)
    small = pruner.apply(_eight_channels(), trainer)
    assert small[0][0].out_channels == 3
    assert pruner.stats["channels"] == {"0.0": [8, 3]}
    with pytest.raises(ConfigError, match="min_channels"):
        ChannelPruner(min_channels=0)


def test_feature_layer_norm_is_pruned_with_its_linear_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.arange(1.0, 9.0))
    first_half = lambda group: torch.arange(group.size, 0, -1).float()  # noqa: E731
    x = torch.randn(2, 6)
    small = prune_channels(model, x, ratio=0.5, importance=first_half)
    assert small[0].out_features == 4 and small[3].in_features == 4
    assert small[1].normalized_shape == (4,)
    assert small[1].weight.tolist() == [1.0, 2.0, 3.0, 4.0] and small[1].bias.shape == (4,)
    assert small(x).shape == (2, 3)


class _Fenced(nn.Module):
    """conv ``a`` -> an operation the analysis fences off -> convs ``b`` and ``c``."""

    def __init__(self, middle: nn.Module) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.middle = middle
        out = getattr(middle, "out_channels", 8)
        self.b = nn.Conv2d(out, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.middle(self.a(x)))
        return self.c(torch.relu(self.b(x))).mean((2, 3))


@pytest.mark.parametrize(
    "middle",
    [
        nn.GroupNorm(2, 8),
        nn.LayerNorm([8, 8, 8]),  # over channels and pixels: not a feature norm
        nn.ConvTranspose2d(8, 6, 2, stride=2),
    ],
    ids=["GroupNorm", "LayerNorm-CHW", "ConvTranspose2d"],
)
def test_group_norm_spatial_layer_norm_and_transposed_convs_are_fenced_off(middle):
    torch.manual_seed(0)
    model = _Fenced(middle).eval()
    x = torch.randn(2, 3, 8, 8)
    before = {n: m.weight.shape for n, m in model.named_modules() if hasattr(m, "weight")}
    graph = build_graph(model, x)
    assert [g.name for g in graph.groups] == ["b"]  # only what follows it is prunable
    small = prune_channels(model, x, ratio=0.5)
    after = {n: m.weight.shape for n, m in small.named_modules() if hasattr(m, "weight")}
    assert after["a"] == before["a"] and after["middle"] == before["middle"]
    assert after["b"][0] == 4 and after["c"][1] == 4
    assert small(x).shape == model(x).shape == (2, 4)


def test_fixed_names_the_operation_that_fences_a_module():
    graph = build_graph(_Fenced(nn.GroupNorm(2, 8)).eval(), torch.randn(1, 3, 8, 8))
    assert "GroupNorm" in graph.fixed["a"]
    assert "b" not in graph.fixed  # its output channels are a prunable group
