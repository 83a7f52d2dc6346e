"""What is coupled: the channel dependency graph of a model, found by tracing it with torch.fx.

Removing output channel ``c`` of a convolution also removes entry ``c`` of the batch norm
after it, input channel ``c`` of every layer that reads it, the same channel of every
tensor added to it (residual connections), its slice of every concatenation, and the
block of features it becomes after flattening. Channels need not be in dimension 1: a
permute or transpose moves them, and a linear layer or ``LayerNorm`` over the last
dimension of a channels-last tensor (ConvNeXt, transformer MLPs) reads them there. A
grouped convolution keeps its groups and loses the same number of channels in each; the
heads of an ``nn.MultiheadAttention`` form a group of their own (ViT).
:func:`build_graph` traces the model once, propagates example shapes, and collects these
couplings into :class:`ChannelGroup`\\ s: each group is a set of channels (or heads) that
must be kept or removed together, and lists every weight slice that goes with each of them.

Anything the analysis does not understand (an unknown operation, a reshape with constant
sizes, the model's inputs and outputs, layers the user excludes) fences off the channels
it touches: they are never pruned, so an unfamiliar model is pruned less, never broken,
and :attr:`DependencyGraph.skipped` says which layers were left alone and why. A model
that cannot be traced raises :class:`~nasforge.UnsupportedModelError` naming the layer.

The analysis is independent of any pruning policy::

    graph = build_graph(model, torch.randn(1, 3, 32, 32))
    for group in graph.groups:
        print(group.name, group.size, [m.module_name for m in group.members])
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.modules.batchnorm import _BatchNorm

from nasforge.errors import ConfigError, UnsupportedModelError, close_matches

__all__ = ["ChannelGroup", "DependencyGraph", "GroupMember", "build_graph"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Segment:
    space: int  # a channel space (union-find element)
    repeat: int  # consecutive features per channel (>1 after flattening C x H x W)


_Layout = tuple[_Segment, ...]  # how the channel dimension is made of channel spaces, in order


@dataclass(frozen=True)
class _Feat:
    """Where a tensor's channels are: dimension ``dim`` (never negative), laid out as ``layout``."""

    dim: int
    layout: _Layout


@dataclass(frozen=True)
class _Size:
    """A number (or, with ``shape_of``, a whole shape) read from tensor sizes, with the
    channels whose count it depends on: a layer that uses it would break if they changed."""

    feats: tuple[_Feat, ...] = ()
    shape_of: _Feat | None = None  # ``x.shape`` or ``x.size()`` of a tensor with channels
    ndim: int = 0


@dataclass
class _Spec:
    """How one prunable module's tensors depend on channel spaces."""

    kind: str  # "conv", "grouped", "depthwise", "linear" or "norm"
    out: _Layout  # layout of the output channel dimension
    inp: _Layout  # layout of the input channel dimension (== out for depthwise and norm)


@dataclass
class _ParamSpec:
    """A parameter or buffer used directly by the forward (a ConvNeXt layer scale, the
    weight of a functional layer norm): sliced along ``dim`` as ``layout`` says."""

    owner: str  # the module that holds it
    tensor: str
    dim: int
    layout: _Layout


@dataclass(frozen=True)
class GroupMember:
    """One weight slice coupled to a group: ``module.<tensor>`` along ``dim``.

    ``index[c]`` lists the positions along ``dim`` that belong to channel ``c`` of the
    group (several after flattening or when one tensor reads the same channels twice).
    ``role`` is ``"out"`` (the channel is produced here), ``"in"`` (read here),
    ``"norm"`` (a normalisation's scale) or ``"depthwise"``.
    """

    module_name: str
    module: nn.Module
    tensor: str
    dim: int
    index: torch.Tensor
    role: str

    @property
    def weight(self) -> torch.Tensor:
        """The tensor (a parameter) this member slices."""
        return getattr(self.module, self.tensor)


@dataclass
class ChannelGroup:
    """Channels that are kept or removed together, with every weight slice they own.

    ``blocks`` > 1 splits the channels into that many equal consecutive blocks that must
    keep equally many channels (the groups of a grouped convolution). ``unit`` is
    ``"channels"``, or ``"heads"`` for the attention heads of one attention layer.
    """

    id: int
    size: int
    members: list[GroupMember] = field(default_factory=list)
    blocks: int = 1
    unit: str = "channels"

    @property
    def name(self) -> str:
        """A stable name: the first module that produces these channels."""
        producers = self.producers
        return producers[0] if producers else self.members[0].module_name

    @property
    def producers(self) -> list[str]:
        """Names of the modules whose outputs are these channels, in graph order."""
        return [m.module_name for m in self.members if m.role in ("out",)]

    def __repr__(self) -> str:
        modules = sorted({m.module_name for m in self.members})
        return f"ChannelGroup({self.name!r}, size={self.size}, modules={modules})"


