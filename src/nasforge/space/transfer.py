"""Transfer learning as a search space: how to fine-tune a pretrained torchvision backbone.

:class:`TransferSpace` (registered as space ``transfer``) searches

- ``freeze``: how many of the backbone's stages (from the input) stay frozen;
- ``unfreeze``: gradual unfreezing (one more stage trainable after every epoch);
- ``head_depth`` and ``head_width``: hidden layers of the new classification head;
- ``dropout``: before each layer of the head;
- ``backbone_lr`` and ``head_lr``: the learning rates of the two parameter groups.

:meth:`TransferSpace.build` returns a :class:`TransferModel`: the backbone with its
weights (``weights``: a local state_dict file, or a torchvision weights name such as
``"DEFAULT"``, which downloads), its last linear layer replaced by the searched head.
:class:`~nasforge.evaluators.TransferEvaluator` trains it with the two learning rates::

    space = nf.build("space", "transfer", backbone="resnet18", weights="pretrained.pt")
    model = space.build(space.sample(seed=0), input_shape=(3, 32, 32), num_classes=5)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import CheckpointError, ConfigError
from nasforge.registry import register
from nasforge.space.base import Arch, Space
from nasforge.space.params import Choice, FloatRange, IntRange
from nasforge.validation import check_int, check_int_list, check_number

if TYPE_CHECKING:
    from torch import nn

    from nasforge.space._transfer_model import TransferModel

__all__ = ["TransferSpace"]


@register("space", "transfer")
class TransferSpace(Space):
    """How to fine-tune ``backbone`` (a torchvision classification model's name).

    ``weights`` is None (random initialisation: training from scratch), a path to a
    state_dict saved from the same backbone (any classifier size: the classifier is
    replaced), or a torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``...), which
    torchvision downloads. ``head_widths``, ``max_head_depth``, ``dropouts`` and the
    learning-rate ranges shape the search; ``freeze`` ranges over 0 to the number of stages.
    """

    def __init__(
        self,
        *,
        backbone: str = "resnet18",
        weights: str | os.PathLike[str] | None = None,
        head_widths: Sequence[int] = (128, 256),
        max_head_depth: int = 1,
        dropouts: Sequence[float] = (0.0, 0.2, 0.5),
        backbone_lr: tuple[float, float] = (1e-5, 1e-2),
        head_lr: tuple[float, float] = (1e-4, 1e-1),
    ) -> None:
        if not isinstance(backbone, str) or ":" in backbone:
            raise ConfigError.invalid("transfer.backbone", backbone, "a torchvision model name")
        from nasforge.export import resolve_builder
        from nasforge.space._transfer_model import backbone_stages

        resolve_builder(backbone, field="transfer.backbone")  # an unknown name fails here
        if weights is not None and not isinstance(weights, str | os.PathLike):
            raise ConfigError.invalid(
                "transfer.weights", weights, "None, a state_dict file or a weights name"
            )
        self.backbone, self.weights = backbone, weights
        self.stages = len(backbone_stages(self._torchvision()))
        widths = check_int_list(head_widths, "transfer.head_widths", low=1, distinct=True)
        check_int(max_head_depth, "transfer.max_head_depth", low=0, high=4)
        if isinstance(dropouts, str) or not isinstance(dropouts, Sequence) or not dropouts:
            raise ConfigError.invalid("transfer.dropouts", dropouts, "a list of rates in [0, 1)")
        rates = [
            check_number(d, "transfer.dropouts", low=0, high=1, high_open=True) for d in dropouts
        ]
        params = [
            IntRange("freeze", 0, self.stages),
            Choice("unfreeze", [False, True]),
            IntRange("head_depth", 0, max_head_depth),
        ]
        if max_head_depth > 0:
            when = {"head_depth": list(range(1, max_head_depth + 1))}
            params.append(Choice("head_width", widths, when=when))
        params += [
            Choice("dropout", list(dict.fromkeys(float(r) for r in rates))),
            FloatRange("backbone_lr", *_range(backbone_lr, "transfer.backbone_lr"), log=True),
            FloatRange("head_lr", *_range(head_lr, "transfer.head_lr"), log=True),
        ]
        super().__init__(params, name="transfer")

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.weights is not None:  # a Path is not plain data
            data["options"]["weights"] = os.fspath(self.weights)
        return data

    def build(  # type: ignore[override]
        self, arch: Arch, *, input_shape: Sequence[int], num_classes: int
    ) -> TransferModel:
        """The backbone with its weights and the head of ``arch``, for ``(C, H, W)``
        images (other than 3 channels are repeated or averaged to 3)."""
        from torch import nn

        from nasforge.space._transfer_model import TransferModel, classifier_path

        arch = self.arch(arch)
        shape = tuple(check_int_list(input_shape, "input_shape", low=1))
        if len(shape) != 3:
            raise ConfigError.invalid("input_shape", shape, "(C, H, W): the backbone takes images")
        check_int(num_classes, "num_classes", low=1)
        backbone = self._backbone()
        path = classifier_path(backbone)
        linear = backbone.get_submodule(path)
        head: list[nn.Module] = []
        width = linear.in_features
        for _ in range(arch.get("head_depth", 0)):
            head += [nn.Dropout(arch["dropout"]), nn.Linear(width, arch["head_width"]), nn.ReLU()]
            width = arch["head_width"]
        head += [nn.Dropout(arch["dropout"]), nn.Linear(width, num_classes)]
        parent, _, attr = path.rpartition(".")
        setattr(backbone.get_submodule(parent), attr, nn.Sequential(*head))
        return TransferModel(backbone, head=path, in_channels=shape[0], frozen=arch["freeze"])

    def _torchvision(self, **options: Any) -> nn.Module:
        from nasforge.export import resolve_builder

        return resolve_builder(self.backbone, field="transfer.backbone")(**options)

    def _backbone(self) -> nn.Module:
        import torch

        from nasforge.space._transfer_model import classifier_path

        if self.weights is None:
            return self._torchvision()
        path = Path(self.weights)
        if not path.is_file():
            if os.sep in str(self.weights) or path.suffix:
                raise ConfigError.invalid("transfer.weights", str(self.weights), "an existing file")
            return self._torchvision(weights=str(self.weights))  # torchvision downloads them
        model = self._torchvision()
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        prefix = classifier_path(model)
        kept = {k: v for k, v in state.items() if not k.startswith(f"{prefix}.")}
        missing, unexpected = model.load_state_dict(kept, strict=False)
        missing = [k for k in missing if not k.startswith(f"{prefix}.")]
        if missing or unexpected:
            raise CheckpointError(
                f"{path} does not hold {self.backbone} weights: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}"
            )
        return model


def _range(value: Any, field: str) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ConfigError.invalid(field, value, "a (low, high) pair")
    low = check_number(value[0], field, low=0, low_open=True)
    high = check_number(value[1], field, low=low, low_open=True)
    return float(low), float(high)
