"""PyTorch modules built by the built-in spaces (imported only by ``Space.build``).

Every network is made of plain modules with no data-dependent control flow, so
``torch.fx.symbolic_trace`` can trace it (the structured pruner relies on that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["NB201Network", "make_cnn", "make_mlp", "nb201_op"]


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _batch_norm(dims: int) -> type[nn.Module]:
    return nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d


def _avg_pool(dims: int) -> type[nn.Module]:
    return nn.AvgPool1d if dims == 1 else nn.AvgPool2d


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BatchNorm, the NAS-Bench-201 convolution (``dims``: 1-D or 2-D)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dims: int = 2) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            _conv(dims)(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            _batch_norm(dims)(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero tensor shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def nb201_op(name: str, channels: int, dims: int = 2) -> nn.Module:
    """The module of one NAS-Bench-201 operation (:data:`~nasforge.space.NB201_OPS`)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, dims)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, dims)
    if name == "avg_pool_3x3":
        return _avg_pool(dims)(3, stride=1, padding=1, count_include_pad=False)
    return Zero()


EdgeFactory = Callable[[int, int, int], nn.Module | None]
"""``(edge index, channels, dims) -> module`` of one cell edge, or None for no edge."""


def _edge_factory(cell: Sequence[str] | EdgeFactory) -> EdgeFactory:
    if callable(cell):
        return cell
    ops = list(cell)

    def make_edge(index: int, channels: int, dims: int) -> nn.Module | None:
        return None if ops[index] == "none" else nb201_op(ops[index], channels, dims)

    return make_edge


class NB201Cell(nn.Module):
    """A 4-node NAS-Bench-201 cell: node j is the sum of ``op(j, i)(node i)`` over ``i < j``.

    ``cell`` is the six edge ops in cell-string order, or an :data:`EdgeFactory`. A
    ``none`` edge (a None module) is left out of the sums; a node whose incoming edges are
    all ``none`` is zero.
    """

    def __init__(self, cell: Sequence[str] | EdgeFactory, channels: int, dims: int = 2) -> None:
        super().__init__()
        make_edge = _edge_factory(cell)
        edges = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
        self.edges = nn.ModuleDict()
        self.inputs: dict[int, list[tuple[int, str]]] = {1: [], 2: [], 3: []}
        for index, (to, frm) in enumerate(edges):
            module = make_edge(index, channels, dims)
            if module is not None:
                name = f"{to}_{frm}"
                self.edges[name] = module
                self.inputs[to].append((frm, name))
        self.zero = Zero()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            incoming = [self.edges[name](nodes[frm]) for frm, name in self.inputs[to]]
            if not incoming:
                nodes.append(self.zero(x))
                continue
            total = incoming[0]
            for term in incoming[1:]:
                total = total + term
            nodes.append(total)
        return nodes[3]


class ResidualReduction(nn.Module):
    """The NAS-Bench-201 reduction block: a stride-2 basic residual block."""

    def __init__(self, c_in: int, c_out: int, dims: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, dims)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, dims)
        self.shortcut = nn.Sequential(
            _avg_pool(dims)(2, stride=2, padding=0),
            _conv(dims)(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton around one cell, for ``(C, L)`` signals
    (``dims=1``) or ``(C, H, W)`` images (``dims=2``).

    ``cell`` is the six edge ops in cell-string order, or an :data:`EdgeFactory` (the
    supernet's mixed ops).
    """

    def __init__(
        self,
        cell: Sequence[str] | EdgeFactory,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        dims: int = 2,
    ) -> None:
        super().__init__()
        make_edge = _edge_factory(cell)
        self.stem = nn.Sequential(
            _conv(dims)(in_channels, channels, 3, padding=1, bias=False),
            _batch_norm(dims)(channels),
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, c * 2, dims))
                c *= 2
            layers.extend(NB201Cell(make_edge, c, dims) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        pool = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            _batch_norm(dims)(c),
            nn.ReLU(inplace=False),
            pool,
            nn.Flatten(),
            nn.Linear(c, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def make_mlp(
    *,
    in_features: int,
    widths: Sequence[int],
    activation: str,
    dropout: float,
    norm: str,
    num_classes: int,
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    prev = in_features
    for width in widths:
        layers.append(nn.Linear(prev, width))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append(_ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = width
    layers.append(nn.Linear(prev, num_classes))
    return nn.Sequential(*layers)


def make_cnn(
    input_shape: Sequence[int],
    *,
    stages: Sequence[tuple[int, int, int]],
    pooling: str,
    num_classes: int,
) -> nn.Sequential:
    dims = len(input_shape) - 1
    conv, bn = _conv(dims), _batch_norm(dims)
    pool = {
        ("max", 1): nn.MaxPool1d,
        ("avg", 1): nn.AvgPool1d,
        ("max", 2): nn.MaxPool2d,
        ("avg", 2): nn.AvgPool2d,
    }[(pooling, dims)]
    head_pool = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)
    layers: list[nn.Module] = []
    prev = input_shape[0]
    extent = min(input_shape[1:])
    for i, (channels, kernel, blocks) in enumerate(stages):
        if i > 0 and extent >= 2:  # downsample between stages while the signal allows it
            layers.append(pool(2))
            extent //= 2
        for _ in range(blocks):
            layers += [conv(prev, channels, kernel, padding=kernel // 2, bias=False), bn(channels)]
            layers.append(nn.ReLU(inplace=False))
            prev = channels
    layers += [head_pool, nn.Flatten(), nn.Linear(prev, num_classes)]
    return nn.Sequential(*layers)
