"""Compression as search dimensions: an architecture space with how to compress it.

:class:`CompressedSpace` adds three parameters to any space that builds networks:

- ``compress.prune``: the fraction of channels removed (0 keeps them all);
- ``compress.distill``: when pruning, the weight of distillation from the uncompressed
  model in the fine-tuning that follows (0: plain fine-tuning); inactive without pruning;
- ``compress.int8``: int8 post-training quantization on or off.

An arch of it is an architecture of the base space plus those choices; ``build`` builds
the architecture, and :class:`~nasforge.evaluators.CompressionEvaluator` trains it,
compresses it as chosen and measures the model as deployed::

    space = nf.build("space", "compressed", base="cnn", prune=[0.0, 0.5, 0.75])
    arch = space.sample(seed=0)
    space.split(arch)   # (the cnn arch, {"prune": 0.5, "distill": 0.9, "int8": True})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nasforge import registry
from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.space.params import Choice
from nasforge.validation import check_number

__all__ = ["PREFIX", "CompressedSpace"]

#: The prefix of the compression parameters' names.
PREFIX = "compress."


@register("space", "compressed")
class CompressedSpace(Space):
    """``base`` (a Space, a registered space's name, or :meth:`Space.to_dict` data) with
    the compression choices ``prune`` (channel fractions in [0, 1)), ``distill``
    (distillation weights in [0, 1]; used after pruning) and ``int8`` (subset of
    ``[False, True]``). A choice given one value is fixed."""

    def __init__(
        self,
        base: Space | str | Mapping[str, Any] = "cnn",
        *,
        prune: Sequence[float] = (0.0, 0.5, 0.75),
        distill: Sequence[float] = (0.0, 0.9),
        int8: Sequence[bool] = (False, True),
    ) -> None:
        self.base = _base_space(base)
        prune = _values(prune, "prune", low=0.0, high=1.0)
        distill = _values(distill, "distill", low=0.0, high=1.0, high_open=False)
        if not isinstance(int8, Sequence) or not int8 or any(not isinstance(v, bool) for v in int8):
            raise ConfigError.invalid("compressed.int8", int8, "a non-empty list of booleans")
        clash = [p.name for p in self.base.params if p.name.startswith(PREFIX)]
        if clash:
            raise ConfigError.invalid(
                "compressed.base", clash[0], f"a space without parameters named {PREFIX}*"
            )
        pruned = [r for r in prune if r > 0]
        params = [
            *self.base.params,
            Choice(f"{PREFIX}prune", prune),
            Choice(f"{PREFIX}int8", list(dict.fromkeys(int8))),
        ]
        if pruned:
            params.append(Choice(f"{PREFIX}distill", distill, when={f"{PREFIX}prune": pruned}))
        super().__init__(params, name=f"compressed({self.base.name})")

    def split(self, arch: Arch | Mapping[str, Any]) -> tuple[Arch, dict[str, Any]]:
        """The architecture (an arch of :attr:`base`) and the compression choices
        (``prune``, ``distill``, ``int8``; ``distill`` is 0 without pruning)."""
        arch = self.arch(arch)
        base = self.base.arch({k: v for k, v in arch.items() if not k.startswith(PREFIX)})
        compression = {"prune": 0.0, "distill": 0.0, "int8": False}
        compression.update(
            {k.removeprefix(PREFIX): v for k, v in arch.items() if k.startswith(PREFIX)}
        )
        return base, compression

    def build(self, arch: Arch, **options: Any) -> Any:
        """The uncompressed network of ``arch``'s architecture (``base.build``)."""
        return self.base.build(self.split(arch)[0], **options)

    def canonical(self, arch: Arch) -> Arch:
        base, _ = self.split(arch)
        canonical = self.base.canonical(base)
        return self.arch({**arch, **canonical})

    def to_dict(self) -> dict[str, Any]:
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}
        return {"name": "compressed", "options": {**options, "base": self.base.to_dict()}}


def _base_space(base: Space | str | Mapping[str, Any]) -> Space:
    if isinstance(base, Space):
        space = base
    elif isinstance(base, str):
        space = registry.build("space", base)
    elif isinstance(base, Mapping):
        space = Space.from_dict(base)
    else:
        raise ConfigError.invalid(
            "compressed.base", base, "a Space, a registered space's name or its to_dict() data"
        )
    if isinstance(space, CompressedSpace):
        raise ConfigError.invalid("compressed.base", space.name, "a space without compression")
    return space


def _values(
    values: Sequence[float], name: str, *, low: float, high: float, high_open: bool = True
) -> list[float]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ConfigError.invalid(f"compressed.{name}", values, "a non-empty list of numbers")
    out = [
        float(check_number(v, f"compressed.{name}", low=low, high=high, high_open=high_open))
        for v in values
    ]
    return list(dict.fromkeys(out))
