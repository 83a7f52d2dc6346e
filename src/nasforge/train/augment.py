"""Batch-level data augmentation for in-memory data, seeded and reproducible.

Augmentations here act on whole batches (no per-sample Python loop), so they keep the
speed of :class:`~nasforge.TensorLoader`. :class:`AugmentedLoader` applies one to every
training batch; because it is a ``TensorLoader``, the Trainer uses it as it is::

    import nasforge as nf
    from nasforge.train.augment import AugmentedLoader, Compose, GaussianNoise, RandomShift

    data = nf.load_dataset("mnist1d")
    x, y = data.train.tensors
    loader = AugmentedLoader(x, y, transform=Compose(RandomShift(4), GaussianNoise(0.05)))
    nf.Trainer(loader, data.val, epochs=50).fit(model)

Every callback sees the augmented batch in ``state.inputs``, so a distillation callback
shows the teacher exactly the view the student trains on ("consistent teaching",
Beyer et al. 2022).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from nasforge.data.loaders import DataLike, TensorLoader
from nasforge.errors import ConfigError
from nasforge.validation import check_choice, check_int, check_number

__all__ = [
    "Augment",
    "AugmentedLoader",
    "Compose",
    "GaussianNoise",
    "Mixup",
    "RandomScale",
    "RandomShift",
    "augmented",
    "in_memory",
]

Batch = tuple[torch.Tensor, torch.Tensor]


class Augment:
    """A random transform of a batch ``(inputs, targets) -> (inputs, targets)``.

    Subclasses implement :meth:`__call__` and draw every random number from ``generator``,
    so a seeded generator gives the same augmented batches twice.
    """

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Batch:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class RandomShift(Augment):
    """Shift each sample along its last axis by a random integer in ``[-max_shift, max_shift]``.

    ``mode="zeros"`` fills the vacated positions with zeros, ``"circular"`` wraps around.
    """

    def __init__(self, max_shift: int, *, mode: str = "zeros") -> None:
        self.max_shift = check_int(max_shift, "RandomShift.max_shift", low=1)
        self.mode = check_choice(mode, "RandomShift.mode", ("zeros", "circular"))

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Batch:
        n, length = inputs.shape[0], inputs.shape[-1]
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (n,), generator=generator)
        source = torch.arange(length).unsqueeze(0) - shift.unsqueeze(1)  # (n, length)
        valid = (source >= 0) & (source < length)
        source = source % length
        view = (n,) + (1,) * (inputs.dim() - 2) + (length,)
        index = source.view(view).expand_as(inputs).to(inputs.device)
        shifted = inputs.gather(-1, index)
        if self.mode == "zeros":
            shifted = shifted * valid.view(view).to(inputs.device, inputs.dtype)
        return shifted, targets


class RandomScale(Augment):
    """Multiply each sample by a random factor drawn uniformly from ``[low, high]``."""

    def __init__(self, low: float = 0.8, high: float = 1.2) -> None:
        self.low = check_number(low, "RandomScale.low", low=0, low_open=True)
        self.high = check_number(high, "RandomScale.high", low=self.low)

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Batch:
        shape = (inputs.shape[0],) + (1,) * (inputs.dim() - 1)
        factor = torch.empty(shape).uniform_(self.low, self.high, generator=generator)
        return inputs * factor.to(inputs.device, inputs.dtype), targets


class GaussianNoise(Augment):
    """Add i.i.d. Gaussian noise with standard deviation ``std``."""

    def __init__(self, std: float) -> None:
        self.std = check_number(std, "GaussianNoise.std", low=0, low_open=True)

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Batch:
        noise = torch.randn(inputs.shape, generator=generator) * self.std
        return inputs + noise.to(inputs.device, inputs.dtype), targets


class Mixup(Augment):
    """Mixup (Zhang et al. 2018): convex combinations of pairs of samples and of their labels.

    Each sample is mixed with a random partner with weight ``lam ~ Beta(alpha, alpha)``
    (per sample); integer class targets become soft targets over ``num_classes`` classes,
    which ``nn.CrossEntropyLoss`` accepts. Under distillation the teacher labels the mixed
    inputs itself, which is the "function matching" of Beyer et al. (2022).
    """

    def __init__(self, alpha: float = 0.2, *, num_classes: int) -> None:
        self.alpha = check_number(alpha, "Mixup.alpha", low=0, low_open=True)
        self.num_classes = check_int(num_classes, "Mixup.num_classes", low=2)

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Batch:
        n = inputs.shape[0]
        # torch's Beta sampler takes no generator: seed NumPy's from ours.
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        lam = torch.from_numpy(rng.beta(self.alpha, self.alpha, size=n))
        partner = torch.randperm(n, generator=generator).to(inputs.device)
        lam = lam.to(inputs.device, inputs.dtype)
        lam_x = lam.view((n,) + (1,) * (inputs.dim() - 1))
        mixed = lam_x * inputs + (1 - lam_x) * inputs[partner]
        soft = (
            F.one_hot(targets, self.num_classes).to(inputs.dtype)
            if targets.dtype == torch.long
            else targets
        )
        lam_y = lam.view(n, 1)
        return mixed, lam_y * soft + (1 - lam_y) * soft[partner]


class Compose(Augment):
    """Apply several augmentations in order."""

    def __init__(self, *augments: Augment) -> None:
        for aug in augments:
            if not isinstance(aug, Augment):
                raise ConfigError.invalid(
                    "Compose(...)", aug, "Augment instances", "e.g. Compose(RandomShift(4))"
                )
        self.augments = augments

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Batch:
        for aug in self.augments:
            inputs, targets = aug(inputs, targets, generator)
        return inputs, targets

    def __repr__(self) -> str:
        return f"Compose({', '.join(repr(a) for a in self.augments)})"


class AugmentedLoader(TensorLoader):
    """A :class:`~nasforge.TensorLoader` that augments every batch it yields.

    The random draws of epoch ``e`` come from a generator seeded with ``(seed, e)``, so two
    runs with the same seed see the same augmented batches.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        transform: Augment,
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if len(tensors) != 2:
            raise ConfigError.invalid(
                "AugmentedLoader tensors", f"{len(tensors)} tensors", "two: inputs, targets"
            )
        if not isinstance(transform, Augment):
            raise ConfigError.invalid(
                "AugmentedLoader.transform", transform, "an Augment", "e.g. RandomShift(4)"
            )
        super().__init__(
            *tensors, batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.transform = transform

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        epoch = self._epoch
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        for inputs, targets in super().__iter__():
            yield self.transform(inputs, targets, generator)
        if not self.shuffle:  # TensorLoader advances the epoch only when shuffling
            self._epoch = epoch + 1


def augmented(
    data: DataLike, transform: Augment, *, batch_size: int = 64, seed: int = 0
) -> AugmentedLoader:
    """Wrap in-memory training data (``(x, y)``, a ``TensorDataset`` or ``TensorLoader``)."""
    return AugmentedLoader(
        *in_memory(data, "to augment"), transform=transform, batch_size=batch_size, seed=seed
    )


def in_memory(data: DataLike, purpose: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(inputs, targets)`` tensors of in-memory training data (``(x, y)``, a
    ``TensorDataset`` or a ``TensorLoader``); ``purpose`` says why, for the error."""
    tensors: Any = None
    if isinstance(data, TensorLoader | TensorDataset):
        tensors = data.tensors
    elif isinstance(data, tuple | list) and len(data) == 2:
        tensors = tuple(torch.as_tensor(t) for t in data)
    if tensors is None or len(tensors) != 2:
        raise ConfigError.invalid(
            "train_data",
            type(data).__name__,
            f"in-memory data {purpose}: (inputs, targets), a TensorDataset or a TensorLoader",
            "augment inside your own Dataset/DataLoader instead, and leave augment=None",
        )
    return tensors[0], tensors[1]
