"""Structured channel pruning that physically removes channels, so the model really shrinks.

Removed channels disappear from every tensor coupled to them (see
:mod:`nasforge.compress.prune.graph`): the pruned network is an ordinary, smaller
``nn.Module`` of the same class that runs faster on dense kernels.
"""

from __future__ import annotations

import copy
import itertools
import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasforge.compress.base import Compressor
from nasforge.compress.prune.attention import (
    PrunedMultiheadAttention,
    PrunedShiftedWindowAttention,
)
from nasforge.compress.prune.graph import ChannelGroup, DependencyGraph, build_graph
from nasforge.compress.prune.importance import Importance, resolve_importance
from nasforge.compress.prune.schedule import SCHEDULES, schedule_amounts
from nasforge.errors import ConfigError, PruningWarning, UnsupportedModelError
from nasforge.registry import register
from nasforge.validation import check_choice, check_int, check_number, check_str_list

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

__all__ = ["ChannelPruner", "keep_count", "prune_channels"]

logger = logging.getLogger(__name__)


def keep_count(channels: int, ratio: float, *, round_to: int = 1, min_channels: int = 1) -> int:
    """How many of ``channels`` survive pruning ``ratio`` of them.

    ``int(channels * ratio)`` channels are removed; the rest is rounded down to a multiple
    of ``round_to`` (but never below ``round_to`` or ``min_channels``, nor above
    ``channels``), as hardware-friendly channel counts run faster::

        keep_count(64, 0.5)               # 32
        keep_count(100, 0.3, round_to=8)  # 64
    """
    keep = channels - int(channels * ratio)
    if round_to > 1:
        keep = max(round_to, keep - keep % round_to)
    return max(1, min(channels, max(keep, min_channels)))


def _target(group: ChannelGroup, ratio: float, round_to: int, min_channels: int) -> int:
    """How many channels (or heads) of ``group`` survive: the same number in each of its
    blocks; ``round_to`` and ``min_channels`` count channels of ungrouped groups only."""
    if group.unit != "channels":
        return keep_count(group.size, ratio)
    if group.blocks > 1:
        return group.blocks * keep_count(group.size // group.blocks, ratio)
    return keep_count(group.size, ratio, round_to=round_to, min_channels=min_channels)


def _warn_skipped(graph: DependencyGraph) -> None:
    """Say which layers the analysis left whole, and when nothing can be pruned at all."""
    skipped = graph.skipped
    if skipped:
        shown = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:8])
        more = f" (and {len(skipped) - 8} more)" if len(skipped) > 8 else ""
        warnings.warn(
            f"structured pruning left the channels of {len(skipped)} layer(s) whole: {shown}{more}",
            PruningWarning,
            stacklevel=3,
        )
    if not graph.groups:
        warnings.warn(
            "structured pruning found no channels it can remove in this model; it is "
            "returned unchanged",
            PruningWarning,
            stacklevel=3,
        )


def prune_channels(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[Any, ...],
    *,
    ratio: float = 0.5,
    importance: str | Importance = "l1",
    round_to: int = 1,
    exclude: Sequence[str] = (),
    leaf_modules: Sequence[str] = (),
    min_channels: int = 1,
    keep: dict[str, int] | None = None,
) -> nn.Module:
    """Return a copy of ``model`` with ``ratio`` of the channels of every prunable group removed.

    The lowest-``importance`` channels go, together with everything coupled to them; the
    copy is checked to run on ``example_inputs`` and give outputs of the same shape. The
    model's inputs, outputs and ``exclude``\\ d layers keep their shapes. ``keep`` maps
    group names (the first layer producing the channels, e.g. ``"layer1.0.conv1"``) to
    channel counts, overriding ``ratio`` for those groups::

        from torchvision.models import resnet18
        small = prune_channels(resnet18(weights=None), torch.randn(1, 3, 64, 64), ratio=0.5,
                               exclude=["layer1.0.conv1"], round_to=8)

    Raises :class:`~nasforge.UnsupportedModelError` (naming the layer) for a model that
    cannot be traced or that would not run after pruning; the original is never modified.
    """
    _check_ratio(ratio)
    check_int(round_to, "round_to", low=1)
    check_int(min_channels, "min_channels", low=1)
    scorer = resolve_importance(importance)
    graph = build_graph(model, example_inputs, exclude=exclude, leaf_modules=leaf_modules)
    _warn_skipped(graph)
    targets = {g.name: _target(g, ratio, round_to, min_channels) for g in graph.groups}
    targets.update(keep or {})
    pruned, _ = _prune(model, graph, targets, scorer, example_inputs)
    return pruned


