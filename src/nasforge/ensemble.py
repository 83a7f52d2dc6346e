"""Several trained models as one: :class:`Ensemble` averages their outputs.

:meth:`SearchResult.ensemble <nasforge.SearchResult.ensemble>` builds one from the best
architectures of a search; it is an ordinary ``nn.Module``, so it can be evaluated,
measured, exported and used as a distillation teacher like any model::

    ensemble = nf.Ensemble([model_a, model_b, model_c])          # mean of the logits
    trainer.evaluate(ensemble)["accuracy"]
    nf.Distiller(teacher=ensemble).apply(student, trainer)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ConfigError
from nasforge.validation import check_choice

__all__ = ["Ensemble"]

COMBINE = ("logits", "probabilities")


class Ensemble(nn.Module):
    """``models`` (classifiers with the same classes) as one model.

    ``combine="logits"`` returns the mean of the members' logits; ``"probabilities"``
    returns the log of their mean softmax (a valid logit vector: its softmax is the
    averaged probabilities). Members are ``members.<i>``, in the order given.
    """

    def __init__(self, models: Iterable[nn.Module], *, combine: str = "logits") -> None:
        super().__init__()
        given = models
        models = [] if isinstance(models, nn.Module | str) else list(_iterable(models))
        if not models or not all(isinstance(m, nn.Module) for m in models):
            raise ConfigError.invalid("models", given, "a non-empty list of nn.Module")
        self.combine = check_choice(combine, "combine", COMBINE)
        self.members = nn.ModuleList(models)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The combined output, shape ``(N, classes)``."""
        if self.combine == "logits":
            return torch.stack([m(inputs) for m in self.members]).mean(dim=0)
        log_probs = torch.stack([F.log_softmax(m(inputs), dim=1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}"


def _iterable(value: object) -> Iterable[object]:
    return value if isinstance(value, Iterable) else ()