class _Spaces:
    """Union-find over channel spaces; a fixed space (and all joined to it) is never pruned."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.reason: list[str | None] = []  # why a root is fixed, None if prunable
        self.blocks: list[int] = []  # equal blocks that keep equally many channels

    def new(self, size: int, fixed: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.reason.append(fixed)
        self.blocks.append(1)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.parent[rb] = ra
        self.reason[ra] = self.reason[ra] or self.reason[rb]
        self.split(ra, self.blocks[rb], "channels split into differently many groups")

    def fix(self, i: int, reason: str) -> None:
        root = self.find(i)
        if self.reason[root] is None:
            self.reason[root] = reason

    def split(self, i: int, blocks: int, reason: str) -> None:
        """Channels of ``i`` come in ``blocks`` equal blocks (finer blocks satisfy coarser)."""
        root = self.find(i)
        finer = math.lcm(self.blocks[root], blocks)
        if self.size[root] % finer:
            self.fix(root, reason)
        else:
            self.blocks[root] = finer


_PASSTHROUGH_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.Upsample,
    nn.ZeroPad2d,
    nn.ConstantPad2d,
    nn.ReflectionPad2d,
)
_PASSTHROUGH_FUNCTIONS = frozenset(
    {
        "relu", "relu_", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "mish",
        "hardtanh", "hardswish", "hardsigmoid", "sigmoid", "tanh", "softplus", "dropout",
        "dropout1d", "dropout2d", "dropout3d", "max_pool1d", "max_pool2d", "max_pool3d",
        "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
        "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
        "adaptive_max_pool2d", "adaptive_max_pool3d", "interpolate", "pad", "contiguous",
        "clone", "detach", "float", "neg", "abs", "to", "sigmoid_", "tanh_", "clamp",
        "clamp_min", "clamp_max", "stochastic_depth",
    }
)  # fmt: skip
_ELEMENTWISE = frozenset(
    {"add", "iadd", "sub", "isub", "mul", "imul", "truediv", "itruediv", "div", "add_", "mul_"}
)
_REDUCTIONS = frozenset({"mean", "sum", "amax", "amin"})
_KNOWN = _REDUCTIONS | {
    "flatten", "view", "reshape", "permute", "transpose", "swapaxes", "getitem", "layer_norm"
}  # fmt: skip


#: Reasons a channel is fixed by design (besides the user's ``exclude``), not because the
#: analysis gave up.
_BY_DESIGN = ("model input", "model output")


def _target_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def _shape(node: Any) -> torch.Size | None:
    if not isinstance(node, fx.Node):
        return None
    meta = node.meta.get("tensor_meta")
    return getattr(meta, "shape", None)


def _nodes_in(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda n: found.append(n) or n)
    return found


def _arg(node: fx.Node, position: int, name: str, default: Any = None) -> Any:
    """Argument ``name`` of a call, given by position or keyword."""
    if len(node.args) > position:
        return node.args[position]
    return node.kwargs.get(name, default)


def _dims_arg(node: fx.Node) -> list[Any]:
    """The dimensions of ``x.permute(0, 2, 1)``, ``x.permute([0, 2, 1])`` or ``torch.permute``."""
    rest = node.args[1:]
    if len(rest) == 1 and isinstance(rest[0], list | tuple):
        return list(rest[0])
    return list(rest) or list(node.kwargs.get("dims", ()))


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _window_attention(module: nn.Module) -> bool:
    """torchvision's Swin (v1) ``ShiftedWindowAttention``, whose heads are pruned whole."""
    kind = type(module)
    return kind.__name__ == "ShiftedWindowAttention" and kind.__module__.startswith(
        "torchvision.models.swin"
    )


def _plain_layer_norm(module: nn.Module) -> bool:
    """An ``nn.LayerNorm`` over one dimension that normalises as ``nn.LayerNorm`` does."""
    return (
        isinstance(module, nn.LayerNorm)
        and type(module).forward is nn.LayerNorm.forward
        and len(module.normalized_shape) == 1
    )


class _Tracer(fx.Tracer):
    """A tracer that treats chosen modules as opaque leaves and remembers where it failed."""

    def __init__(self, leaves: Sequence[str]) -> None:
        super().__init__()
        self.leaves = tuple(leaves)
        self.stack: list[str] = []
        self.failed_in: str | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            _matches(module_qualified_name, self.leaves)
            or _window_attention(m)
            or super().is_leaf_module(m, module_qualified_name)
        )

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        self.stack.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.stack[-1]
            raise
        finally:
            self.stack.pop()