def _prune(
    model: nn.Module,
    graph: DependencyGraph,
    targets: dict[str, int],
    scorer: Importance,
    example_inputs: torch.Tensor | tuple[Any, ...],
) -> tuple[nn.Module, dict[str, list[int]]]:
    """Prune a copy of ``model`` to ``targets`` channels per group; returns it and the sizes."""
    plan: dict[int, torch.Tensor] = {}
    sizes: dict[str, list[int]] = {}
    for group in graph.groups:
        target = targets.get(group.name, group.size)
        if not 1 <= target <= group.size:
            raise ConfigError.invalid(
                f"keep[{group.name!r}]", target, f"between 1 and {group.size} channels"
            )
        sizes[group.name] = [group.size, target]
        if target == group.size:
            continue
        scores = torch.as_tensor(scorer(group), dtype=torch.float32).flatten()
        if scores.numel() != group.size:
            raise ConfigError(
                f"importance returned {scores.numel()} scores for group {group.name!r} of "
                f"{group.size} channels; expected one score per channel",
                field="importance",
            )
        if target % group.blocks:
            raise ConfigError.invalid(
                f"keep[{group.name!r}]",
                target,
                f"a multiple of {group.blocks} (the groups of the convolution)",
            )
        per_block = scores.view(group.blocks, -1)
        kept = torch.topk(per_block, target // group.blocks, sorted=False).indices
        kept = kept + torch.arange(group.blocks).unsqueeze(1) * per_block.shape[1]
        plan[group.id] = kept.flatten().sort().values
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    reference = _output_shapes(model, inputs)
    pruned = copy.deepcopy(model)
    _apply_plan(graph, plan, pruned)
    failed_in: list[str] = []
    try:
        shapes = _output_shapes(pruned, inputs, failed_in)
    except Exception as exc:
        layer = failed_in[-1] if failed_in else None
        where = (
            f" in layer {layer!r} ({type(pruned.get_submodule(layer)).__name__})" if layer else ""
        )
        raise UnsupportedModelError(
            f"the pruned model no longer runs: {type(exc).__name__}{where}: {exc}. The "
            "channel analysis missed a coupling in this model. HINT: exclude that layer "
            f"(exclude=[{layer or '...'!r}]) and report the model to nasforge",
            layer=layer,
        ) from exc
    if shapes != reference:
        raise UnsupportedModelError(
            f"pruning changed the output shapes from {reference} to {shapes}. HINT: exclude "
            "the output layer(s) of the model"
        )
    return pruned, sizes


def _output_shapes(
    model: nn.Module, inputs: tuple[Any, ...], failed_in: list[str] | None = None
) -> list[tuple[int, ...]]:
    """Output shapes of ``model`` on ``inputs``; ``failed_in`` collects the layers being run
    (so the innermost one that raised is ``failed_in[-1]``)."""
    handles = []
    if failed_in is not None:

        def enter(name: str) -> Any:
            return lambda module, args: failed_in.append(name)  # returns None: args unchanged

        def leave(module: nn.Module, args: Any, output: Any) -> None:
            failed_in.pop()

        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_pre_hook(enter(name)))
                handles.append(module.register_forward_hook(leave))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    flat = out if isinstance(out, list | tuple) else [out]
    return [tuple(t.shape) for t in flat if isinstance(t, torch.Tensor)]


def _apply_plan(graph: DependencyGraph, plan: dict[int, torch.Tensor], model: nn.Module) -> None:
    for name, spec in graph.specs.items():
        module = model.get_submodule(name)
        out_idx = graph.keep_index(spec.out, plan)
        reads = spec.kind in ("conv", "grouped", "linear")
        in_idx = graph.keep_index(spec.inp, plan) if reads else None
        if out_idx is None and in_idx is None:
            continue
        if spec.kind == "grouped":
            _select_grouped(module, out_idx, in_idx)
            continue
        for tensor in ("weight", "bias", "running_mean", "running_var"):
            _select(module, tensor, 0, out_idx)
        _select(module, "weight", 1, in_idx)
        weight = module.weight
        if spec.kind == "conv":
            module.out_channels, module.in_channels = weight.shape[0], weight.shape[1]
        elif spec.kind == "depthwise":
            module.out_channels = module.in_channels = module.groups = weight.shape[0]
        elif spec.kind == "linear":
            module.out_features, module.in_features = weight.shape[0], weight.shape[1]
        elif isinstance(module, nn.LayerNorm):
            module.normalized_shape = (len(out_idx),)
        else:
            module.num_features = len(out_idx)
    for param in graph.params.values():
        index = graph.keep_index(param.layout, plan)
        owner = model.get_submodule(param.owner)
        _select(owner, param.tensor, param.dim, index)
        if index is not None and isinstance(owner, nn.LayerNorm):
            owner.normalized_shape = (len(index),)
    for name, space in graph.attention.items():
        heads = plan.get(graph.spaces.find(space))
        if heads is not None:
            parent, _, child = name.rpartition(".")
            attention = model.get_submodule(name)
            replacement = (
                PrunedMultiheadAttention
                if isinstance(attention, nn.MultiheadAttention)
                else PrunedShiftedWindowAttention
            )
            pruned = replacement.from_attention(attention, heads)
            setattr(model.get_submodule(parent), child, pruned)


