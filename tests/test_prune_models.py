"""Structured pruning beyond plain CNNs: grouped convolutions, channels-last blocks
(ConvNeXt), attention heads (ViT), sizes read from tensors, and the warning that names
what was left whole.

The exactness tests zero the weights of the channels (or heads) to be removed, score
channels by the filters that make them, and check that the pruned model computes exactly
what the zeroed one does: any slice taken from the wrong place would change the output.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torchvision.models import convnext, resnet, swin_transformer, vision_transformer

import nasforge as nf
from nasforge.compress.prune import build_graph
from nasforge.compress.prune.attention import (
    PrunedMultiheadAttention,
    PrunedShiftedWindowAttention,
)


def made_here(group: nf.ChannelGroup) -> torch.Tensor:
    """Importance: the L1 norm of the weights that produce each channel (or head)."""
    scores = torch.zeros(group.size)
    for member in group.members:
        if member.role == "out":
            rows = member.weight.detach().abs().movedim(member.dim, 0)
            scores += rows.reshape(rows.shape[0], -1).sum(1)[member.index].sum(1)
    return scores


def quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nf.PruningWarning)
        return fn(*args, **kwargs)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.g = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(self.g(torch.relu(self.a(x)))))


def test_a_grouped_convolution_keeps_its_groups_and_loses_channels_in_each():
    torch.manual_seed(0)
    model = Grouped().eval()
    with torch.no_grad():
        for c in (0, 3, 4, 7):  # one input channel in each group of two
            model.a.weight[c] = 0
            model.a.bias[c] = 0
        for c in (1, 2, 5, 6):  # one output channel in each group of two
            model.g.weight[c] = 0
            model.g.bias[c] = 0
            model.bn.bias[c] = 0
    x = torch.randn(2, 3, 6, 6)
    groups = {g.name: g.blocks for g in build_graph(model, x).groups}
    assert groups == {"a": 4, "g": 4}
    small = nf.prune_channels(model, x, ratio=0.5, importance=made_here)
    assert (small.g.groups, small.g.in_channels, small.g.out_channels) == (4, 4, 4)
    assert small.g.weight.shape == (4, 1, 3, 3)
    torch.testing.assert_close(small(x), model(x))


def test_keep_counts_of_a_grouped_convolution_must_split_evenly():
    x = torch.randn(2, 3, 6, 6)
    with pytest.raises(nf.ConfigError, match="multiple of 4"):
        nf.prune_channels(Grouped().eval(), x, keep={"a": 6})


class ChannelsLast(nn.Module):
    """A ConvNeXt block: depthwise conv, permute, LayerNorm, MLP, layer scale, residual."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.norm = nn.LayerNorm(8)
        self.up, self.down = nn.Linear(8, 16), nn.Linear(16, 8)
        self.scale = nn.Parameter(torch.rand(8, 1, 1))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(nn.functional.gelu(self.up(self.norm(y))))
        x = x + self.scale * y.permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


def test_channels_last_blocks_prune_their_hidden_width_and_their_stream():
    torch.manual_seed(0)
    model = ChannelsLast().eval()
    x = torch.randn(2, 3, 5, 5)
    graph = build_graph(model, x)
    groups = {g.name: sorted({m.module_name for m in g.members}) for g in graph.groups}
    assert groups == {
        "stem": ["", "down", "dw", "head", "norm", "stem", "up"],  # "": the layer scale
        "up": ["down", "up"],
    }
    with torch.no_grad():
        model.up.weight[::2] = 0  # half the hidden features are zero: GELU(0) = 0
        model.up.bias[::2] = 0
    small = nf.prune_channels(model, x, ratio=0.5, importance=made_here, keep={"stem": 8})
    assert small.up.out_features == small.down.in_features == 8
    torch.testing.assert_close(small(x), model(x))
    smaller = nf.prune_channels(model, x, ratio=0.5)
    assert smaller.norm.normalized_shape == (4,) and smaller.scale.shape == (4, 1, 1)
    assert smaller(x).shape == (2, 3)


