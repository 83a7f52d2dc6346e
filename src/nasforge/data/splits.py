"""Every form of data a user may have, as train/validation/test splits with a shape.

:func:`prepare_splits` is what the training evaluators (and anything else that trains
many models on one dataset) use to accept a dataset name, a :class:`DataBundle`, ``(X, y)``
arrays, Datasets, DataLoaders or tuples of them, and get the splits, the sample shape and
the number of classes back, with a clear error for anything else.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from nasforge.data.bundle import DataBundle, load_dataset, stratified_split
from nasforge.data.loaders import TensorLoader
from nasforge.errors import ConfigError

__all__ = ["Splits", "fingerprint", "prepare_splits", "split_size"]


class Splits(NamedTuple):
    """Training, validation and (optional) test data, with the sample shape and classes."""

    train: Any
    val: Any
    test: Any
    input_shape: tuple[int, ...]
    num_classes: int


def prepare_splits(data: Any, *, val_fraction: float, seed: int) -> Splits:
    """Normalise every accepted form of ``data`` to train/val/test splits, shape and classes."""
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, DataBundle):
        train, val = data.train, data.val
        if val is None:
            train, val = _split(train, _labels(train, "data.train"), val_fraction, seed)
        return Splits(train, val, data.test, tuple(data.input_shape), data.num_classes)
    if _is_pair(data) or isinstance(data, Dataset):
        parts = {"data": _as_split(data, "data")}  # split into train/val below
    elif isinstance(data, DataLoader | TensorLoader):
        raise ConfigError.invalid(
            "data",
            type(data).__name__,
            "data that can be split into train and validation",
            hint="pass (train_loader, val_loader), or the loader's dataset",
        )
    elif (
        isinstance(data, tuple | list)
        and len(data) in (2, 3)
        and all(d is not None for d in data[:2])
    ):
        parts = {  # (train, val) or (train, val, test); test may be None
            f"data[{i}]": _as_split(d, f"data[{i}]") for i, d in enumerate(data) if d is not None
        }
    else:
        raise ConfigError.invalid(
            "data",
            type(data).__name__,
            "a dataset name, a DataBundle, (X, y), a Dataset, or a tuple (train, val[, test]) "
            "of those or of DataLoaders",
        )
    shapes = {name: _sample_shape(split, name) for name, split in parts.items()}
    input_shape = next(iter(shapes.values()))
    for name, shape in shapes.items():
        if shape != input_shape:
            raise ConfigError.invalid(
                f"{name} sample shape", shape, f"the training data's {input_shape}"
            )
    labels = {name: _labels(split, name) for name, split in parts.items()}
    num_classes = max(int(y.max()) for y in labels.values()) + 1
    if "data" in parts:
        train, val = _split(parts["data"], labels["data"], val_fraction, seed)
        return Splits(train, val, None, input_shape, num_classes)
    train, val, *rest = parts.values()
    return Splits(train, val, rest[0] if rest else None, input_shape, num_classes)


def _is_pair(data: Any) -> bool:
    return (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(v, torch.Tensor | np.ndarray) for v in data)
    )


def _as_split(data: Any, name: str) -> Any:
    """One split: an ``(X, y)`` pair or TensorDataset becomes a float32/int64 TensorDataset;
    other Datasets and loaders are kept as they are."""
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        data = data.tensors
    elif isinstance(data, Dataset | DataLoader | TensorLoader):
        if split_size(data) == 0:
            raise ConfigError.invalid(name, "an empty dataset", "at least one sample")
        return data
    if not _is_pair(data):
        raise ConfigError.invalid(
            name,
            type(data).__name__,
            "(X, y) tensors or numpy arrays, a Dataset or a DataLoader",
        )
    x, y = (torch.as_tensor(v) for v in data)
    if len(x) != len(y):
        raise ConfigError(f"{name}: X and y differ in length ({len(x)} vs {len(y)})", field=name)
    if len(x) == 0:
        raise ConfigError.invalid(name, "empty arrays", "at least one sample")
    if x.dim() < 2:
        raise ConfigError.invalid(
            f"{name} X shape", tuple(x.shape), "(N, ...) with at least one feature per sample"
        )
    _check_labels(y, name)
    return TensorDataset(x.float(), y.long())


def _check_labels(y: torch.Tensor, name: str) -> None:
    if y.dim() != 1 or y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ConfigError.invalid(
            f"{name} labels",
            f"{y.dtype} of shape {tuple(y.shape)}",
            "a 1-D array of integer class labels 0..K-1",
            hint="convert with y.astype(int) or y.long(); one-hot labels need y.argmax(1)",
        )
    if len(y) and int(y.min()) < 0:
        raise ConfigError.invalid(f"{name} labels", int(y.min()), "class labels >= 0")


def _labels(split: Any, name: str) -> torch.Tensor:
    """Every label of ``split`` as a 1-D tensor (read without loading inputs when possible)."""
    if isinstance(split, TensorDataset | TensorLoader):
        y = split.tensors[1]
    elif isinstance(split, DataLoader):
        if not isinstance(split.dataset, IterableDataset):
            return _labels(split.dataset, name)
        y = torch.cat([torch.as_tensor(batch[1]) for batch in split])
    elif isinstance(split, Subset):
        y = _labels(split.dataset, name)[torch.as_tensor(split.indices, dtype=torch.long)]
    elif hasattr(split, "targets") and len(split.targets) == len(split):
        y = torch.as_tensor(split.targets)
    else:
        y = torch.stack([torch.as_tensor(split[i][1]) for i in range(len(split))])
    y = torch.as_tensor(y)
    _check_labels(y, name)
    if not len(y):
        raise ConfigError.invalid(name, "no samples", "at least one sample")
    return y


def _sample_shape(split: Any, name: str) -> tuple[int, ...]:
    if isinstance(split, TensorDataset | TensorLoader):
        return tuple(split.tensors[0].shape[1:])
    if isinstance(split, DataLoader):
        return tuple(torch.as_tensor(next(iter(split))[0]).shape[1:])
    sample = split[0]
    if not isinstance(sample, tuple | list) or len(sample) < 2:
        raise ConfigError.invalid(f"{name}[0]", type(sample).__name__, "an (input, label) pair")
    return tuple(torch.as_tensor(sample[0]).shape)


def _split(data: Any, labels: torch.Tensor, fraction: float, seed: int) -> tuple[Any, Any]:
    """Hold out a stratified ``fraction`` of ``data`` (with these ``labels``) for validation."""
    train_idx, val_idx = stratified_split(labels.numpy(), (fraction,), seed)
    if not len(train_idx) or not len(val_idx):
        raise ConfigError.invalid(
            "val_fraction",
            fraction,
            f"a fraction that leaves both training and validation samples of {len(labels)}",
            hint="pass a validation split explicitly as (train, val)",
        )
    if isinstance(data, TensorDataset):
        return (
            TensorDataset(*(t[train_idx] for t in data.tensors)),
            TensorDataset(*(t[val_idx] for t in data.tensors)),
        )
    return Subset(data, train_idx.tolist()), Subset(data, val_idx.tolist())


def fingerprint(*splits: Any) -> str | None:
    """A SHA-256 of in-memory splits' tensors (None when a split is not in memory)."""
    digest = hashlib.sha256()
    for split in splits:
        if not isinstance(split, TensorDataset | TensorLoader):
            return None
        for tensor in split.tensors:
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().data)  # no copy
    return digest.hexdigest()


def split_size(split: Any) -> int | None:
    """Number of samples of a split (None for an iterable dataset without a length)."""
    dataset: Any = split.dataset if isinstance(split, DataLoader | TensorLoader) else split
    try:
        return len(dataset)
    except TypeError:
        return None