def _select_grouped(
    conv: nn.Module, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None
) -> None:
    """Keep channels of a grouped convolution: as many in each group, so groups stay."""
    groups, weight = conv.groups, conv.weight.detach()
    rows = (out_idx if out_idx is not None else torch.arange(weight.shape[0])).view(groups, -1)
    cols = in_idx if in_idx is not None else torch.arange(conv.in_channels)
    cols = cols.view(groups, -1) - torch.arange(groups).unsqueeze(1) * weight.shape[1]
    kept = torch.cat([weight[r][:, c] for r, c in zip(rows, cols, strict=True)])
    conv.weight = nn.Parameter(kept.clone(), requires_grad=conv.weight.requires_grad)
    _select(conv, "bias", 0, out_idx)
    conv.out_channels, conv.in_channels = kept.shape[0], kept.shape[1] * groups


def _select(module: nn.Module, name: str, dim: int, index: torch.Tensor | None) -> None:
    tensor = getattr(module, name, None)
    if index is None or not isinstance(tensor, torch.Tensor):
        return
    kept = tensor.detach().index_select(dim, index.to(tensor.device)).clone()
    if isinstance(tensor, nn.Parameter):
        setattr(module, name, nn.Parameter(kept, requires_grad=tensor.requires_grad))
    else:
        module._buffers[name] = kept


def _check_ratio(ratio: Any) -> None:
    check_number(ratio, "ratio", low=0, high=1, high_open=True, hint="0.5 halves the channels")


