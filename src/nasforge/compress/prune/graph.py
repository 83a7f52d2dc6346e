"""What is coupled: the channel dependency graph of a model, found by tracing it with torch.fx.

Removing output channel ``c`` of a convolution also removes entry ``c`` of the batch norm
after it, input channel ``c`` of every layer that reads it, the same channel of every
tensor added to it (residual connections), its slice of every concatenation, and the
block of features it becomes after flattening. :func:`build_graph` traces the model once,
propagates example shapes, and collects these couplings into :class:`ChannelGroup`\\ s:
each group is a set of channels that must be kept or removed together, and lists every
weight slice that goes with each of its channels.

Anything the analysis does not understand (an unknown operation, a grouped convolution,
a reshape with constant sizes, the model's inputs and outputs, layers the user excludes)
fences off the channels it touches: they are never pruned, so an unfamiliar model is
pruned less, never broken. A model that cannot be traced raises
:class:`~nasforge.UnsupportedModelError` naming the layer.

The analysis is independent of any pruning policy::

    graph = build_graph(model, torch.randn(1, 3, 32, 32))
    for group in graph.groups:
        print(group.name, group.size, [m.module_name for m in group.members])
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from nasforge.errors import ConfigError, UnsupportedModelError, close_matches

__all__ = ["ChannelGroup", "DependencyGraph", "GroupMember", "build_graph"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Segment:
    space: int  # a channel space (union-find element)
    repeat: int  # consecutive features per channel (>1 after flattening C x H x W)


_Layout = tuple[_Segment, ...]  # how dim 1 of a tensor is made of channel spaces, in order


@dataclass
class _Spec:
    """How one prunable module's tensors depend on channel spaces."""

    kind: str  # "conv", "depthwise", "linear" or "norm"
    out: _Layout  # layout of the output channel dimension
    inp: _Layout  # layout of the input channel dimension (== out for depthwise and norm)


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
    """Channels that are kept or removed together, with every weight slice they own."""

    id: int
    size: int
    members: list[GroupMember] = field(default_factory=list)

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

    def new(self, size: int, fixed: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.reason.append(fixed)
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

    def fix(self, i: int, reason: str) -> None:
        root = self.find(i)
        if self.reason[root] is None:
            self.reason[root] = reason


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
        "clamp_min", "clamp_max",
    }
)  # fmt: skip
_ELEMENTWISE = frozenset(
    {"add", "iadd", "sub", "isub", "mul", "imul", "truediv", "itruediv", "div", "add_", "mul_"}
)
_REDUCTIONS = frozenset({"mean", "sum", "amax", "amin"})
_METADATA = frozenset({"size", "dim", "getattr", "numel"})


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


def _is_feature_norm(module: nn.LayerNorm, shape: torch.Size | None) -> bool:
    return shape is not None and len(shape) == 2 and len(module.normalized_shape) == 1


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


