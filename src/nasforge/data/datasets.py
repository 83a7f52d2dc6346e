"""Built-in ``dataset`` plugins: ``digits``, ``mnist1d`` and ``synthetic``.

``digits`` is scikit-learn's bundled copy of the UCI optical digits test set (1,797 8x8
images, CC BY 4.0; Alpaydin & Kaynak 1998). nasforge ships the same 45 kB of pixels in
``nasforge/data/digits.npz`` so that the core install, which does not depend on
scikit-learn, can train on real data with no download.
"""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from nasforge.data.bundle import DataBundle, stratified_split
from nasforge.errors import ConfigError, MissingDependencyError
from nasforge.registry import register
from nasforge.validation import check_int, check_number, check_sequence


def _bundle(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    splits: list[np.ndarray],
    num_classes: int,
) -> DataBundle:
    train, val, test = (TensorDataset(x[idx], y[idx]) if len(idx) else None for idx in splits)
    assert train is not None
    return DataBundle(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        input_shape=tuple(x.shape[1:]),
    )


#: The most float values :func:`synthetic` generates (400 MB).
_MAX_SYNTHETIC_VALUES = 10**8


def _check_fraction(name: str, value: float) -> None:
    check_number(value, name, low=0, high=1, high_open=True)


@register("dataset", "digits")
def digits(
    *,
    size: int = 8,
    channels: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> DataBundle:
    """Handwritten digits, 8x8 grey images in 10 classes (1,797 samples, ships with nasforge).

    ``size`` upsamples the images bilinearly (e.g. 16 or 32 for ImageNet-style networks),
    ``channels`` is 1 or 3 (grey repeated), and the stratified train/val/test split is
    drawn with ``seed``. Pixels are scaled to [0, 1].
    """
    check_int(size, "digits.size", low=8, hint="the native size is 8")
    if check_int(channels, "digits.channels") not in (1, 3):
        raise ConfigError.invalid("digits.channels", channels, "1 or 3")
    _check_fraction("digits.val_fraction", val_fraction)
    _check_fraction("digits.test_fraction", test_fraction)
    check_int(seed, "digits.seed", low=0)
    with resources.files("nasforge.data").joinpath("digits.npz").open("rb") as fh:
        raw = np.load(fh)
        images, targets = raw["images"], raw["targets"]
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(targets.astype(np.int64))
    splits = stratified_split(targets, (val_fraction, test_fraction), seed)
    return _bundle("digits", x, y, splits, num_classes=10)


@register("dataset", "mnist1d")
def mnist1d(
    *,
    num_samples: int = 5000,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 42,
    split_seed: int = 0,
) -> DataBundle:
    """MNIST-1D (Greydanus 2020): 1-D signals of length 40 in 10 classes, generated locally.

    The defaults reproduce the paper's standard dataset (5,000 samples, seed 42: 4,000
    train and 1,000 test); ``val_fraction`` of the training part is held out, stratified,
    with ``split_seed``. Needs the ``mnist1d`` package (``pip install mnist1d``); nothing
    is downloaded.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise MissingDependencyError(
            "mnist1d", purpose="to generate the MNIST-1D dataset"
        ) from None
    check_int(num_samples, "mnist1d.num_samples", low=100)
    _check_fraction("mnist1d.test_fraction", test_fraction)
    _check_fraction("mnist1d.val_fraction", val_fraction)
    check_int(seed, "mnist1d.seed", low=0)
    check_int(split_seed, "mnist1d.split_seed", low=0)
    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = 1 - test_fraction
    args.seed = seed
    state = np.random.get_state()  # make_dataset reseeds numpy's global generator
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    x_trainval = torch.from_numpy(data["x"].astype(np.float32)).unsqueeze(1)
    y_trainval = torch.from_numpy(data["y"].astype(np.int64))
    train_idx, val_idx = stratified_split(data["y"], (val_fraction,), split_seed)
    x_test = torch.from_numpy(data["x_test"].astype(np.float32)).unsqueeze(1)
    y_test = torch.from_numpy(data["y_test"].astype(np.int64))
    return DataBundle(
        name="mnist1d",
        train=TensorDataset(x_trainval[train_idx], y_trainval[train_idx]),
        val=TensorDataset(x_trainval[val_idx], y_trainval[val_idx]) if len(val_idx) else None,
        test=TensorDataset(x_test, y_test) if len(y_test) else None,
        num_classes=10,
        input_shape=tuple(x_trainval.shape[1:]),
    )


@register("dataset", "synthetic")
def synthetic(
    *,
    num_samples: int = 600,
    input_shape: tuple[int, ...] | list[int] = (1, 8, 8),
    num_classes: int = 3,
    noise: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DataBundle:
    """Gaussian clusters around one random prototype per class; learnable in seconds.

    Meant for fast tests: any ``input_shape`` (vectors, 1-D signals, images), any number of
    classes; ``noise`` sets how hard the classes are to tell apart.
    """
    shape = tuple(
        check_sequence(
            input_shape,
            "synthetic.input_shape",
            lambda v, f: check_int(v, f, low=1),
            expected="a list of positive integers",
        )
    )
    check_int(num_classes, "synthetic.num_classes", low=2)
    check_int(
        num_samples,
        "synthetic.num_samples",
        low=2 * num_classes,
        hint=f"at least 2 * num_classes = {2 * num_classes}",
    )
    if num_samples * math.prod(shape) > _MAX_SYNTHETIC_VALUES:
        raise ConfigError.invalid(
            "synthetic.num_samples",
            num_samples,
            f"num_samples * prod(input_shape) <= {_MAX_SYNTHETIC_VALUES:,} (synthetic data is "
            "for tests)",
        )
    check_number(noise, "synthetic.noise", low=0)
    check_int(seed, "synthetic.seed", low=0)
    _check_fraction("synthetic.val_fraction", val_fraction)
    _check_fraction("synthetic.test_fraction", test_fraction)
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn((num_classes, *shape), generator=generator)
    y = torch.arange(num_samples) % num_classes
    y = y[torch.randperm(num_samples, generator=generator)]
    x = prototypes[y] + noise * torch.randn((num_samples, *shape), generator=generator)
    splits = stratified_split(y.numpy(), (val_fraction, test_fraction), seed)
    return _bundle("synthetic", x, y, splits, num_classes=num_classes)
