"""A dataset with its splits and shape, as every ``dataset`` plugin returns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from nasforge import registry
from nasforge.config import check_registered
from nasforge.errors import ConfigError


@dataclass(frozen=True)
class DataBundle:
    """Train/validation/test splits of a classification dataset.

    ``input_shape`` excludes the batch dimension, e.g. ``(1, 8, 8)`` or ``(1, 40)``.
    ``classes`` names the classes when the data does (``classes[i]`` is class ``i``'s
    label in the files a dataset was read from), else None.
    """

    name: str
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    num_classes: int
    input_shape: tuple[int, ...]
    classes: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{split}={len(getattr(self, split))}"  # type: ignore[arg-type]
            for split in ("train", "val", "test")
            if getattr(self, split) is not None
        )
        return (
            f"DataBundle({self.name!r}, {sizes}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape})"
        )


#: A dataset name ``"torchvision:CIFAR10"`` is the ``torchvision`` dataset with
#: ``dataset="CIFAR10"``.
TORCHVISION_PREFIX = "torchvision:"


def dataset_call(name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The registered dataset and options that a dataset ``name`` and ``options`` stand for:
    ``"torchvision:CIFAR10"`` is ``("torchvision", {"dataset": "CIFAR10", **options})``;
    any other name stands for itself."""
    if not isinstance(name, str) or not name.startswith(TORCHVISION_PREFIX):
        return name, options
    if "dataset" in options:
        raise ConfigError.invalid(
            "dataset", options["dataset"], f"absent: {name!r} names the torchvision dataset"
        )
    return "torchvision", {"dataset": name[len(TORCHVISION_PREFIX) :], **options}


def check_dataset_name(name: str, field: str = "data.name") -> None:
    """Refuse a dataset ``name`` that is neither registered, nor ``torchvision:ClassName``,
    nor an importable ``package.module:function``; the error names ``field``."""
    if name.startswith(TORCHVISION_PREFIX):
        from nasforge.data.files import torchvision_class

        torchvision_class(name[len(TORCHVISION_PREFIX) :], field=field)
    elif ":" in name:
        from nasforge.export import resolve_builder

        resolve_builder(name, field=field)
    else:
        check_registered(
            "dataset", name, field, also="or 'package.module:function' or 'torchvision:ClassName'"
        )


def load_dataset(name: str, **options: Any) -> DataBundle:
    """Load a registered dataset by name, e.g. ``load_dataset("digits", size=16)``, or a
    torchvision dataset as ``load_dataset("torchvision:CIFAR10", root="data")``."""
    registered, options = dataset_call(name, options)
    return registry.build("dataset", registered, **options)


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Split indices into ``len(fractions) + 1`` parts with the same class proportions.

    ``fractions`` are the sizes of the trailing parts (e.g. ``(val, test)``); the first part
    takes the rest. Each class is shuffled with ``seed`` and cut by rounding, so the split
    is reproducible.
    """
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ConfigError.invalid(
            "split fractions", fractions, "non-negative and summing to less than 1"
        )
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        sizes = [round(f * len(idx)) for f in fractions]
        cuts = len(idx) - sum(sizes) + np.cumsum([0, *sizes[:-1]])
        for part, piece in zip(parts, np.split(idx, cuts), strict=True):
            part.append(piece)
    return [np.sort(np.concatenate(p)) for p in parts]