@register("compressor", "channel_prune")
class ChannelPruner(Compressor):
    """Structured channel pruning: removes whole channels, so the model is smaller and faster.

    Every prunable group of coupled channels (conv -> batch norm -> next conv, residual
    additions, concatenations, depthwise convolutions, the first linear layer after
    flattening) loses ``ratio`` of its channels, ranked by ``importance`` (``"l1"``,
    ``"l2"``, ``"bn_scale"``, ``"taylor"`` or a callable ``group -> scores``).
    ``round_to`` keeps channel counts multiples of e.g. 8; ``exclude`` names layers
    (wildcards allowed) whose shapes must not change (their input channels stay too, and
    everything coupled to them; the model's outputs are never pruned, so a classifier needs
    no excluding); ``leaf_modules`` names submodules that
    tracing must not enter. ``schedule="agp"`` prunes gradually over ``steps`` steps (Zhu &
    Gupta 2017), fine-tuning ``finetune_epochs`` after each step with the Trainer. After
    every step the batch-norm statistics of the pruned network are re-estimated on
    ``bn_recalibration_batches`` training batches (adaptive BN: Li et al. 2020, "EagleEye:
    Fast Sub-net Evaluation for Efficient Neural Network Pruning"; 0 turns it off), which
    recovers much of the accuracy lost before any fine-tuning::

        import nasforge as nf

        pruner = nf.build("compressor", "channel_prune", ratio=0.5, round_to=8,
                          finetune_epochs=3)
        small, report = trainer.compress(model, [pruner])

    Li et al. 2017 ("Pruning Filters for Efficient ConvNets") for the magnitude criterion;
    the dependency analysis follows the idea of Fang et al. 2023 ("DepGraph: Towards Any
    Structural Pruning"). After :meth:`apply`, ``stats`` holds the channel counts.
    """

    name = "channel_prune"

    def __init__(
        self,
        *,
        ratio: float = 0.5,
        importance: str | Importance = "l1",
        round_to: int = 1,
        exclude: Sequence[str] = (),
        leaf_modules: Sequence[str] = (),
        schedule: str = "one_shot",
        steps: int = 1,
        finetune_epochs: int = 0,
        min_channels: int = 1,
        taylor_batches: int = 4,
        bn_recalibration_batches: int = 16,
    ) -> None:
        _check_ratio(ratio)
        self.round_to = check_int(round_to, "round_to", low=1)
        self.finetune_epochs = check_int(finetune_epochs, "finetune_epochs", low=0)
        self.min_channels = check_int(min_channels, "min_channels", low=1)
        self.taylor_batches = check_int(taylor_batches, "taylor_batches", low=1)
        self.bn_recalibration_batches = check_int(
            bn_recalibration_batches, "bn_recalibration_batches", low=0
        )
        self.exclude = tuple(check_str_list(exclude, "exclude"))
        self.leaf_modules = tuple(check_str_list(leaf_modules, "leaf_modules"))
        self.schedule = check_choice(schedule, "schedule", SCHEDULES)
        self.amounts = schedule_amounts(self.schedule, ratio, steps)
        self.ratio = float(ratio)
        self.importance = resolve_importance(importance)
        self.steps = steps
        self.stats: dict[str, Any] = {}

    def apply(self, model: nn.Module, trainer: Engine) -> nn.Module:
        """Prune ``model`` (a pruned copy is returned) and fine-tune it between steps."""
        example = trainer.sample_inputs(2).to(next(model.parameters()).device)
        original: dict[str, ChannelGroup] | None = None
        sizes: dict[str, list[int]] = {}
        params_before = sum(p.numel() for p in model.parameters())
        skipped: dict[str, str] = {}
        for step, amount in enumerate(self.amounts, start=1):
            if getattr(self.importance, "requires_grad", False):
                _accumulate_gradients(model, trainer, self.taylor_batches)
            graph = build_graph(
                model, example, exclude=self.exclude, leaf_modules=self.leaf_modules
            )
            if original is None:
                _warn_skipped(graph)
                original = {g.name: g for g in graph.groups}
                skipped = graph.skipped
            targets = {
                name: _target(group, amount, self.round_to, self.min_channels)
                for name, group in original.items()
            }
            pruned, step_sizes = _prune(model, graph, targets, self.importance, example)
            model.zero_grad(set_to_none=True)  # gradients of a Taylor estimate
            model = pruned
            if self.bn_recalibration_batches:
                _recalibrate_bn(model, trainer, self.bn_recalibration_batches)
            for name, (_, after) in step_sizes.items():
                sizes[name] = [original[name].size if name in original else after, after]
            logger.info(
                "channel_prune step %d/%d: ratio %.3f, %d groups, %d parameters",
                step,
                len(self.amounts),
                amount,
                len(step_sizes),
                sum(p.numel() for p in model.parameters()),
            )
            if self.finetune_epochs:
                trainer.fit(model, epochs=self.finetune_epochs)
        self.stats = {
            "ratio": self.ratio,
            "schedule": self.schedule,
            "steps": len(self.amounts),
            "groups": len(sizes),
            "channels_before": sum(b for b, _ in sizes.values()),
            "channels_after": sum(a for _, a in sizes.values()),
            "params_before": params_before,
            "params_after": sum(p.numel() for p in model.parameters()),
            "channels": sizes,
            "skipped": skipped,
        }
        return model

    def __repr__(self) -> str:
        return (
            f"ChannelPruner(ratio={self.ratio}, importance={self.importance!r}, "
            f"round_to={self.round_to}, schedule={self.schedule!r}, steps={self.steps}, "
            f"finetune_epochs={self.finetune_epochs}, exclude={list(self.exclude)})"
        )


def _recalibrate_bn(model: nn.Module, trainer: Engine, batches: int) -> None:
    """Re-estimate batch-norm statistics of the pruned network (adaptive BN, EagleEye)."""
    from nasforge.compress.quantize.qat import recalibrate_batchnorm
    from nasforge.data.loaders import as_loader

    loader = as_loader(
        trainer.train_data, batch_size=trainer.batch_size, shuffle=True, seed=trainer.seed
    )
    recalibrate_batchnorm(model, (inputs for inputs, _ in itertools.islice(loader, batches)))


def _accumulate_gradients(model: nn.Module, trainer: Engine, batches: int) -> None:
    """Sum the loss gradients of ``batches`` training batches into ``.grad`` (eval mode)."""
    from nasforge.data.loaders import as_loader

    loader = as_loader(trainer.train_data, batch_size=trainer.batch_size, seed=trainer.seed)
    loss_fn = trainer.loss if callable(trainer.loss) else nn.functional.cross_entropy
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        for i, (inputs, targets) in enumerate(loader):
            if i >= batches:
                break
            loss_fn(model(inputs.to(device)), targets.to(device)).backward()
    finally:
        model.train(was_training)
