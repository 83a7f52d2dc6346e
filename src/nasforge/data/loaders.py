"""Turning whatever the user has (tensors, arrays, Datasets, DataLoaders) into batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nasforge.errors import ConfigError
from nasforge.validation import check_int

DataLike = Any  # Dataset | DataLoader | (x, y) tensors/arrays | TensorLoader


class TensorLoader:
    """Batches over in-memory tensors without per-sample indexing and collation.

    For data that fits in memory this is several times faster than a ``DataLoader`` over a
    ``TensorDataset``. Shuffling is seeded: epoch ``e`` uses the generator seeded with
    ``seed + e``, so two runs see the same batches.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ConfigError("TensorLoader needs tensors of equal length along dim 0")
        check_int(batch_size, "batch_size", low=1)
        check_int(seed, "seed")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.dataset = TensorDataset(*tensors)
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the next pass as epoch ``epoch`` (each pass otherwise advances by one)."""
        self._epoch = epoch

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self._epoch)
            order = torch.randperm(n, generator=generator)
            self._epoch += 1
            tensors = tuple(t[order] for t in self.tensors)
        else:
            tensors = self.tensors
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield tuple(t[sl] for t in tensors)


def as_loader(
    data: DataLike,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    name: str = "data",
) -> DataLoader | TensorLoader:
    """Return an iterable of ``(inputs, targets)`` batches for ``data``.

    Accepts a ``DataLoader`` or ``TensorLoader`` (used as is), a ``TensorDataset`` or a pair
    ``(x, y)`` of tensors or numpy arrays (batched in memory by :class:`TensorLoader`), or
    any map-style ``Dataset`` (wrapped in a seeded ``DataLoader``).
    """
    if isinstance(data, DataLoader | TensorLoader):
        return data
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = (_as_tensor(v, f"{name}[{i}]") for i, v in enumerate(data))
        if len(x) != len(y):
            raise ConfigError(
                f"{name}: inputs and targets differ in length ({len(x)} vs {len(y)})", field=name
            )
        data = TensorDataset(x, y.long() if not y.is_floating_point() else y)
    if isinstance(data, TensorDataset) and num_workers == 0:
        return TensorLoader(*data.tensors, batch_size=batch_size, shuffle=shuffle, seed=seed)
    if isinstance(data, Dataset):
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=num_workers,
        )
    raise ConfigError.invalid(
        name,
        type(data).__name__,
        "a Dataset, a DataLoader, or a pair (inputs, targets) of tensors or numpy arrays",
    )


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        return tensor.float() if tensor.is_floating_point() else tensor
    raise ConfigError.invalid(name, type(value).__name__, "a torch.Tensor or numpy array")