class _Tracer(fx.Tracer):
    """A tracer that treats chosen modules as opaque leaves and remembers where it failed."""

    def __init__(self, leaves: Sequence[str]) -> None:
        super().__init__()
        self.leaves = tuple(leaves)
        self.stack: list[str] = []
        self.failed_in: str | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _matches(module_qualified_name, self.leaves) or super().is_leaf_module(
            m, module_qualified_name
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
        self.fixed: dict[str, str] = {}
        self.groups: list[ChannelGroup] = []

    # ------------------------------------------------------------------ building
    def _new(self, node: fx.Node, fixed: str | None = None) -> _Layout | None:
        shape = _shape(node)
        if shape is None or len(shape) < 2:
            return None
        return (_Segment(self.spaces.new(int(shape[1]), fixed), 1),)

    def _fix(self, layout: _Layout | None, reason: str) -> None:
        for seg in layout or ():
            self.spaces.fix(seg.space, reason)

    def _couple(self, a: _Layout, b: _Layout, reason: str) -> None:
        """Channels of ``a`` and ``b`` are the same channels (e.g. they are added)."""
        aligned = len(a) == len(b) and all(
            sa.repeat == sb.repeat
            and self.spaces.size[self.spaces.find(sa.space)]
            == self.spaces.size[self.spaces.find(sb.space)]
            for sa, sb in zip(a, b, strict=True)
        )
        if not aligned:
            self._fix(a, reason)
            self._fix(b, reason)
            return
        for sa, sb in zip(a, b, strict=True):
            self.spaces.union(sa.space, sb.space)

    def _opaque(self, node: fx.Node, env: dict[fx.Node, Any], reason: str) -> _Layout | None:
        for arg in _nodes_in((node.args, node.kwargs)):
            self._fix(env.get(arg), reason)
        return self._new(node, fixed=reason)

    def _flatten(self, node: fx.Node, source: fx.Node, env: dict[fx.Node, Any]) -> Any:
        layout, shape = env.get(source), _shape(source)
        if layout is None or shape is None:
            return self._opaque(node, env, "flatten of an unknown tensor")
        spatial = 1
        for d in shape[2:]:
            spatial *= int(d)
        return tuple(_Segment(s.space, s.repeat * spatial) for s in layout)

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
        inp = env.get(source) if isinstance(source, fx.Node) else None
        excluded = _matches(name, exclude)
        kind = None
        if inp is None:
            out = self._opaque(node, env, f"{name} ({type(module).__name__}) has unknown input")
        elif isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
            if module.groups == 1:
                kind = "conv"
            elif module.groups == module.in_channels == module.out_channels:
                kind = "depthwise"
            else:
                reason = f"{name} is a grouped convolution (groups={module.groups})"
                return self._opaque(node, env, reason)
        elif isinstance(module, nn.Linear):
            shape = _shape(source)
            if shape is None or len(shape) != 2:
                return self._opaque(node, env, f"{name} is a linear layer over a non-2D input")
            kind = "linear"
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            kind = "norm"
        elif isinstance(module, nn.LayerNorm) and _is_feature_norm(module, _shape(source)):
            kind = "norm"  # over the features of [batch, features]: prunable like a BN
        elif isinstance(module, _PASSTHROUGH_MODULES):
            out = inp
        elif isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
            out = self._flatten(node, source, env)
        else:
            out = self._opaque(node, env, f"{name} ({type(module).__name__}) is not understood")
        if kind is not None:
            out = self._record(name, kind, inp, node)
        if excluded:
            self._fix(inp, f"{name} is excluded")
            self._fix(out, f"{name} is excluded")
        return out

    def _record(self, name: str, kind: str, inp: _Layout, node: fx.Node) -> _Layout:
        spec = self.specs.get(name)
        if spec is not None:  # a module called more than once reads coupled inputs
            self._couple(spec.inp, inp, f"{name} is called on differently shaped inputs")
            return spec.out
        if kind in ("conv", "linear"):
            out = self._new(node)
            assert out is not None
        else:
            out = inp
        self.specs[name] = _Spec(kind=kind, out=out, inp=inp)
        return out

    def _visit_function(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        name = _target_name(node)
        args = node.args
        shape = _shape(node)
        first = args[0] if args else None
        if shape is None and (name in _METADATA or (name == "getitem" and _shape(first) is None)):
            return None  # sizes and attributes, not tensors
        if name in _PASSTHROUGH_FUNCTIONS and isinstance(first, fx.Node):
            if env.get(first) is None or _shape(first) is None:
                return self._opaque(node, env, f"{name} of an unknown tensor")
            return env[first] if shape is not None and len(shape) >= 2 else None
        if name in _ELEMENTWISE:
            return self._elementwise(node, env, name)
        if name in ("cat", "concat", "concatenate"):
            return self._concat(node, env)
        if name == "flatten" and isinstance(first, fx.Node):
            start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
            if start == 1 and end == -1:
                return self._flatten(node, first, env)
        if name in ("view", "reshape") and isinstance(first, fx.Node) and len(args) >= 2:
            sizes = args[1] if len(args) == 2 and isinstance(args[1], tuple | list) else args[1:]
            src = _shape(first)
            # A literal channel count would go stale after pruning: only -1 or sizes read
            # from the tensor (x.size(0), x.shape[1]...) are safe.
            dynamic = len(sizes) >= 2 and not (isinstance(sizes[1], int) and sizes[1] != -1)
            if dynamic and src is not None and shape is not None and tuple(src) == tuple(shape):
                return env.get(first)
            if dynamic and shape is not None and len(shape) == 2 and len(sizes) == 2:
                return self._flatten(node, first, env)
        if name in _REDUCTIONS and isinstance(first, fx.Node):
            return self._reduction(node, env, first)
        return self._opaque(node, env, f"operation {name!r} is not understood")

    def _elementwise(self, node: fx.Node, env: dict[fx.Node, Any], name: str) -> Any:
        shape = _shape(node)
        operands = [a for a in node.args[:2] if isinstance(a, fx.Node)]
        if shape is None or len(shape) < 2:
            return self._opaque(node, env, f"{name} of non-channel tensors")
        layouts = []
        for arg in operands:
            arg_shape = _shape(arg)
            if arg_shape is None or arg_shape.numel() == 1:
                continue  # a scalar
            if len(arg_shape) != len(shape) or env.get(arg) is None:
                return self._opaque(node, env, f"{name} broadcasts over channels")
            if arg_shape[1] == 1 and shape[1] != 1:
                continue  # broadcast along channels: not coupled
            layouts.append(env[arg])
        if not layouts:
            return self._new(node, fixed=f"{name} of constants")
        for other in layouts[1:]:
            self._couple(layouts[0], other, f"{name} of differently concatenated tensors")
        return layouts[0]

    def _concat(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors", ())
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        shape = _shape(node)
        layouts = [env.get(t) for t in tensors] if isinstance(tensors, list | tuple) else [None]
        if shape is None or any(layout is None for layout in layouts):
            return self._opaque(node, env, "concatenation of unknown tensors")
        if dim < 0:
            dim += len(shape)
        if dim == 1:
            return tuple(seg for layout in layouts for seg in layout)
        for other in layouts[1:]:
            self._couple(layouts[0], other, "concatenation of differently shaped tensors")
        return layouts[0]

    def _reduction(self, node: fx.Node, env: dict[fx.Node, Any], source: fx.Node) -> Any:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        shape, src = _shape(node), _shape(source)
        if dims is None or shape is None or src is None or env.get(source) is None:
            return self._opaque(node, env, f"{_target_name(node)} over all dimensions")
        dims = [dims] if isinstance(dims, int) else list(dims)
        dims = [d + len(src) if d < 0 else d for d in dims]
        if 0 in dims or 1 in dims or len(shape) < 2:
            return self._opaque(node, env, f"{_target_name(node)} over the channels")
        return env[source]

    # ----------------------------------------------------------------- groups
    def _finish(self) -> None:
        rows: dict[int, list[GroupMember]] = {}
        for name, spec in self.specs.items():
            module = self.model.get_submodule(name)
            tensors: list[tuple[str, int, _Layout, str]] = []
            if spec.kind in ("conv", "linear"):
                tensors = [("weight", 0, spec.out, "out"), ("weight", 1, spec.inp, "in")]
            elif spec.kind == "depthwise":
                tensors = [("weight", 0, spec.out, "depthwise")]
            elif getattr(module, "weight", None) is not None:
                tensors = [("weight", 0, spec.out, "norm")]
            for tensor, dim, layout, role in tensors:
                for root, index in self._indices(layout).items():
                    member = GroupMember(name, module, tensor, dim, index, role)
                    rows.setdefault(root, []).append(member)
        for root in sorted(rows):
            reason = self.spaces.reason[root]
            members = rows[root]
            if reason is not None:  # record the modules whose *outputs* these channels are
                for m in members:
                    if m.role != "in":
                        self.fixed.setdefault(m.module_name, reason)
                continue
            group = ChannelGroup(id=root, size=self.spaces.size[root], members=members)
            if group.size < 2 or not group.producers:
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
    their channels are fixed too.
    """
    names = [n for n, _ in model.named_modules() if n]
    for field_name, patterns in (("exclude", exclude), ("leaf_modules", leaf_modules)):
        if isinstance(patterns, str):
            raise ConfigError.invalid(field_name, patterns, "a list of module names")
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise ConfigError.invalid(
                    field_name,
                    pattern,
                    "names of submodules of the model",
                    "the model has no module of that name." + close_matches(pattern, names),
                )
    tracer = _Tracer(leaf_modules)
    try:
        fx_graph = tracer.trace(model)
    except Exception as exc:
        layer = tracer.failed_in or ""
        where = f"layer {layer!r} ({type(model.get_submodule(layer)).__name__})"
        raise UnsupportedModelError(
            f"cannot trace {where if layer else 'the model'} for structured pruning: "
            f"{type(exc).__name__}: {exc}. HINT: torch.fx cannot follow data-dependent "
            f"control flow; pass leaf_modules=[{layer or '...'!r}] to keep that layer whole",
            layer=layer or None,
        ) from exc
    gm = fx.GraphModule(model, fx_graph)
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
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
