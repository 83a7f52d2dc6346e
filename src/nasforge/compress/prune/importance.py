"""How important each channel of a group is: one callable ``(group) -> scores``.

An importance maps a :class:`~nasforge.compress.prune.ChannelGroup` to a 1-D tensor with
one score per channel; the lowest-scoring channels are removed. Any callable with that
signature works, so a new criterion is a function::

    def random_importance(group):
        return torch.rand(group.size)

    prune_channels(model, x, ratio=0.5, importance=random_importance)

Built-ins (pass their names as ``importance=``):

- ``"l1"`` / ``"l2"``: magnitude of every weight slice coupled to the channel (filters it
  produces, kernels that read it, its batch-norm scale), summed over the group
  (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
- ``"bn_scale"``: absolute batch-norm scale gamma (Liu et al. 2017, "Learning Efficient
  Convolutional Networks through Network Slimming"); groups without a batch norm fall back
  to ``"l1"``.
- ``"taylor"``: first-order Taylor estimate of the loss change when the channel is removed,
  ``(sum of grad * weight)^2`` over its slices (Molchanov et al. 2019, "Importance
  Estimation for Neural Network Pruning"). Needs gradients in ``.grad``; the
  ``channel_prune`` compressor computes them on a few training batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nasforge.compress.prune.graph import ChannelGroup, GroupMember
from nasforge.errors import ConfigError

__all__ = [
    "IMPORTANCES",
    "BNScaleImportance",
    "Importance",
    "MagnitudeImportance",
    "TaylorImportance",
    "resolve_importance",
]

Importance = Callable[[ChannelGroup], torch.Tensor]


def _rows(member: GroupMember, values: torch.Tensor) -> torch.Tensor:
    """``values`` (shaped like the member's tensor) as one row per position along its dim."""
    return values.detach().movedim(member.dim, 0).reshape(values.shape[member.dim], -1)


class MagnitudeImportance:
    """L1 (``p=1``) or L2 (``p=2``) norm of all weight slices coupled to each channel."""

    def __init__(self, p: int = 1) -> None:
        if p not in (1, 2):
            raise ConfigError.invalid("MagnitudeImportance.p", p, "1 or 2")
        self.p = p

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        scores = torch.zeros(group.size)
        for member in group.members:
            rows = _rows(member, member.weight).float().cpu()
            per_row = rows.abs().sum(1) if self.p == 1 else rows.pow(2).sum(1)
            per_channel = per_row[member.index].sum(1)
            scores += per_channel if self.p == 1 else per_channel.sqrt()
        return scores

    def __repr__(self) -> str:
        return f"MagnitudeImportance(p={self.p})"


class BNScaleImportance:
    """Absolute batch-norm scale of each channel (Network Slimming); L1 without a norm."""

    def __init__(self) -> None:
        self._fallback = MagnitudeImportance(1)

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        norms = [m for m in group.members if m.role == "norm"]
        if not norms:
            return self._fallback(group)
        scores = torch.zeros(group.size)
        for member in norms:
            scores += member.weight.detach().abs().float().cpu()[member.index].sum(1)
        return scores

    def __repr__(self) -> str:
        return "BNScaleImportance()"


class TaylorImportance:
    """First-order Taylor importance ``(sum grad * weight)^2`` per channel (Molchanov 2019)."""

    requires_grad = True

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        scores = torch.zeros(group.size)
        for member in group.members:
            weight = member.weight
            if weight.grad is None:
                raise ConfigError(
                    f"taylor importance needs gradients, but {member.module_name}."
                    f"{member.tensor} has none. HINT: run a backward pass on a few batches "
                    "before pruning (the channel_prune compressor does this for you)",
                    field="importance",
                )
            rows = _rows(member, weight * weight.grad).float().cpu()
            scores += rows.sum(1)[member.index].sum(1).pow(2)
        return scores

    def __repr__(self) -> str:
        return "TaylorImportance()"


IMPORTANCES: dict[str, Callable[[], Importance]] = {
    "l1": lambda: MagnitudeImportance(1),
    "l2": lambda: MagnitudeImportance(2),
    "bn_scale": BNScaleImportance,
    "taylor": TaylorImportance,
}


def resolve_importance(importance: str | Importance) -> Importance:
    """A built-in importance by name, or the given callable."""
    if isinstance(importance, str):
        factory = IMPORTANCES.get(importance.lower())
        if factory is None:
            raise ConfigError.invalid(
                "importance", importance, f"one of {sorted(IMPORTANCES)} or a callable"
            )
        return factory()
    if not callable(importance):
        raise ConfigError.invalid(
            "importance", importance, f"one of {sorted(IMPORTANCES)} or a callable"
        )
    return importance