class DependencyGraph:
    """The prunable channel groups of a model (see the module docstring).

    Build it with :func:`build_graph`; ``groups`` lists the groups that may be pruned and
    ``fixed`` maps every module output that may not to the reason why.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.spaces = _Spaces()
        self.specs: dict[str, _Spec] = {}
        self.params: dict[str, _ParamSpec] = {}
        self.attention: dict[str, int] = {}  # attention layer -> its heads' space
        self.fixed: dict[str, str] = {}
        self.groups: list[ChannelGroup] = []

    @property
    def skipped(self) -> dict[str, str]:
        """Layers left whole because the analysis did not understand something, with why
        (``fixed`` less the model's inputs and outputs)."""
        return {
            name: why
            for name, why in self.fixed.items()
            if why not in _BY_DESIGN and not why.endswith(" is excluded")
        }

    # ------------------------------------------------------------------ building
    def _new(self, node: fx.Node, fixed: str | None = None, dim: int = 1) -> _Feat | None:
        shape = _shape(node)
        if shape is None or len(shape) < 2:
            return None
        dim = dim % len(shape)
        return _Feat(dim, (_Segment(self.spaces.new(int(shape[dim]), fixed), 1),))

    def _fix(self, feat: Any, reason: str) -> None:
        if isinstance(feat, tuple):  # the outputs of a module returning several tensors
            for item in feat:
                self._fix(item, reason)
        elif isinstance(feat, _Feat):
            for seg in feat.layout:
                self.spaces.fix(seg.space, reason)

    def _couple(self, a: _Feat, b: _Feat, reason: str) -> None:
        """Channels of ``a`` and ``b`` are the same channels (e.g. they are added)."""
        aligned = (
            a.dim == b.dim
            and len(a.layout) == len(b.layout)
            and all(
                sa.repeat == sb.repeat
                and self.spaces.size[self.spaces.find(sa.space)]
                == self.spaces.size[self.spaces.find(sb.space)]
                for sa, sb in zip(a.layout, b.layout, strict=True)
            )
        )
        if not aligned:
            self._fix(a, reason)
            self._fix(b, reason)
            return
        for sa, sb in zip(a.layout, b.layout, strict=True):
            self.spaces.union(sa.space, sb.space)

    def _anchor(self, feat: _Feat, dim: int, shape: torch.Size) -> _Feat:
        """``feat`` read along ``dim``: where an opaque operation left fixed channels at a
        guessed dimension, any dimension is as fixed (it couples to nothing prunable)."""
        if feat.dim == dim or dim < 0:
            return feat
        reasons = [self.spaces.reason[self.spaces.find(s.space)] for s in feat.layout]
        if any(reason is None for reason in reasons):
            return feat
        space = self.spaces.new(int(shape[dim]), fixed=reasons[0])
        return _Feat(dim, (_Segment(space, 1),))

    def _opaque(self, node: fx.Node, env: dict[fx.Node, Any], reason: str) -> _Feat | None:
        for arg in _nodes_in((node.args, node.kwargs)):
            self._fix(env.get(arg), reason)
        return self._new(node, fixed=reason)

    def _merge(
        self, node: fx.Node, env: dict[fx.Node, Any], source: Any, start: int, end: int
    ) -> _Feat | None:
        """``source`` with dimensions ``start..end`` merged into one (flatten, reshape)."""
        feat, shape = env.get(source), _shape(source)
        if not isinstance(feat, _Feat) or shape is None:
            return self._opaque(node, env, "flatten of an unknown tensor")
        ndim = len(shape)
        start, end = start % ndim, end % ndim
        if feat.dim < start:
            return feat
        if feat.dim > end:
            return _Feat(feat.dim - (end - start), feat.layout)
        if any(int(d) != 1 for d in shape[start : feat.dim]):
            return self._opaque(node, env, "flatten that interleaves the channels")
        inner = math.prod(int(d) for d in shape[feat.dim + 1 : end + 1])
        return _Feat(start, tuple(_Segment(s.space, s.repeat * inner) for s in feat.layout))

    def _visit(self, node: fx.Node, env: dict[fx.Node, Any], exclude: Sequence[str]) -> Any:
        if node.op == "placeholder":
            return self._new(node, fixed="model input")
        if node.op == "get_attr":
            return None
        if node.op == "output":
            for arg in _nodes_in(node.args):
                self._fix(env.get(arg), "model output")
            return None
        if node.op == "call_module":
            return self._visit_module(node, env, exclude)
        return self._visit_function(node, env)

    def _visit_module(self, node: fx.Node, env: dict[fx.Node, Any], exclude: Sequence[str]) -> Any:
        name = str(node.target)
        module = self.model.get_submodule(name)
        source = node.args[0] if node.args else None
        feat = env.get(source) if isinstance(source, fx.Node) else None
        shape = _shape(source)
        last = len(shape) - 1 if shape is not None else -1
        excluded = _matches(name, exclude)
        kind = None
        self._read_sizes(node, env, ())
        if isinstance(feat, _Feat) and shape is not None:
            reads = 1 if isinstance(module, nn.modules.conv._ConvNd | _BatchNorm) else last
            feat = self._anchor(feat, reads, shape)
        if not isinstance(feat, _Feat) or shape is None:
            out = self._opaque(node, env, f"{name} ({type(module).__name__}) has unknown input")
        elif isinstance(module, nn.MultiheadAttention) or _window_attention(module):
            out = self._attention(name, module, node, env, excluded)
        elif isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
            if feat.dim != 1:
                return self._opaque(node, env, f"{name} reads channels that are not in dim 1")
            if module.groups == 1:
                kind = "conv"
            elif module.groups == module.in_channels == module.out_channels:
                kind = "depthwise"
            else:
                kind = "grouped"
        elif isinstance(module, nn.Linear):
            if feat.dim != last:
                return self._opaque(node, env, f"{name} is a linear layer over a non-channel dim")
            kind = "linear"
        elif isinstance(module, _BatchNorm) and feat.dim == 1:
            kind = "norm"
        elif _plain_layer_norm(module) and feat.dim == last:
            kind = "norm"  # over the channels of a channels-last tensor: prunable like a BN
        elif isinstance(module, _PASSTHROUGH_MODULES):
            out = feat
        elif isinstance(module, nn.Flatten):
            out = self._merge(node, env, source, module.start_dim, module.end_dim)
        else:
            out = self._opaque(node, env, f"{name} ({type(module).__name__}) is not understood")
        if kind is not None:
            assert isinstance(feat, _Feat)
            out = self._record(name, kind, feat, node, module)
        if excluded:
            self._fix(feat, f"{name} is excluded")
            self._fix(out, f"{name} is excluded")
        return out

    def _record(
        self, name: str, kind: str, inp: _Feat, node: fx.Node, module: nn.Module
    ) -> _Feat | None:
        spec = self.specs.get(name)
        if spec is not None:  # a module called more than once reads coupled inputs
            self._couple(
                _Feat(inp.dim, spec.inp), inp, f"{name} is called on differently shaped inputs"
            )
            return _Feat(inp.dim, spec.out)
        if kind in ("conv", "grouped", "linear"):
            out = self._new(node, dim=inp.dim)
            if out is None:
                return None
        else:
            out = inp
        if kind == "grouped":
            reason = f"{name} is a grouped convolution over concatenated or flattened channels"
            for layout in (inp.layout, out.layout):
                if len(layout) != 1 or layout[0].repeat != 1:
                    self._fix(_Feat(1, layout), reason)
                else:
                    self.spaces.split(layout[0].space, module.groups, reason)
        self.specs[name] = _Spec(kind=kind, out=out.layout, inp=inp.layout)
        return out

    def _attention(
        self,
        name: str,
        module: nn.Module,
        node: fx.Node,
        env: dict[fx.Node, Any],
        excluded: bool,
    ) -> Any:
        """Heads of an attention layer: a group of their own; its embedding stays whole."""
        reason = f"{name} keeps its embedding dimension (only its heads are pruned)"
        for arg in _nodes_in((node.args, node.kwargs)):
            self._fix(env.get(arg), reason)
        if isinstance(module, nn.MultiheadAttention):
            simple = module._qkv_same_embed_dim and module.bias_k is None
        else:
            simple = True
        if simple and module.num_heads > 1 and not excluded and name not in self.attention:
            self.attention[name] = self.spaces.new(module.num_heads)
        shape = _shape(node) or _shape(node.args[0] if node.args else None)
        if shape is None:
            return None
        out = _Feat(len(shape) - 1, (_Segment(self.spaces.new(int(shape[-1]), reason), 1),))
        return (out, None) if isinstance(module, nn.MultiheadAttention) else out

    def _param(self, node: Any, dim: int, feat: _Feat, reason: str) -> bool:
        """Couple dim ``dim`` of the parameter or buffer read by get_attr ``node`` to
        ``feat``; False if ``node`` is not one."""
        if not isinstance(node, fx.Node) or node.op != "get_attr":
            return False
        qualified = str(node.target)
        owner, _, tensor = qualified.rpartition(".")
        spec = self.params.get(qualified)
        if spec is not None:
            self._couple(_Feat(spec.dim, spec.layout), _Feat(dim, feat.layout), reason)
        else:
            self.params[qualified] = _ParamSpec(owner, tensor, dim, feat.layout)
        return True

    def _visit_function(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        name = _target_name(node)
        args = node.args
        shape = _shape(node)
        first = args[0] if args else None
        feat = env.get(first) if isinstance(first, fx.Node) else None
        if name == "getitem" and isinstance(feat, tuple):
            index = args[1]
            return (
                feat[index] if isinstance(index, int) and -len(feat) <= index < len(feat) else None
            )
        if node.meta.get("tensor_meta") is None:  # sizes, shapes, attributes: not tensors
            return self._size(node, env, name, first)
        if name not in ("view", "reshape") and name not in _ELEMENTWISE:  # scaling by a size
            self._read_sizes(node, env, ())  # is harmless; a shape made from one is not
        if name in _PASSTHROUGH_FUNCTIONS and isinstance(first, fx.Node):
            if not isinstance(feat, _Feat) or _shape(first) is None:
                return self._opaque(node, env, f"{name} of an unknown tensor")
            if name == "pad" and not self._pads_spare(node, feat):
                return self._opaque(node, env, "padding of the channels")
            return feat if shape is not None and len(shape) > feat.dim else None
        if name in _ELEMENTWISE:
            return self._elementwise(node, env, name)
        if name in ("cat", "concat", "concatenate"):
            return self._concat(node, env)
        if name not in _KNOWN:
            return self._opaque(node, env, f"operation {name!r} is not understood")
        if not isinstance(feat, _Feat) or shape is None:
            return self._opaque(node, env, f"{name} of an unknown tensor")
        ndim = len(_shape(first) or ())
        if name == "flatten":
            return self._merge(
                node, env, first, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
            )
        if name in ("view", "reshape") and len(args) >= 2:
            return self._reshape(node, env, first, feat)
        if name == "permute":
            dims = [d % ndim for d in _dims_arg(node) if isinstance(d, int)]
            if sorted(dims) == list(range(ndim)):
                return _Feat(dims.index(feat.dim), feat.layout)
        if name in ("transpose", "swapaxes") and len(args) == 3:
            a, b = args[1] % ndim, args[2] % ndim  # type: ignore[operator]
            swapped = {a: b, b: a}
            return _Feat(swapped.get(feat.dim, feat.dim), feat.layout)
        if name == "getitem":
            return self._index(node, env, feat, ndim)
        if name == "layer_norm":
            return self._layer_norm(node, env, self._anchor(feat, ndim - 1, _shape(first)), ndim)
        if name in _REDUCTIONS:
            return self._reduction(node, env, first, feat)
        return self._opaque(node, env, f"operation {name!r} is not understood")

    def _size(self, node: fx.Node, env: dict[fx.Node, Any], name: str, first: Any) -> Any:
        """What a size, a shape or arithmetic on them depends on (a :class:`_Size`)."""
        value = env.get(first) if isinstance(first, fx.Node) else None
        ndim = len(_shape(first) or ())
        if isinstance(value, _Feat):
            whole = name == "size" and len(node.args) == 1 and not node.kwargs
            if whole or (name == "getattr" and node.args[1] == "shape"):
                return _Size(shape_of=value, ndim=ndim)
            if name == "size":
                dim = _arg(node, 1, "dim")
                return _Size((value,)) if isinstance(dim, int) and dim % ndim == value.dim else None
            return _Size((value,)) if name == "numel" else None
        if name == "getitem" and isinstance(value, _Size) and value.shape_of is not None:
            index, dim = node.args[1], value.shape_of.dim
            if isinstance(index, int):
                picked = index % value.ndim == dim
            else:
                picked = not isinstance(index, slice) or dim in range(value.ndim)[index]
            return _Size((value.shape_of,)) if picked else None
        feats = tuple(
            f
            for arg in _nodes_in((node.args, node.kwargs))
            if isinstance(size := env.get(arg), _Size)
            for f in (*size.feats, *([size.shape_of] if size.shape_of else []))
        )
        return _Size(feats) if feats else None

    def _read_sizes(self, node: fx.Node, env: dict[fx.Node, Any], allowed: Sequence[Any]) -> None:
        """Fix the channels whose count ``node`` reads as a size (other than ``allowed``)."""
        for arg in _nodes_in((node.args, node.kwargs)):
            size = env.get(arg)
            if isinstance(size, _Size) and arg not in allowed:
                for feat in (*size.feats, *([size.shape_of] if size.shape_of else [])):
                    self._fix(feat, f"{_target_name(node)} uses the number of channels")

    def _same_channels(self, a: _Feat, b: _Feat) -> bool:
        roots = self.spaces.find
        return [roots(s.space) for s in a.layout] == [roots(s.space) for s in b.layout]

    def _pads_spare(self, node: fx.Node, feat: _Feat) -> bool:
        """Whether ``F.pad`` leaves the channel dimension alone."""
        pad = _arg(node, 1, "pad", ())
        ndim = len(_shape(node) or ())
        pos = 2 * (ndim - 1 - feat.dim)  # pad lists (before, after) pairs from the last dim
        return isinstance(pad, list | tuple) and pad[pos : pos + 2] in ([], [0, 0], (), (0, 0))

    def _reshape(self, node: fx.Node, env: dict[fx.Node, Any], source: fx.Node, feat: _Feat) -> Any:
        """A view or reshape that keeps the channel dimension, or merges it with the
        dimensions after it; sizes written as constants would go stale after pruning."""
        src, dst = _shape(source), _shape(node)
        assert src is not None and dst is not None
        sizes = node.args[1] if len(node.args) == 2 else node.args[1:]
        sizes = list(sizes) if isinstance(sizes, list | tuple) else [sizes]
        before = math.prod(int(d) for d in src[: feat.dim])
        for e in range(len(dst)):
            if math.prod(int(d) for d in dst[:e]) != before:
                continue
            width = int(dst[e])
            for end in range(feat.dim, len(src)):
                if math.prod(int(d) for d in src[feat.dim : end + 1]) == width:
                    out = self._merge(node, env, source, feat.dim, end)
                    if out is None or e >= len(sizes):
                        return out
                    moved, size = _Feat(e, out.layout), sizes[e]
                    if isinstance(size, int) and size != -1:
                        self._fix(moved, "a reshape to a constant number of channels")
                    read = env.get(size) if isinstance(size, fx.Node) else None
                    own = isinstance(read, _Size) and all(
                        self._same_channels(f, feat) for f in read.feats
                    )
                    self._read_sizes(node, env, [size] if own else [])
                    return moved
        self._read_sizes(node, env, ())
        return self._opaque(node, env, "a reshape that mixes the channels with other dimensions")

    def _index(self, node: fx.Node, env: dict[fx.Node, Any], feat: _Feat, ndim: int) -> Any:
        """``x[:, 0]``, ``x[..., ::2, :]``: the channel dimension whole, moved or kept."""
        index = node.args[1]
        items = list(index) if isinstance(index, tuple) else [index]
        if sum(item is Ellipsis for item in items) > 1:
            return self._opaque(node, env, "indexing with several ellipses")
        if Ellipsis in items:
            at = items.index(Ellipsis)
            used = sum(item is not None for item in items) - 1
            items[at : at + 1] = [slice(None)] * (ndim - used)
        items += [slice(None)] * (ndim - sum(item is not None for item in items))
        dim = out = 0
        for item in items:
            if item is None:
                out += 1
                continue
            if dim == feat.dim:
                if item != slice(None):
                    return self._opaque(node, env, "indexing into the channels")
                return _Feat(out, feat.layout)
            if isinstance(item, slice):
                out += 1
            elif not isinstance(item, int):
                return self._opaque(node, env, "indexing with tensors")
            dim += 1
        return self._opaque(node, env, "indexing of an unknown tensor")

    def _layer_norm(self, node: fx.Node, env: dict[fx.Node, Any], feat: _Feat, ndim: int) -> Any:
        """``F.layer_norm`` over the channels (a channels-last ``LayerNorm2d``): prunable if
        its weight and bias belong to an ``nn.LayerNorm``, whose shape is then updated."""
        affine = [w for w in (_arg(node, 2, "weight"), _arg(node, 3, "bias")) if w is not None]
        attrs = [w for w in affine if isinstance(w, fx.Node) and w.op == "get_attr"]
        owners = {str(w.target).rpartition(".")[0] for w in attrs}
        owner = self.model.get_submodule(owners.pop()) if len(owners) == 1 else None
        if (
            feat.dim != ndim - 1
            or len(_arg(node, 1, "normalized_shape", ())) != 1
            or not attrs
            or len(attrs) != len(affine)
            or not isinstance(owner, nn.LayerNorm)
        ):
            return self._opaque(node, env, "a layer norm over more than the channels")
        for w in affine:
            self._param(w, 0, feat, "a layer norm read twice")
        return feat

    def _elementwise(self, node: fx.Node, env: dict[fx.Node, Any], name: str) -> Any:
        shape = _shape(node)
        operands = [a for a in (*node.args[:2], *node.kwargs.values()) if isinstance(a, fx.Node)]
        if shape is None or len(shape) < 2:
            return self._opaque(node, env, f"{name} of non-channel tensors")
        feats = [env.get(a) for a in operands if isinstance(env.get(a), _Feat)]
        if not feats:
            return self._new(node, fixed=f"{name} of constants")
        dim = feats[0].dim
        coupled: list[_Feat] = []
        params: list[tuple[fx.Node, int]] = []
        for arg in operands:
            arg_shape = _shape(arg)
            if arg_shape is None or arg_shape.numel() == 1:
                continue  # a scalar
            at = dim - (len(shape) - len(arg_shape))  # broadcasting aligns from the right
            if at < 0 or arg_shape[at] == 1 != shape[dim]:
                continue  # broadcast along the channels: not coupled
            arg_feat = env.get(arg)
            if isinstance(arg_feat, _Feat) and len(arg_shape) == len(shape):
                coupled.append(arg_feat)
            elif arg.op == "get_attr":
                params.append((arg, at))
            else:
                return self._opaque(node, env, f"{name} broadcasts over channels")
        if not coupled:
            return self._opaque(node, env, f"{name} broadcasts over channels")
        for other in coupled[1:]:
            self._couple(coupled[0], other, f"{name} of differently concatenated tensors")
        for param, at in params:
            self._param(param, at, coupled[0], f"{name} reads a parameter twice")
        return coupled[0]

    def _concat(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        tensors = _arg(node, 0, "tensors", ())
        dim = _arg(node, 1, "dim", 0)
        shape = _shape(node)
        feats = [env.get(t) for t in tensors] if isinstance(tensors, list | tuple) else [None]
        if shape is None or not all(isinstance(f, _Feat) for f in feats) or not feats:
            return self._opaque(node, env, "concatenation of unknown tensors")
        dim %= len(shape)
        if dim == feats[0].dim and all(f.dim == dim for f in feats):
            return _Feat(dim, tuple(seg for f in feats for seg in f.layout))
        for other in feats[1:]:
            self._couple(feats[0], other, "concatenation of differently shaped tensors")
        return feats[0]

    def _reduction(
        self, node: fx.Node, env: dict[fx.Node, Any], source: fx.Node, feat: _Feat
    ) -> Any:
        dims = _arg(node, 1, "dim")
        keepdim = _arg(node, 2, "keepdim", False)
        shape, src = _shape(node), _shape(source)
        if dims is None or shape is None or src is None:
            return self._opaque(node, env, f"{_target_name(node)} over all dimensions")
        dims = [dims] if isinstance(dims, int) else list(dims)
        dims = [d % len(src) for d in dims]
        if 0 in dims or feat.dim in dims or len(shape) < 2:
            return self._opaque(node, env, f"{_target_name(node)} over the channels")
        return _Feat(feat.dim - (0 if keepdim else sum(d < feat.dim for d in dims)), feat.layout)

    # ----------------------------------------------------------------- groups
    def _finish(self) -> None:
        rows: dict[int, list[GroupMember]] = {}

        def add(root: int, member: GroupMember) -> None:
            rows.setdefault(root, []).append(member)

        for name, spec in self.specs.items():
            module = self.model.get_submodule(name)
            tensors: list[tuple[str, int, _Layout, str]] = []
            if spec.kind in ("conv", "linear"):
                tensors = [("weight", 0, spec.out, "out"), ("weight", 1, spec.inp, "in")]
            elif spec.kind == "grouped":  # its input channels are scored where they are made
                tensors = [("weight", 0, spec.out, "out")]
            elif spec.kind == "depthwise":
                tensors = [("weight", 0, spec.out, "depthwise")]
            elif getattr(module, "weight", None) is not None:
                tensors = [("weight", 0, spec.out, "norm")]
            for tensor, dim, layout, role in tensors:
                for root, index in self._indices(layout).items():
                    add(root, GroupMember(name, module, tensor, dim, index, role))
        for param in self.params.values():
            owner = self.model.get_submodule(param.owner)
            if isinstance(getattr(owner, param.tensor), nn.Parameter):
                for root, index in self._indices(param.layout).items():
                    member = GroupMember(param.owner, owner, param.tensor, param.dim, index, "norm")
                    add(root, member)
        for name, space in self.attention.items():
            for member in _head_members(name, self.model.get_submodule(name)):
                add(self.spaces.find(space), member)
        for root in sorted(rows):
            reason = self.spaces.reason[root]
            members = rows[root]
            if reason is not None:  # record the modules whose *outputs* these channels are
                for m in members:
                    if m.role != "in":
                        self.fixed.setdefault(m.module_name, reason)
                continue
            heads = any(self.spaces.find(s) == root for s in self.attention.values())
            group = ChannelGroup(
                id=root,
                size=self.spaces.size[root],
                members=members,
                blocks=self.spaces.blocks[root],
                unit="heads" if heads else "channels",
            )
            if group.size // group.blocks < 2 or not group.producers:
                continue
            self.groups.append(group)

    def _indices(self, layout: _Layout) -> dict[int, torch.Tensor]:
        """For each root space in ``layout``: a [channels, k] tensor of positions along dim."""
        parts: dict[int, list[torch.Tensor]] = {}
        offset = 0
        for seg in layout:
            root = self.spaces.find(seg.space)
            n = self.spaces.size[root]
            channel = torch.arange(n).unsqueeze(1) * seg.repeat
            parts.setdefault(root, []).append(offset + channel + torch.arange(seg.repeat))
            offset += n * seg.repeat
        return {root: torch.cat(p, dim=1) for root, p in parts.items()}

    def keep_index(self, layout: _Layout, keep: dict[int, torch.Tensor]) -> torch.Tensor | None:
        """Positions along a dim with ``layout`` that survive, or None if none are removed."""
        if not any(self.spaces.find(s.space) in keep for s in layout):
            return None
        parts, offset = [], 0
        for seg in layout:
            root = self.spaces.find(seg.space)
            n = self.spaces.size[root]
            kept = keep.get(root, torch.arange(n))
            parts.append(
                (offset + kept.unsqueeze(1) * seg.repeat + torch.arange(seg.repeat)).flatten()
            )
            offset += n * seg.repeat
        return torch.cat(parts)

    def __repr__(self) -> str:
        return (
            f"DependencyGraph({len(self.groups)} prunable groups, "
            f"{len(self.fixed)} modules with fixed channels)"
        )


def _head_members(name: str, module: nn.Module) -> list[GroupMember]:
    """The weight slices of each head: its query, key and value rows, its output columns
    (and its column of a Swin layer's relative position bias)."""
    heads = module.num_heads
    if isinstance(module, nn.MultiheadAttention):
        embed, qkv = module.embed_dim, (name, module, "in_proj_weight", "in_proj_bias")
        out = (f"{name}.out_proj", module.out_proj)
    else:
        embed, qkv = module.qkv.in_features, (f"{name}.qkv", module.qkv, "weight", "bias")
        out = (f"{name}.proj", module.proj)
    head_dim = embed // heads
    per_head = torch.arange(heads).unsqueeze(1) * head_dim + torch.arange(head_dim)
    rows = torch.cat([per_head + k * embed for k in range(3)], dim=1)
    owner, holder, weight, bias = qkv
    members = [GroupMember(owner, holder, weight, 0, rows, "out")]
    if getattr(holder, bias) is not None:
        members.append(GroupMember(owner, holder, bias, 0, rows, "out"))
    members.append(GroupMember(*out, "weight", 1, per_head, "in"))
    if not isinstance(module, nn.MultiheadAttention):
        table = torch.arange(heads).unsqueeze(1)
        members.append(GroupMember(name, module, "relative_position_bias_table", 1, table, "in"))
    return members


def _check_names(model: nn.Module, **patterns: Sequence[str]) -> None:
    names = [n for n, _ in model.named_modules() if n]
    for field_name, given in patterns.items():
        if isinstance(given, str):
            raise ConfigError.invalid(field_name, given, "a list of module names")
        for pattern in given:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise ConfigError.invalid(
                    field_name,
                    pattern,
                    "names of submodules of the model",
                    "the model has no module of that name." + close_matches(pattern, names),
                )


def _trace(model: nn.Module, leaf_modules: Sequence[str]) -> fx.GraphModule:
    tracer = _Tracer(leaf_modules)
    try:
        return fx.GraphModule(model, tracer.trace(model))
    except Exception as exc:
        layer = tracer.failed_in or ""
        where = f"layer {layer!r} ({type(model.get_submodule(layer)).__name__})"
        raise UnsupportedModelError(
            f"cannot trace {where if layer else 'the model'} for structured pruning: "
            f"{type(exc).__name__}: {exc}. HINT: torch.fx cannot follow data-dependent "
            f"control flow; pass leaf_modules=[{layer or '...'!r}] to keep that layer whole",
            layer=layer or None,
        ) from exc


def build_graph(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[Any, ...],
    *,
    exclude: Sequence[str] = (),
    leaf_modules: Sequence[str] = (),
) -> DependencyGraph:
    """Trace ``model`` and return its :class:`DependencyGraph`.

    ``example_inputs`` is a batch (or a tuple of positional inputs) used to propagate
    shapes. ``exclude`` lists module names (shell wildcards allowed, e.g. ``"layer4.*"``)
    whose input and output channels must stay as they are. ``leaf_modules`` names modules
    that tracing must not enter (use it for submodules with data-dependent control flow);
    their channels are fixed too. The model is traced in eval mode (stochastic depth and
    dropout drop out of the graph).
    """
    _check_names(model, exclude=exclude, leaf_modules=leaf_modules)
    was_training = model.training
    model.eval()
    try:
        gm = _trace(model, leaf_modules)
        inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
    except UnsupportedModelError:
        raise
    except Exception as exc:
        raise UnsupportedModelError(
            f"the example inputs do not run through the model ({exc}). HINT: pass an "
            "example batch of the shape the model expects"
        ) from exc
    finally:
        model.train(was_training)
    graph = DependencyGraph(model)
    env: dict[fx.Node, Any] = {}
    for node in gm.graph.nodes:
        env[node] = graph._visit(node, env, exclude)
    graph._finish()
    logger.debug("%r", graph)
    return graph