def tiny_vit() -> nn.Module:
    return vision_transformer.VisionTransformer(
        image_size=16, patch_size=8, num_layers=2, num_heads=4, hidden_dim=16, mlp_dim=32,
        num_classes=3,
    ).eval()  # fmt: skip


def test_attention_heads_are_pruned_whole():
    torch.manual_seed(0)
    model = tiny_vit()
    attention = model.encoder.layers[0].self_attention
    with torch.no_grad():
        for head in (1, 3):  # query, key and value rows of heads 1 and 3
            for part in range(3):
                rows = slice(part * 16 + head * 4, part * 16 + head * 4 + 4)
                attention.in_proj_weight[rows] = 0
                attention.in_proj_bias[rows] = 0
    x = torch.randn(2, 3, 16, 16)
    graph = build_graph(model, x)
    units = {g.name: (g.unit, g.size) for g in graph.groups}
    assert units["encoder.layers.encoder_layer_0.self_attention"] == ("heads", 4)
    assert units["encoder.layers.encoder_layer_0.mlp.0"] == ("channels", 32)
    keep = {g.name: g.size for g in graph.groups if g.unit == "channels"}
    small = nf.prune_channels(model, x, ratio=0.5, importance=made_here, keep=keep)
    pruned = small.encoder.layers[0].self_attention
    assert isinstance(pruned, PrunedMultiheadAttention) and pruned.num_heads == 2
    torch.testing.assert_close(small(x), model(x))
    traced = torch.jit.trace(small, x)
    torch.testing.assert_close(traced(x), small(x))


def tiny_swin() -> nn.Module:
    return swin_transformer.SwinTransformer([4, 4], 16, [2], [4], [2, 2], num_classes=3).eval()


def test_swin_window_attention_heads_are_pruned_whole():
    torch.manual_seed(0)
    model = tiny_swin()
    x = torch.randn(2, 3, 20, 20)  # 5x5 patches: padded windows, shifted in the second block
    for block in model.features[1]:
        with torch.no_grad():
            for head in (0, 2):
                rows = [part * 16 + head * 4 + i for part in range(3) for i in range(4)]
                block.attn.qkv.weight[rows] = 0
                block.attn.qkv.bias[rows] = 0
    graph = build_graph(model, x)
    assert {g.name: g.unit for g in graph.groups if g.unit == "heads"} == {
        "features.1.0.attn.qkv": "heads",
        "features.1.1.attn.qkv": "heads",
    }
    keep = {g.name: g.size for g in graph.groups if g.unit == "channels"}
    small = nf.prune_channels(model, x, ratio=0.5, importance=made_here, keep=keep)
    pruned = small.features[1][1].attn
    assert isinstance(pruned, PrunedShiftedWindowAttention) and pruned.num_heads == 2
    assert pruned.relative_position_bias_table.shape[1] == 2
    torch.testing.assert_close(small(x), model(x))


@pytest.mark.parametrize("batch_first", [False, True])
def test_pruned_attention_with_every_head_computes_what_multihead_attention_does(batch_first):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    same = PrunedMultiheadAttention.from_attention(reference, torch.arange(2)).eval()
    batch, length, keys = 3, 5, 7
    q, kv = torch.randn(batch, length, 8), torch.randn(batch, keys, 8)
    if not batch_first:
        q, kv = q.transpose(0, 1), kv.transpose(0, 1)
    padding = torch.zeros(batch, keys, dtype=torch.bool)
    padding[:, -2:] = True
    mask = torch.zeros(length, keys, dtype=torch.bool)
    mask[:, 0] = True
    for args, kwargs in [
        ((q, q, q), {"need_weights": False}),
        ((q, kv, kv), {"need_weights": True}),
        ((q, kv, kv), {"key_padding_mask": padding, "need_weights": False}),
        ((q, kv, kv), {"attn_mask": mask, "need_weights": True}),
    ]:
        expected, expected_weights = reference(*args, **kwargs)
        got, weights = same(*args, **kwargs)
        torch.testing.assert_close(got, expected)
        if expected_weights is not None:
            torch.testing.assert_close(weights, expected_weights)


