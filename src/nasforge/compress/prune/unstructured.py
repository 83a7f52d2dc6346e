"""Unstructured magnitude pruning: zero the smallest weights, layer by layer or globally.

The zeros stay in dense tensors, so the model is no smaller on disk and no faster on dense
kernels; :func:`sparsity_report` gives the real sparsity and the size the weights would
take in a sparse (CSR) format. Use ``channel_prune`` when speed is the goal.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from nasforge.compress.base import Compressor
from nasforge.compress.prune.schedule import SCHEDULES, schedule_amounts
from nasforge.errors import ConfigError
from nasforge.registry import register
from nasforge.validation import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_sequence,
    check_str_list,
)

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

__all__ = ["NO_SPEEDUP_NOTE", "MagnitudePruner", "make_permanent", "sparsity_report"]

logger = logging.getLogger(__name__)

_LAYER_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "linear": (nn.Linear,),
}
NO_SPEEDUP_NOTE = (
    "unstructured sparsity: zeros are stored densely, so dense CPU/GPU kernels run no "
    "faster and the saved file is no smaller; sparse_bytes is what a sparse (CSR) format "
    "would take. Use channel_prune for real speedups."
)


class _Mask(nn.Module):
    """A weight parametrization that multiplies by a fixed 0/1 mask."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def _weight(module: nn.Module) -> torch.Tensor:
    """The weight as trained (under a mask parametrization: the unmasked original)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def make_permanent(model: nn.Module) -> nn.Module:
    """Remove the masks :class:`MagnitudePruner` attached, leaving plain (zeroed) weights.

    Masked weights are written as ``weight * mask``; state_dict keys become plain
    ``weight`` again. Returns ``model`` (changed in place).
    """
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight") and any(
            isinstance(p, _Mask) for p in module.parametrizations.weight
        ):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def sparsity_report(model: nn.Module, *, index_bytes: int = 4) -> dict[str, Any]:
    """Real sparsity of every conv/linear weight and what a sparse format would save.

    Returns ``layers`` (name -> ``numel``, ``zeros``, ``sparsity``), ``sparsity`` over
    those weights, ``params`` and ``nonzero_params`` of the whole model, ``dense_bytes``
    (every tensor stored densely) and ``sparse_bytes`` (conv/linear weights in CSR: values
    and ``index_bytes``-byte column indices of the non-zeros, plus row pointers; other
    tensors dense), and a ``note`` that dense kernels see no speedup.
    """
    layers: dict[str, dict[str, float]] = {}
    dense = sparse = params = nonzero = 0
    covered: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, _LAYER_TYPES["conv"] + _LAYER_TYPES["linear"]):
            continue
        weight = module.weight.detach()  # with a mask attached: the masked weight
        covered.add(id(_weight(module)))
        zeros = int((weight == 0).sum())
        layers[name] = {
            "numel": weight.numel(),
            "zeros": zeros,
            "sparsity": zeros / max(weight.numel(), 1),
        }
        nnz = weight.numel() - zeros
        rows = weight.shape[0]
        sparse += nnz * (weight.element_size() + index_bytes) + (rows + 1) * index_bytes
    for tensor in model.parameters():
        params += tensor.numel()
        nonzero += int((tensor.detach() != 0).sum())
        dense += tensor.numel() * tensor.element_size()
        if id(tensor) not in covered:
            sparse += tensor.numel() * tensor.element_size()
    total = sum(v["numel"] for v in layers.values())
    zeros = sum(v["zeros"] for v in layers.values())
    return {
        "sparsity": zeros / max(total, 1),
        "params": params,
        "nonzero_params": nonzero,
        "dense_bytes": dense,
        "sparse_bytes": sparse,
        "layers": layers,
        "note": NO_SPEEDUP_NOTE,
    }


@register("compressor", "magnitude_prune")
class MagnitudePruner(Compressor):
    """Unstructured magnitude pruning: zeroes the smallest weights (sparser, not faster).

    The ``sparsity`` fraction of smallest-magnitude weights is set to zero.
    ``scope="layer"`` prunes every conv/linear weight to the same sparsity;
    ``scope="global"`` ranks all their weights together, so layers with many small weights
    lose more. ``schedule="agp"`` raises the sparsity over ``steps`` steps (Zhu & Gupta
    2017), fine-tuning ``finetune_epochs`` after each step with the masks enforced.
    ``permanent=False`` leaves the masks attached (further training keeps the zeros) until
    :func:`make_permanent`. After :meth:`apply`, ``stats`` is :func:`sparsity_report`::

        import nasforge as nf

        pruner = nf.build("compressor", "magnitude_prune", sparsity=0.8, scope="global",
                          schedule="agp", steps=4, finetune_epochs=1)
        sparse, report = trainer.compress(model, [pruner])

    Han et al. 2015 ("Learning both Weights and Connections for Efficient Neural
    Networks"). Zeros in dense tensors bring no speedup; see :data:`NO_SPEEDUP_NOTE`.
    """

    name = "magnitude_prune"

    def __init__(
        self,
        *,
        sparsity: float = 0.5,
        scope: str = "layer",
        schedule: str = "one_shot",
        steps: int = 1,
        finetune_epochs: int = 0,
        layer_types: Sequence[str] = ("conv", "linear"),
        exclude: Sequence[str] = (),
        permanent: bool = True,
    ) -> None:
        self.sparsity = check_number(
            sparsity, "sparsity", low=0, high=1, high_open=True, hint="a fraction of weights"
        )
        self.scope = check_choice(scope, "scope", ("layer", "global"))
        self.schedule = check_choice(schedule, "schedule", SCHEDULES)
        self.amounts = schedule_amounts(self.schedule, self.sparsity, steps)
        self.steps = steps
        self.finetune_epochs = check_int(finetune_epochs, "finetune_epochs", low=0)
        self.layer_types = tuple(
            check_sequence(
                layer_types,
                "layer_types",
                lambda v, f: check_choice(v, f, tuple(_LAYER_TYPES)),
                expected=f"a list from {list(_LAYER_TYPES)}",
            )
        )
        self.exclude = tuple(check_str_list(exclude, "exclude"))
        self.permanent = check_bool(permanent, "permanent")
        self.stats: dict[str, Any] = {}

    def targets(self, model: nn.Module) -> dict[str, nn.Module]:
        """The modules whose weights are pruned: the chosen types, minus ``exclude``."""
        types = tuple(t for kind in self.layer_types for t in _LAYER_TYPES[kind])
        return {
            name: module
            for name, module in model.named_modules()
            if isinstance(module, types)
            and not any(fnmatch.fnmatchcase(name, p) for p in self.exclude)
        }

    def masks(self, model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
        """0/1 masks keeping the largest-magnitude ``1 - sparsity`` of the target weights."""
        weights = {name: _weight(m).detach().abs() for name, m in self.targets(model).items()}
        if not weights:
            raise ConfigError(
                f"no {'/'.join(self.layer_types)} layers to prune (exclude={list(self.exclude)})",
                field="layer_types",
            )
        if self.scope == "global":
            flat = torch.cat([w.flatten().cpu().float() for w in weights.values()])
            threshold = _kth(flat, int(sparsity * flat.numel()))
            return {name: (w > threshold).to(w.dtype) for name, w in weights.items()}
        masks = {}
        for name, w in weights.items():
            threshold = _kth(w.flatten().float(), int(sparsity * w.numel()))
            masks[name] = (w > threshold).to(w.dtype)
        return masks

    def apply(self, model: nn.Module, trainer: Engine) -> nn.Module:
        """Mask ``model``'s weights in place (fine-tuning between steps) and return it."""
        modules = self.targets(model)
        for step, amount in enumerate(self.amounts, start=1):
            masks = self.masks(model, amount)
            for name, mask in masks.items():
                module = modules[name]
                if parametrize.is_parametrized(module, "weight"):
                    module.parametrizations.weight[0].mask.copy_(mask)
                else:
                    parametrize.register_parametrization(module, "weight", _Mask(mask))
            logger.info(
                "magnitude_prune step %d/%d: sparsity %.3f", step, len(self.amounts), amount
            )
            if self.finetune_epochs:
                trainer.fit(model, epochs=self.finetune_epochs)
        if self.permanent:
            make_permanent(model)
        self.stats = sparsity_report(model)
        logger.info(
            "magnitude_prune: %.1f%% of conv/linear weights are zero (%s)",
            100 * self.stats["sparsity"],
            NO_SPEEDUP_NOTE,
        )
        return model

    def __repr__(self) -> str:
        return (
            f"MagnitudePruner(sparsity={self.sparsity}, scope={self.scope!r}, "
            f"schedule={self.schedule!r}, steps={self.steps}, "
            f"finetune_epochs={self.finetune_epochs})"
        )


def _kth(values: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th smallest value (k >= 1), or -1 (keep everything) for k == 0."""
    if k <= 0:
        return torch.tensor(-1.0, dtype=values.dtype, device=values.device)
    return values.kthvalue(k).values
