"""The torch side of the ``transfer`` space: the model it builds and how a torchvision
classifier divides into stages and a classifier (imported when a transfer space is built)."""

from __future__ import annotations

import torch
from torch import nn

from nasforge.errors import ConfigError

__all__ = ["TransferModel", "backbone_stages", "classifier_path"]

#: Children holding the stages of a torchvision backbone, expanded into them.
_STAGE_CONTAINERS = ("features", "trunk_output")
#: Names of a torchvision classifier's top-level module.
_CLASSIFIERS = ("fc", "classifier", "head", "heads")


class TransferModel(nn.Module):
    """A backbone whose module ``head`` (a qualified name) is the new head; ``stages`` are
    its stages from the input, of which the first ``frozen`` do not train. Inputs of
    other than 3 channels are mapped to 3."""

    def __init__(self, backbone: nn.Module, *, head: str, in_channels: int, frozen: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.backbone = backbone
        self.head = head
        self.stages = backbone_stages(backbone)
        self.freeze(frozen)

    def freeze(self, count: int) -> None:
        """Make the first ``count`` stages untrainable and the others trainable."""
        for i, stage in enumerate(self.stages):
            for p in stage.parameters():
                p.requires_grad_(i >= count)

    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters of the new head (the rest are the backbone's)."""
        return list(self.backbone.get_submodule(self.head).parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, *x.shape[2:])
        elif self.in_channels != 3:
            x = x.mean(dim=1, keepdim=True).expand(-1, 3, *x.shape[2:])
        return self.backbone(x)


def backbone_stages(model: nn.Module) -> list[nn.Module]:
    """The stages of a torchvision classifier from the input: its top-level children with
    parameters (the blocks of ``features``/``trunk_output``), the classifier excluded."""
    stages: list[nn.Module] = []
    for name, child in model.named_children():
        if name in _CLASSIFIERS or not any(True for _ in child.parameters()):
            continue
        if name in _STAGE_CONTAINERS:
            stages += [c for c in child.children() if any(True for _ in c.parameters())]
        else:
            stages.append(child)
    if not stages:
        raise ConfigError.invalid("backbone", type(model).__name__, "a model with stages")
    return stages


def classifier_path(model: nn.Module) -> str:
    """The qualified name of a torchvision classifier's last ``nn.Linear`` (``"fc"``,
    ``"classifier.1"``...): the layer a new head replaces."""
    for name in _CLASSIFIERS:
        classifier = getattr(model, name, None)
        if isinstance(classifier, nn.Linear):
            return name
        if isinstance(classifier, nn.Module):
            linears = [n for n, m in classifier.named_modules() if isinstance(m, nn.Linear)]
            if linears:
                return f"{name}.{linears[-1]}"
    raise ConfigError.invalid(
        "backbone", type(model).__name__, f"a classifier whose head is one of {_CLASSIFIERS}"
    )