class SizeReader(nn.Module):
    """Reshapes one tensor with the channel count read from another (as MaxViT does)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm_in = nn.Linear(4, 6)
        self.qkv = nn.Linear(6, 6)
        self.merge = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_in(x)
        b, n, d = x.shape
        mixed = torch.chunk(self.qkv(x), 2, dim=-1)[0]
        return self.merge(torch.cat([mixed, mixed], -1).reshape(b, n, d)) + x


def test_a_channel_count_read_as_a_size_fixes_those_channels():
    x = torch.randn(2, 3, 4)
    graph = build_graph(SizeReader().eval(), x)
    assert graph.skipped["norm_in"] == "reshape uses the number of channels"
    small = quietly(nf.prune_channels, SizeReader().eval(), x, ratio=0.5)
    assert small(x).shape == (2, 3, 6)


def test_pruning_warns_about_the_layers_it_leaves_whole():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.GroupNorm(2, 8), nn.Conv2d(8, 8, 1), nn.ReLU(),
                          nn.Conv2d(8, 2, 1)).eval()  # fmt: skip
    x = torch.randn(2, 3, 4, 4)
    with pytest.warns(
        nf.PruningWarning, match=r"left the channels of 1 layer\(s\) whole: 0: 1 \(GroupNorm\)"
    ):
        small = nf.prune_channels(model, x, ratio=0.5)
    assert small[2].out_channels == 4  # the rest is pruned
    with pytest.warns(nf.PruningWarning, match="no channels it can remove"):
        nf.prune_channels(nn.Sequential(nn.Conv2d(3, 2, 1)), x, ratio=0.5)


def test_the_compressor_reports_what_it_skipped():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.GroupNorm(2, 8), nn.Conv2d(8, 8, 1), nn.ReLU(),
                          nn.Conv2d(8, 2, 1), nn.Flatten(), nn.LazyLinear(3))  # fmt: skip
    x = torch.randn(8, 3, 4, 4)
    model(x)
    data = (x, torch.randint(0, 3, (8,)))
    trainer = nf.Trainer(data, epochs=1, progress=False)
    pruner = nf.build("compressor", "channel_prune", ratio=0.5, bn_recalibration_batches=0)
    with pytest.warns(nf.PruningWarning):
        pruner.apply(model, trainer)
    assert pruner.stats["skipped"] == {"0": "1 (GroupNorm) is not understood"}


@pytest.mark.parametrize(
    ("build", "size", "removed"),
    [
        (lambda: resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], num_classes=3, groups=4,
                               width_per_group=8), 32, 0.4),
        (lambda: convnext.ConvNeXt([convnext.CNBlockConfig(8, 16, 1),
                                    convnext.CNBlockConfig(16, None, 1)], num_classes=3), 32, 0.4),
        (tiny_vit, 16, 0.2),
        (lambda: swin_transformer.SwinTransformer([4, 4], 16, [1, 1], [2, 2], [2, 2],
                                                  num_classes=3), 32, 0.1),
    ],
    ids=["resnext", "convnext", "vit", "swin"],
)  # fmt: skip
def test_torchvision_architectures_lose_parameters_and_keep_their_outputs(build, size, removed):
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, size, size)
    small = quietly(nf.prune_channels, model, x, ratio=0.5)
    assert params(small) <= (1 - removed) * params(model)
    assert small(x).shape == model(x).shape == (2, 3)


def test_an_addition_by_keyword_couples_both_operands():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.add(self.a(x), other=self.b(x)))

    x = torch.randn(2, 3, 4, 4)
    (group,) = build_graph(Net().eval(), x).groups
    assert sorted({m.module_name for m in group.members}) == ["a", "b", "head"]
    assert nf.prune_channels(Net().eval(), x, ratio=0.5)(x).shape == (2, 2, 4, 4)
