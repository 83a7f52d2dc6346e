"""Pruning: structured channel pruning that really shrinks models, and magnitude sparsity.

- :class:`ChannelPruner` (``channel_prune``) and :func:`prune_channels` remove whole
  channels and everything coupled to them, found by tracing the model
  (:func:`build_graph`); the result is smaller and faster on ordinary dense kernels.
- :class:`MagnitudePruner` (``magnitude_prune``) zeroes individual weights, layer-wise or
  globally; :func:`sparsity_report` says how sparse a model is and how small it would be
  in a sparse format. Zeros in dense tensors bring no speedup.
"""

from nasforge.compress.prune.graph import ChannelGroup, DependencyGraph, GroupMember, build_graph
from nasforge.compress.prune.importance import (
    IMPORTANCES,
    BNScaleImportance,
    Importance,
    MagnitudeImportance,
    TaylorImportance,
)
from nasforge.compress.prune.schedule import schedule_amounts
from nasforge.compress.prune.structured import ChannelPruner, keep_count, prune_channels
from nasforge.compress.prune.unstructured import (
    NO_SPEEDUP_NOTE,
    MagnitudePruner,
    make_permanent,
    sparsity_report,
)

__all__ = [
    "IMPORTANCES",
    "NO_SPEEDUP_NOTE",
    "BNScaleImportance",
    "ChannelGroup",
    "ChannelPruner",
    "DependencyGraph",
    "GroupMember",
    "Importance",
    "MagnitudeImportance",
    "MagnitudePruner",
    "TaylorImportance",
    "build_graph",
    "keep_count",
    "make_permanent",
    "prune_channels",
    "schedule_amounts",
    "sparsity_report",
]
