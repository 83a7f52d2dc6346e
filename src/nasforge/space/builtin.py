"""The built-in ``space`` plugins: ``nb201``, ``mlp`` and ``cnn``.

The definitions are framework-free; :meth:`build` imports the PyTorch modules lazily
(:mod:`nasforge.space._torch`), so defining and searching a space never loads torch.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.space.params import Choice, FloatRange, IntRange
from nasforge.validation import (
    check_choice,
    check_int,
    check_int_list,
    check_number,
    check_sequence,
    is_int,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = ["NB201_EDGES", "NB201_OPS", "CNNSpace", "MLPSpace", "NB201Space", "nb201_function"]

#: The five candidate operations of a NAS-Bench-201 edge, in the benchmark's order.
NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
#: The six edges ``(to_node, from_node)`` of the cell, in the order of the cell string.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def _edge_name(to: int, frm: int) -> str:
    return f"edge_{to}_{frm}"


_EDGE_NAMES = tuple(_edge_name(t, f) for t, f in NB201_EDGES)


@register("space", "nb201")
class NB201Space(Space):
    """NAS-Bench-201 cell space: 6 edges x 5 ops (15,625 cells), keyed by the cell string.

    Parameters are named ``edge_{to}_{from}`` (``edge_1_0``, ``edge_2_0``, ``edge_2_1``,
    ``edge_3_0``, ``edge_3_1``, ``edge_3_2``); :attr:`Arch.key` is the standard cell string,
    so a table keyed by it (the NAS-Bench-201 exports) can be looked up directly.
    :meth:`build` returns the benchmark's network (Dong & Yang, ICLR 2020): a 3x3 stem,
    three stages of ``cells_per_stage`` cells with ``channels`` x (1, 2, 4) channels joined
    by residual reduction blocks, then BN-ReLU, global pooling and a linear classifier.
    For ``(C, L)`` signals (``input_shape`` of length 2) it builds the same cell in 1-D:
    Conv1d, BatchNorm1d and AvgPool1d in place of their 2-D forms. :meth:`supernet` builds
    the network with a :class:`~nasforge.space.supernet.MixedOp` on every edge.

    Example::

        space = nf.build("space", "nb201")
        arch = space.from_key("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                              "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
        model = space.build(arch, num_classes=10)        # an nn.Module, 32x32 RGB input
    """

    def __init__(self) -> None:
        super().__init__(
            [Choice(_edge_name(t, f), NB201_OPS) for t, f in NB201_EDGES], name="nb201"
        )

    def format_key(self, values: Mapping[str, Any]) -> str:
        v = [values[name] for name in _EDGE_NAMES]
        return f"|{v[0]}~0|+|{v[1]}~0|{v[2]}~1|+|{v[3]}~0|{v[4]}~1|{v[5]}~2|"

    def parse_key(self, key: str) -> dict[str, Any]:
        expected = "a cell string like '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~2|'"
        if not isinstance(key, str):
            raise ConfigError.invalid("key", key, expected)
        nodes = key.split("+")
        values: dict[str, Any] = {}
        if len(nodes) != 3:
            raise ConfigError.invalid("key", key, expected)
        for node, text in enumerate(nodes, start=1):
            parts = [p for p in text.split("|") if p]
            if len(parts) != node:
                raise ConfigError.invalid("key", key, expected)
            for frm, part in enumerate(parts):
                op, _, src = part.partition("~")
                if src != str(frm):
                    raise ConfigError.invalid("key", key, expected)
                values[_edge_name(node, frm)] = self[_edge_name(node, frm)].parse(op)
        return values

    def canonical(self, arch: Arch) -> Arch:
        """The representative of ``arch``'s class of cells that compute the same function.

        Two cells are equivalent when their output node has the same expression (see
        :func:`nb201_function`): edges from a node the input never reaches or into a node
        that never reaches the output are dead, ``skip_connect`` is the identity, sums are
        unordered and ``avg_pool_3x3`` is linear. The 15,625 cells form 4,660 classes (the
        NAS-Bench-201 paper's ``to_unique_str`` finds 6,466: it drops only some zero terms
        and keeps pooling unexpanded; Dong & Yang, ICLR 2020). The representative is the
        member with the fewest non-``none`` edges, then the smallest cell string.
        """
        return self.from_key(_nb201_classes()[arch.key])

    @property
    def distinct_size(self) -> int:
        return len(set(_nb201_classes().values()))

    def build(  # type: ignore[override]
        self,
        arch: Arch,
        *,
        num_classes: int = 10,
        input_shape: Sequence[int] = (3, 32, 32),
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> nn.Module:
        """The NAS-Bench-201 network for ``arch``: 2-D for ``(C, H, W)`` inputs, 1-D for
        ``(C, L)`` signals."""
        from nasforge.space._torch import NB201Network

        arch = self.arch(arch)
        ops = [arch[_edge_name(t, f)] for t, f in NB201_EDGES]
        return NB201Network(
            ops, **_nb201_options(input_shape, num_classes, channels, cells_per_stage)
        )

    def supernet(  # type: ignore[override]
        self,
        *,
        num_classes: int = 10,
        input_shape: Sequence[int] = (3, 32, 32),
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> nn.Module:
        """The network of :meth:`build` with a mixed op of the five ops on every edge of
        every cell; the mixed ops are named by their edge, so one arch sets all cells."""
        from nasforge.space._torch import NB201Network, nb201_op
        from nasforge.space.supernet import MixedOp

        def mixed(index: int, c: int, dims: int) -> nn.Module:
            return MixedOp(_EDGE_NAMES[index], {op: nb201_op(op, c, dims) for op in NB201_OPS})

        return NB201Network(
            mixed, **_nb201_options(input_shape, num_classes, channels, cells_per_stage)
        )


def _nb201_options(
    input_shape: Any, num_classes: Any, channels: Any, cells_per_stage: Any
) -> dict[str, int]:
    shape = _check_shape(input_shape, dims=(2, 3), space="nb201")
    return {
        "in_channels": shape[0],
        "num_classes": check_int(num_classes, "num_classes", low=1),
        "channels": check_int(channels, "channels", low=1),
        "cells_per_stage": check_int(cells_per_stage, "cells_per_stage", low=1),
        "dims": len(shape) - 1,
    }


def nb201_function(ops: Sequence[str]) -> str:
    """The function an NB201 cell computes, as a canonical expression of its input ``x``.

    ``ops`` are the six edge ops in cell-string order. Each node is a sorted multiset of
    terms: ``none`` edges and edges from a zero node add nothing, ``skip_connect`` passes
    its source's terms on, ``avg_pool_3x3`` (linear) pools each term, and a convolution adds
    one term ``op(sum of its source's terms)``. ``"0"`` is the all-zero cell.

    Example::

        nb201_function(["skip_connect", "none", "nor_conv_3x3", "none", "none", "skip_connect"])
        # 'nor_conv_3x3(x)', the same as a lone conv on edge 2 <- 0 followed by a skip
    """
    nodes: list[tuple[str, ...]] = [("x",)]
    for node in (1, 2, 3):
        terms: list[str] = []
        for (to, frm), op in zip(NB201_EDGES, ops, strict=True):
            if to != node or op == "none" or not nodes[frm]:
                continue
            if op == "skip_connect":
                terms.extend(nodes[frm])
            elif op == "avg_pool_3x3":
                terms.extend(f"{op}({t})" for t in nodes[frm])
            else:
                terms.append(f"{op}({'+'.join(nodes[frm])})")
        nodes.append(tuple(sorted(terms)))
    return "+".join(nodes[3]) or "0"


@functools.cache
def _nb201_classes() -> dict[str, str]:
    """Cell string -> cell string of its class representative (computed once, ~0.2 s)."""
    space_format = NB201Space.format_key
    members: dict[str, list[tuple[int, str]]] = {}
    keys: dict[str, str] = {}
    for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES)):
        key = space_format(None, dict(zip(_EDGE_NAMES, ops, strict=True)))  # type: ignore[arg-type]
        function = nb201_function(ops)
        keys[key] = function
        members.setdefault(function, []).append((sum(op != "none" for op in ops), key))
    representative = {function: min(found)[1] for function, found in members.items()}
    return {key: representative[function] for key, function in keys.items()}


@register("space", "mlp")
class MLPSpace(Space):
    """Multi-layer perceptrons: depth, per-layer width, activation, dropout, normalisation.

    ``width_i`` is active when ``depth >= i``. :meth:`build` flattens any input shape.

    Example::

        space = nf.build("space", "mlp", max_depth=3)
        model = space.build(space.sample(seed=0), input_shape=(1, 40), num_classes=10)
    """

    def __init__(
        self,
        *,
        max_depth: int = 4,
        widths: Sequence[int] = (32, 64, 128, 256, 512),
        activations: Sequence[str] = ("relu", "gelu", "silu", "tanh"),
        max_dropout: float = 0.5,
        norms: Sequence[str] = ("none", "batch", "layer"),
    ) -> None:
        check_int(max_depth, "mlp.max_depth", low=1, high=32)
        check_number(max_dropout, "mlp.max_dropout", low=0, high=1, high_open=True)
        activations = _names("mlp.activations", activations, _ACTIVATIONS)
        norms = _names("mlp.norms", norms, ("none", "batch", "layer"))
        widths = check_int_list(widths, "mlp.widths", low=1, distinct=True)
        params: list[Any] = [IntRange("depth", 1, max_depth)]
        for i in range(1, max_depth + 1):
            when = {"depth": list(range(i, max_depth + 1))} if i > 1 else None
            params.append(Choice(f"width_{i}", list(widths), when=when))
        params.append(Choice("activation", list(activations)))
        if max_dropout > 0:
            params.append(FloatRange("dropout", 0.0, float(max_dropout)))
        params.append(Choice("norm", list(norms)))
        super().__init__(params, name="mlp")

    def build(  # type: ignore[override]
        self, arch: Arch, *, input_shape: Sequence[int], num_classes: int
    ) -> nn.Module:
        """An ``nn.Sequential`` MLP for inputs of ``input_shape`` (flattened)."""
        from nasforge.space._torch import make_mlp

        arch = self.arch(arch)
        shape = _check_shape(input_shape, dims=(1, 2, 3), space="mlp")
        check_int(num_classes, "num_classes", low=1)
        widths = [arch[f"width_{i}"] for i in range(1, arch["depth"] + 1)]
        return make_mlp(
            in_features=_prod(shape),
            widths=widths,
            activation=arch["activation"],
            dropout=arch.get("dropout", 0.0),
            norm=arch["norm"],
            num_classes=num_classes,
        )


@register("space", "cnn")
class CNNSpace(Space):
    """Macro CNNs for 1-D signals ``(C, L)`` or 2-D images ``(C, H, W)``: number of stages,
    and per stage channels, kernel size and blocks (conv-BN-ReLU), plus the pooling.
    Feature vectors ``(F,)`` are read as one-channel signals of length ``F``: the network
    then starts with an ``nn.Unflatten``, so it takes the vectors as they are.

    Stage ``i`` parameters (``channels_i``, ``kernel_i``, ``blocks_i``) are active when
    ``stages >= i``; stages after the first downsample by 2 with ``pooling`` (max or avg)
    while the signal is long enough. The head is global average pooling and a linear layer.

    Example::

        space = nf.build("space", "cnn")
        net = space.build(space.sample(seed=0), input_shape=(1, 40), num_classes=10)
    """

    def __init__(
        self,
        *,
        max_stages: int = 3,
        channels: Sequence[int] = (8, 16, 32, 64),
        kernels: Sequence[int] = (3, 5, 7),
        max_blocks: int = 3,
        poolings: Sequence[str] = ("max", "avg"),
    ) -> None:
        check_int(max_stages, "cnn.max_stages", low=1, high=16)
        check_int(max_blocks, "cnn.max_blocks", low=1, high=16)
        kernels = check_int_list(kernels, "cnn.kernels", low=1, distinct=True)
        if any(k % 2 == 0 for k in kernels):
            raise ConfigError.invalid(
                "cnn.kernels", kernels, "a list of distinct odd positive integers"
            )
        channels = check_int_list(channels, "cnn.channels", low=1, distinct=True)
        poolings = _names("cnn.poolings", poolings, ("max", "avg"))
        params: list[Any] = [IntRange("stages", 1, max_stages)]
        for i in range(1, max_stages + 1):
            when = {"stages": list(range(i, max_stages + 1))} if i > 1 else None
            params += [
                Choice(f"channels_{i}", list(channels), when=when),
                Choice(f"kernel_{i}", list(kernels), when=when),
                IntRange(f"blocks_{i}", 1, max_blocks, when=when),
            ]
        params.append(Choice("pooling", list(poolings)))
        super().__init__(params, name="cnn")

    def build(  # type: ignore[override]
        self, arch: Arch, *, input_shape: Sequence[int], num_classes: int
    ) -> nn.Module:
        """A Conv1d network for ``(C, L)`` inputs (and ``(F,)`` vectors), a Conv2d network
        for ``(C, H, W)``."""
        from torch import nn

        from nasforge.space._torch import make_cnn

        arch = self.arch(arch)
        shape = _check_shape(input_shape, dims=(1, 2, 3), space="cnn")
        check_int(num_classes, "num_classes", low=1)
        stages = [
            (arch[f"channels_{i}"], arch[f"kernel_{i}"], arch[f"blocks_{i}"])
            for i in range(1, arch["stages"] + 1)
        ]
        if len(shape) == 1:  # feature vectors, read as one-channel signals
            signal = (1, *shape)
            net = make_cnn(signal, stages=stages, pooling=arch["pooling"], num_classes=num_classes)
            return nn.Sequential(nn.Unflatten(1, signal), net)
        return make_cnn(shape, stages=stages, pooling=arch["pooling"], num_classes=num_classes)


_ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "elu", "leaky_relu")


def _names(field: str, values: Any, allowed: Sequence[str]) -> list[str]:
    return check_sequence(
        values,
        field,
        lambda v, f: check_choice(v, f, allowed),
        distinct=True,
        expected=f"a list of distinct values drawn from {list(allowed)}",
    )


def _check_shape(shape: Any, *, dims: tuple[int, ...], space: str) -> tuple[int, ...]:
    ok = isinstance(shape, Sequence) and len(shape) in dims
    ok = ok and all(is_int(s) and s >= 1 for s in shape)
    if not ok:
        forms = {1: "(F,)", 2: "(C, L)", 3: "(C, H, W)"}
        raise ConfigError.invalid(
            "input_shape",
            shape,
            " or ".join(forms[d] for d in dims) + " of positive integers (no batch dimension)",
            hint=f"the {space} space builds for one sample's shape, e.g. data.input_shape",
        )
    return tuple(shape)


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out
