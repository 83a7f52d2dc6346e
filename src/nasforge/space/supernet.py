"""Supernets: one network holding every architecture of a cell space, in shared weights.

A supernet is an ordinary ``nn.Module`` in which every choice of the space is a
:class:`MixedOp`: the candidate modules of that choice, one per value. A space gets a
supernet by implementing :meth:`Space.supernet <nasforge.space.Space.supernet>` to return
such a module (``nb201`` does); :class:`Supernet` wraps it with its space and runs it

- as a **single path** (:meth:`Supernet.set_arch`): each mixed op runs the one candidate
  the arch chooses, so any Arch runs with the weights it shares with every other arch;
- as a **weighted mixture** (:meth:`Supernet.set_weights`): each mixed op returns the
  weighted sum of its candidates, which is how DARTS learns the choice by gradient.

A choice may appear in several places (one mixed op per cell, all named by the same
parameter): one arch sets them all, and each keeps its own weights. Example::

    space = nf.build("space", "nb201")
    supernet = Supernet.from_space(space, input_shape=(1, 40), channels=8, cells_per_stage=1)
    supernet.set_arch(supernet.sample_arch())   # a uniformly random path
    supernet(torch.randn(4, 1, 40)).shape       # torch.Size([4, 10])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError, NasforgeError
from nasforge.space.base import Arch, Space
from nasforge.space.params import Choice

__all__ = ["MixedOp", "Supernet"]


class MixedOp(nn.Module):
    """The candidates of one choice (parameter ``choice`` of the space), one per value.

    ``candidates`` maps each value of the :class:`~nasforge.space.Choice` to its module;
    every module maps the same input to outputs of the same shape. Until a path or weights
    are set, calling it is an error.
    """

    def __init__(self, choice: str, candidates: Mapping[Any, nn.Module]) -> None:
        super().__init__()
        if not isinstance(choice, str) or not choice:
            raise ConfigError.invalid("choice", choice, "the name of a Choice parameter")
        if not isinstance(candidates, Mapping) or len(candidates) < 2:
            raise ConfigError.invalid(
                f"{choice}.candidates", candidates, "a mapping of two or more value -> module"
            )
        for value, module in candidates.items():
            if not isinstance(module, nn.Module):
                raise ConfigError.invalid(
                    f"{choice}.candidates[{value!r}]", type(module).__name__, "an nn.Module"
                )
        self.choice = choice
        self.values: list[Any] = list(candidates)
        self.candidates = nn.ModuleList(candidates.values())
        self.active: int | None = None  # single path: the index of the candidate to run
        self.weights: torch.Tensor | None = None  # mixture: one weight per candidate
        self.bypass: float = 0.0  # DARTS-'s auxiliary skip: adds bypass * x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weights is not None:
            out = sum(w * op(x) for w, op in zip(self.weights, self.candidates, strict=True))
        elif self.active is not None:
            out = self.candidates[self.active](x)
        else:
            raise NasforgeError(
                f"mixed op {self.choice!r} has no path: call Supernet.set_arch(arch) or "
                "Supernet.set_weights(...) first"
            )
        if not self.bypass:
            return out  # type: ignore[return-value]
        if out.shape != x.shape:
            raise ConfigError(
                f"mixed op {self.choice!r} maps {tuple(x.shape)} to {tuple(out.shape)}, so "
                "the auxiliary skip cannot be added. HINT: use DARTS with guard='beta'",
                field="guard",
            )
        return out + self.bypass * x

    def extra_repr(self) -> str:
        return f"choice={self.choice!r}, values={self.values!r}"


class Supernet(nn.Module):
    """A space's supernet: ``network`` (whose choices are :class:`MixedOp`\\ s) and ``space``.

    Every :class:`MixedOp` must name a :class:`~nasforge.space.Choice` of ``space`` and
    hold one candidate for each of its values, and every parameter of the space must have
    a mixed op (a supernet covers the whole space).
    """

    def __init__(self, space: Space, network: nn.Module) -> None:
        super().__init__()
        if not isinstance(space, Space):
            raise ConfigError.invalid("space", type(space).__name__, "a nasforge Space")
        if not isinstance(network, nn.Module):
            raise ConfigError.invalid("network", type(network).__name__, "an nn.Module")
        self.space = space
        self.network = network
        self.mixed_ops: dict[str, list[MixedOp]] = {}
        for module in network.modules():
            if isinstance(module, MixedOp):
                self.mixed_ops.setdefault(module.choice, []).append(module)
        self._check_covers(space)

    @classmethod
    def from_space(cls, space: Space, **options: Any) -> Supernet:
        """The supernet of ``space`` (:meth:`Space.supernet` with ``options``: the
        ``input_shape``, ``num_classes`` and sizes its :meth:`Space.build` takes)."""
        return cls(space, space.supernet(**options))

    def _check_covers(self, space: Space) -> None:
        for param in space.params:
            if not isinstance(param, Choice) or param.when:
                raise ConfigError.invalid(
                    f"space.{param.name}",
                    type(param).__name__,
                    "an unconditional Choice (a supernet holds one mixed op per choice)",
                )
            ops = self.mixed_ops.get(param.name)
            if not ops:
                raise ConfigError(
                    f"the supernet has no MixedOp for parameter {param.name!r} of space "
                    f"{space.name!r}. HINT: Space.supernet() must wrap every choice in "
                    "MixedOp(name, {value: module})",
                    field="network",
                )
            for op in ops:
                if sorted(map(repr, op.values)) != sorted(map(repr, param.choices)):
                    raise ConfigError.invalid(
                        f"network.{param.name}",
                        op.values,
                        f"one candidate for each value of the choice: {list(param.choices)}",
                    )
        unknown = sorted(set(self.mixed_ops) - {p.name for p in space.params})
        if unknown:
            raise ConfigError.invalid(
                "network", unknown, f"mixed ops named by parameters of space {space.name!r}"
            )

    @property
    def choices(self) -> dict[str, list[Any]]:
        """``{parameter: values}`` of the space, in the space's order."""
        return {p.name: list(p.choices) for p in self.space.params}  # type: ignore[attr-defined]

    def set_arch(self, arch: Arch | Mapping[str, Any] | str) -> Arch:
        """Run ``arch`` as a single path from now on (clears mixture weights)."""
        arch = self.space.from_key(arch) if isinstance(arch, str) else self.space.arch(arch)
        for name, ops in self.mixed_ops.items():
            for op in ops:
                op.active = op.values.index(arch[name])
                op.weights = None
        return arch

    def sample_arch(self, generator: torch.Generator | None = None) -> Arch:
        """A uniformly random arch, drawn from torch's random state (so a checkpoint that
        saves it resumes the same sequence of paths) or from ``generator``."""
        values = {}
        for name, options in self.choices.items():
            index = int(torch.randint(len(options), (1,), generator=generator))
            values[name] = options[index]
        return self.space.arch(values)

    def set_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Run every mixed op as the weighted sum of its candidates: ``weights[choice]`` has
        one entry per value, in the order of :attr:`choices` (a DARTS softmax)."""
        for name, ops in self.mixed_ops.items():
            w = weights[name]
            if w.shape != (len(ops[0].values),):
                raise ConfigError.invalid(
                    f"weights[{name!r}]", tuple(w.shape), f"shape ({len(ops[0].values)},)"
                )
            order = [self.choices[name].index(v) for v in ops[0].values]
            for op in ops:
                op.weights = w[order]
                op.active = None

    def set_bypass(self, scale: float) -> None:
        """Add ``scale * x`` to the output of every mixed op (DARTS-'s auxiliary skip)."""
        for ops in self.mixed_ops.values():
            for op in ops:
                op.bypass = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)
