"""Built-in ``dataset`` plugins that read your files: ``csv``, ``npz``, ``imagefolder`` and
``torchvision`` (any dataset of ``torchvision.datasets`` by class name, also written
``"torchvision:CIFAR10"``).

Every one returns a :class:`~nasforge.DataBundle` whose splits are stratified and drawn with
``seed``; class labels that are not already ``0..K-1`` (strings such as ``"cat"``, or
integers such as ``1..K``) are sorted and mapped to ``0..K-1``, and the names are kept in
``DataBundle.classes``. Nothing is downloaded unless ``download=True`` is given.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from nasforge.data.bundle import TORCHVISION_PREFIX, DataBundle, stratified_split
from nasforge.errors import ConfigError, close_matches
from nasforge.registry import register
from nasforge.validation import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_options,
    check_sequence,
    check_str,
    check_str_list,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TransformedSplit",
    "csv_file",
    "image_folder",
    "npz_file",
    "torchvision_dataset",
]

#: Per-channel mean and standard deviation of ImageNet (``normalize="imagenet"``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_AUGMENTATIONS = ("crop", "flip")


# --- shared checks and helpers -----------------------------------------------------------


def _check_splits(prefix: str, val_fraction: float, test_fraction: float, seed: int) -> None:
    check_number(val_fraction, f"{prefix}.val_fraction", low=0, high=1, high_open=True)
    check_number(test_fraction, f"{prefix}.test_fraction", low=0, high=1, high_open=True)
    if val_fraction + test_fraction >= 1:
        raise ConfigError.invalid(
            f"{prefix}.val_fraction + test_fraction",
            val_fraction + test_fraction,
            "less than 1 (the rest is the training split)",
        )
    check_int(seed, f"{prefix}.seed", low=0)


def _check_path(value: Any, field: str, *, directory: bool = False) -> Path:
    """``value`` (a string or path) as an existing file, or directory with ``directory``."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ConfigError.invalid(field, value, "a path (a string)")
    path = Path(value).expanduser()
    if not (path.is_dir() if directory else path.is_file()):
        what = "directory" if directory else "file"
        found = "is not a directory" if path.is_file() else "does not exist"
        if not directory and path.is_dir():
            found = "is a directory"
        raise ConfigError(
            f"{field}: {what} {str(path)!r} {found} (relative paths are resolved against "
            f"the working directory {os.getcwd()!r})",
            field=field,
        )
    return path


def _class_indices(labels: np.ndarray, field: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels (integers or strings) as int64 indices ``0..K-1`` in sorted order, and the
    class names; integer labels that already are ``0..K-1`` keep their values."""
    names, indices = np.unique(labels, return_inverse=True)
    if len(names) < 2:
        raise ConfigError(
            f"{field}: every sample has the label {str(names[0]) if len(names) else None!r}; "
            "a classifier needs at least 2 classes",
            field=field,
        )
    return indices.reshape(-1).astype(np.int64), tuple(str(n) for n in names)


def _fraction_splits(
    name: str, targets: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    parts = stratified_split(targets, fractions, seed)
    if not len(parts[0]):
        raise ConfigError(
            f"{name}: {len(targets)} samples leave none for training with the split "
            f"fractions {fractions}",
            field=name,
        )
    return parts


def _split_arrays(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    fractions: tuple[float, ...],
    seed: int,
) -> list[TensorDataset | None]:
    """Stratified splits of in-memory data: train first, then one per fraction (None when
    empty); a training split without samples is an error naming ``name``."""
    parts = _fraction_splits(name, y.numpy(), fractions, seed)
    return [TensorDataset(x[idx], y[idx]) if len(idx) else None for idx in parts]


# --- csv ---------------------------------------------------------------------------------


@register("dataset", "csv")
def csv_file(
    *,
    path: str | os.PathLike[str],
    target: str | None = None,
    features: Sequence[str] | None = None,
    delimiter: str = ",",
    standardize: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> DataBundle:
    """Tabular data from a CSV file with a header row: numeric feature columns and a target.

    ``target`` names the label column (default: the last one); ``features`` lists the input
    columns (default: all others). Features become float32 vectors (``standardize``:
    shifted and scaled to mean 0, std 1 with the training split's statistics); labels that
    are not ``0..K-1`` are sorted and mapped to class indices, their names kept in
    ``classes``.
    """
    file = _check_path(path, "csv.path")
    check_str(target, "csv.target", optional=True)
    if features is not None:
        check_str_list(features, "csv.features", min_length=1)
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise ConfigError.invalid("csv.delimiter", delimiter, "one character, e.g. ',' or ';'")
    check_bool(standardize, "csv.standardize")
    _check_splits("csv", val_fraction, test_fraction, seed)
    x, y, classes = _csv_arrays(file, target, features, delimiter)
    train, val, test = _split_arrays(
        "csv", torch.from_numpy(x), torch.from_numpy(y), (val_fraction, test_fraction), seed
    )
    if standardize:
        train, val, test = _standardize(train, val, test)
    assert train is not None
    return DataBundle(
        name="csv",
        train=train,
        val=val,
        test=test,
        num_classes=len(classes),
        input_shape=(x.shape[1],),
        classes=classes,
    )


def _csv_arrays(
    file: Path, target: str | None, features: Sequence[str] | None, delimiter: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The features (float32), class indices and class names of a CSV file."""
    header, lines, rows = _read_csv(file, delimiter)
    target = target if target is not None else header[-1]
    if target not in header:
        raise ConfigError.invalid(
            "csv.target",
            target,
            f"a column of {str(file)!r} ({', '.join(map(repr, header))})",
            close_matches(target, header).strip() or None,
        )
    columns = _feature_columns(header, target, features, file)
    table = np.array(rows, dtype=str).reshape(len(rows), len(header))
    x = np.empty((len(rows), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        x[:, j] = _numeric_column(table[:, header.index(column)], column, lines, file)
    labels = _target_values(table[:, header.index(target)], target, lines, file)
    y, classes = _class_indices(labels, f"csv.target (column {target!r} of {str(file)!r})")
    return x, y, classes


def _read_csv(file: Path, delimiter: str) -> tuple[list[str], list[int], list[list[str]]]:
    """The header, the line number of every data row, and the rows (blank lines skipped)."""
    header: list[str] | None = None
    lines: list[int] = []
    rows: list[list[str]] = []
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                cells = [cell.strip() for cell in row]
                if header is None:
                    header = cells
                    continue
                if len(cells) != len(header):
                    raise ConfigError(
                        f"csv.path: {str(file)!r} line {reader.line_num} has {len(cells)} "
                        f"fields, but the header has {len(header)}. HINT: is the delimiter "
                        f"{delimiter!r} right? (option delimiter)",
                        field="csv.path",
                    )
                lines.append(reader.line_num)
                rows.append(cells)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(
            f"csv.path: {str(file)!r} is not a readable UTF-8 CSV file ({exc})", field="csv.path"
        ) from None
    if header is None:
        raise ConfigError(
            f"csv.path: {str(file)!r} is empty; expected a header row of column names and "
            "one row per sample",
            field="csv.path",
        )
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates or "" in header:
        raise ConfigError.invalid(
            f"csv header of {str(file)!r}", header, "distinct, non-empty column names"
        )
    if not rows:
        raise ConfigError(
            f"csv.path: {str(file)!r} has a header but no data rows", field="csv.path"
        )
    return header, lines, rows


def _feature_columns(
    header: list[str], target: str, features: Sequence[str] | None, file: Path
) -> list[str]:
    if features is None:
        columns = [c for c in header if c != target]
        if not columns:
            raise ConfigError(
                f"csv.path: {str(file)!r} has only the target column {target!r}; features "
                "need at least one more column",
                field="csv.path",
            )
        return columns
    for i, column in enumerate(features):
        if column not in header:
            raise ConfigError.invalid(
                f"csv.features[{i}]",
                column,
                f"a column of {str(file)!r} ({', '.join(map(repr, header))})",
                close_matches(column, header).strip() or None,
            )
        if column == target:
            raise ConfigError.invalid(
                f"csv.features[{i}]", column, "a column other than the target"
            )
    if len(set(features)) != len(features):
        raise ConfigError.invalid("csv.features", list(features), "distinct column names")
    return list(features)


def _numeric_column(values: np.ndarray, column: str, lines: list[int], file: Path) -> np.ndarray:
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        numbers = None
    if numbers is not None and np.isfinite(numbers).all():
        return numbers
    for line, value in zip(lines, values, strict=True):
        try:
            ok = math.isfinite(float(value))
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(
                f"csv.path: {str(file)!r} line {line}, column {column!r}: {str(value)!r} is "
                "not a finite number. HINT: feature columns must be numeric and complete; "
                "choose the numeric columns with the option features",
                field="csv.features",
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _target_values(values: np.ndarray, column: str, lines: list[int], file: Path) -> np.ndarray:
    """The target column as integers when every value is an integer, else as strings."""
    empty = np.flatnonzero(values == "")
    if len(empty):
        raise ConfigError(
            f"csv.path: {str(file)!r} line {lines[empty[0]]}: the target column {column!r} "
            "is empty",
            field="csv.target",
        )
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        return values
    if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
        return numbers.astype(np.int64)
    return values


def _standardize(*splits: TensorDataset | None) -> list[TensorDataset | None]:
    """Shift and scale every split's features with the first (training) split's statistics."""
    x = splits[0].tensors[0]  # type: ignore[union-attr]
    mean, std = x.mean(0), x.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [
        None if s is None else TensorDataset((s.tensors[0] - mean) / std, s.tensors[1])
        for s in splits
    ]


# --- npz ---------------------------------------------------------------------------------


@register("dataset", "npz")
def npz_file(
    *,
    path: str | os.PathLike[str],
    x: str = "x",
    y: str = "y",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> DataBundle:
    """Arrays from a NumPy ``.npz`` file: inputs ``x`` of shape (N, ...) and labels ``y``.

    A file with ``{x}_train``/``{y}_train`` (and optionally ``_val``, ``_test``) arrays is
    pre-split: those splits are used as they are, a missing validation split is held out
    of the training one with ``val_fraction`` and a missing test split stays absent.
    Otherwise ``x``/``y`` are split with ``val_fraction``/``test_fraction``. Inputs become
    float32 as they are (scale images yourself); labels may be integers or strings.
    """
    file = _check_path(path, "npz.path")
    check_str(x, "npz.x")
    check_str(y, "npz.y")
    _check_splits("npz", val_fraction, test_fraction, seed)
    tensors, classes = _npz_arrays(file, x, y)
    if "" in tensors:  # not pre-split
        train, val, test = _split_arrays("npz", *tensors[""], (val_fraction, test_fraction), seed)
    else:
        test = TensorDataset(*tensors["test"]) if "test" in tensors else None
        if "val" in tensors:
            train, val = TensorDataset(*tensors["train"]), TensorDataset(*tensors["val"])
        else:
            train, val = _split_arrays("npz", *tensors["train"], (val_fraction,), seed)
    assert train is not None
    return DataBundle(
        name="npz",
        train=train,
        val=val,
        test=test,
        num_classes=len(classes),
        input_shape=tuple(train.tensors[0].shape[1:]),
        classes=classes,
    )


def _npz_arrays(
    file: Path, x: str, y: str
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], tuple[str, ...]]:
    """The (inputs, class indices) of each split an .npz file holds (``""`` when it is not
    pre-split), and the class names."""
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"npz.path: {str(file)!r} is not a NumPy .npz file ({exc})", field="npz.path"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(
            f"npz.path: {str(file)!r} holds one array; save named arrays with "
            "np.savez(path, x=..., y=...)",
            field="npz.path",
        )
    with archive:
        keys = list(archive.files)
        presplit = f"{x}_train" in keys or f"{y}_train" in keys
        names = ("train", "val", "test") if presplit else ("",)
        arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in names:
            xk, yk = (f"{k}_{split}" if split else k for k in (x, y))
            if split in ("val", "test") and xk not in keys and yk not in keys:
                continue
            arrays[split] = _npz_pair(archive, keys, xk, yk, file)
    shapes = {split: xs.shape[1:] for split, (xs, _) in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ConfigError.invalid(
            f"npz sample shapes of {str(file)!r}", shapes, "the same shape in every split"
        )
    sizes = np.cumsum([len(ys) for _, ys in arrays.values()])[:-1]
    labels = np.concatenate([ys for _, ys in arrays.values()])
    codes, classes = _class_indices(labels, f"npz.y (labels in {str(file)!r})")
    return {
        split: (torch.from_numpy(np.ascontiguousarray(xs, np.float32)), torch.from_numpy(c))
        for (split, (xs, _)), c in zip(arrays.items(), np.split(codes, sizes), strict=True)
    }, classes


def _npz_pair(
    archive: Any, keys: list[str], xk: str, yk: str, file: Path
) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``xk``/``yk``: numeric inputs of shape (N, ...) and N labels."""
    for key, option in ((xk, "npz.x"), (yk, "npz.y")):
        if key not in keys:
            raise ConfigError.invalid(
                option,
                key,
                f"an array of {str(file)!r} ({', '.join(map(repr, keys)) or 'none'})",
                close_matches(key, keys).strip() or None,
            )
    try:
        xs, ys = archive[xk], archive[yk]
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise ConfigError(
            f"npz.path: {str(file)!r}: cannot read {xk!r}/{yk!r} without pickle ({exc}); save "
            "numeric or string arrays",
            field="npz.path",
        ) from None
    if xs.dtype.kind not in "biuf" or xs.ndim < 2 or not len(xs):
        raise ConfigError.invalid(
            f"npz array {xk!r}", f"{xs.dtype} of shape {xs.shape}", "numbers of shape (N, ...)"
        )
    if not np.isfinite(xs).all():
        raise ConfigError.invalid(f"npz array {xk!r}", "NaN or infinite values", "finite numbers")
    if ys.ndim != 1 or len(ys) != len(xs) or ys.dtype.kind not in "biufUS":
        raise ConfigError.invalid(
            f"npz array {yk!r}",
            f"{ys.dtype} of shape {ys.shape}",
            f"{len(xs)} labels (integers or strings) in a 1-D array, one per row of {xk!r}",
        )
    if ys.dtype.kind == "f":
        if not (np.isfinite(ys).all() and (ys == np.round(ys)).all()):
            raise ConfigError.invalid(
                f"npz array {yk!r}", "non-integer numbers", "integer or string class labels"
            )
        ys = ys.astype(np.int64)
    return xs, ys


# --- images: transforms and the split view -----------------------------------------------


class TransformedSplit(Dataset):
    """The samples ``indices`` of ``dataset``, inputs passed through ``transform``.

    ``targets`` holds their labels (read without loading any input). With ``shape``, an
    input of any other shape is a :class:`ConfigError` naming the sample (its file when the
    dataset has ``samples``, as ``ImageFolder`` does).
    """

    def __init__(
        self,
        dataset: Any,
        indices: Sequence[int] | np.ndarray,
        targets: np.ndarray,
        transform: Callable[[Any], torch.Tensor],
        shape: tuple[int, ...] | None = None,
    ) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.targets = np.asarray(targets, dtype=np.int64)[self.indices]
        self.transform = transform
        self.shape = shape

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        index = self.indices[i]
        x = self.transform(self.dataset[index][0])
        if self.shape is not None and tuple(x.shape) != self.shape:
            samples = getattr(self.dataset, "samples", None)
            where = repr(samples[index][0]) if samples else f"sample {index}"
            raise ConfigError(
                f"{where} becomes an input of shape {tuple(x.shape)}, but the first is "
                f"{self.shape}. HINT: set the option size to resize every image",
                field="size",
            )
        return x, int(self.targets[i])


class _ConvertMode:
    """A PIL image in mode ``mode`` ("L": 1 channel, "RGB": 3)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image: Any) -> Any:
        return image if image.mode == self.mode else image.convert(self.mode)


def _check_size(value: Any, field: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        pair = check_sequence(
            value, field, lambda v, f: check_int(v, f, low=1), expected="a list [height, width]"
        )
        if len(pair) != 2:
            raise ConfigError.invalid(field, value, "an integer or a list [height, width]")
        return pair[0], pair[1]
    side = check_int(value, field, low=1, hint="an integer or a list [height, width]")
    return side, side


def _check_channels(value: Any, field: str, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if check_int(value, field) not in (1, 3):
        raise ConfigError.invalid(field, value, "1 or 3" + (" or None" if optional else ""))
    return int(value)


def _check_normalize(value: Any, field: str, channels: int | None) -> Any:
    """``normalize``: False, True (the training split's statistics), ``"imagenet"`` or
    ``{mean: [...], std: [...]}``; returns False, True or a (mean, std) pair."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        check_choice(value, field, ("imagenet",))
        if channels == 1:
            raise ConfigError.invalid(
                field, value, "not 'imagenet' with 1 channel (ImageNet images are RGB)"
            )
        return IMAGENET_MEAN, IMAGENET_STD
    if not isinstance(value, dict) or set(value) != {"mean", "std"}:
        raise ConfigError.invalid(
            field,
            value,
            "false, true (the training split's statistics), 'imagenet' or "
            "{mean: [...], std: [...]}",
        )
    mean = check_sequence(value["mean"], f"{field}.mean", check_number, expected="numbers")
    std = check_sequence(
        value["std"],
        f"{field}.std",
        lambda v, f: check_number(v, f, low=0, low_open=True),
        expected="positive numbers",
    )
    if len(mean) != len(std) or (channels is not None and len(mean) != channels):
        raise ConfigError.invalid(
            field, value, "one mean and one std per channel" + (f" ({channels})" * bool(channels))
        )
    return tuple(mean), tuple(std)


def _check_augment(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, bool):
        return _AUGMENTATIONS if value else ()
    return tuple(
        check_sequence(
            value,
            field,
            lambda v, f: check_choice(v, f, _AUGMENTATIONS),
            min_length=0,
            distinct=True,
            expected="true, false or a list of 'crop' and 'flip'",
        )
    )


class _ImageOptions(NamedTuple):
    size: tuple[int, int] | None
    channels: int | None
    normalize: Any  # False, True or (mean, std)
    augment: tuple[str, ...]


def _image_options(
    prefix: str,
    size: Any,
    channels: Any,
    normalize: Any,
    augment: Any,
    *,
    channels_optional: bool,
) -> _ImageOptions:
    ch = _check_channels(channels, f"{prefix}.channels", optional=channels_optional)
    return _ImageOptions(
        _check_size(size, f"{prefix}.size"),
        ch,
        _check_normalize(normalize, f"{prefix}.normalize", ch),
        _check_augment(augment, f"{prefix}.augment"),
    )


def _image_transforms(
    name: str, dataset: Any, train_idx: np.ndarray, targets: np.ndarray, opts: _ImageOptions
) -> tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor], tuple[int, ...]]:
    """The training transform (with the augmentations), the evaluation one, and the input
    shape they give, for the PIL images of ``dataset``."""
    from PIL import Image
    from torchvision import transforms as T

    first = dataset[int(train_idx[0])][0]
    if not isinstance(first, Image.Image):
        raise ConfigError(
            f"{name} returns {type(first).__name__} inputs; nasforge reads image datasets "
            "whose samples are PIL images",
            field=name,
        )
    base: list[Any] = []
    if opts.channels:
        base.append(_ConvertMode("L" if opts.channels == 1 else "RGB"))
    if opts.size is not None:
        base.append(T.Resize(opts.size))
    crop = opts.size or (first.size[1], first.size[0])
    extra: list[Any] = []
    if "crop" in opts.augment:
        extra.append(T.RandomCrop(crop, padding=max(1, min(crop) // 8), padding_mode="reflect"))
    if "flip" in opts.augment:
        extra.append(T.RandomHorizontalFlip())
    plain = T.Compose([*base, T.ToTensor()])
    shape = tuple(plain(first).shape)
    normalize = opts.normalize
    if normalize is True:
        normalize = _statistics(dataset, train_idx, targets, plain)
    if normalize and len(normalize[0]) != shape[0]:
        raise ConfigError.invalid(
            f"{name}.normalize", normalize, f"one mean and one std per channel ({shape[0]})"
        )
    tail = [T.Normalize(*normalize)] if normalize else []
    train = T.Compose([*base, *extra, T.ToTensor(), *tail])
    return train, T.Compose([*base, T.ToTensor(), *tail]), shape


def _views(
    dataset: Any,
    targets: np.ndarray,
    parts: Sequence[np.ndarray],
    train_transform: Callable[[Any], torch.Tensor],
    eval_transform: Callable[[Any], torch.Tensor],
    shape: tuple[int, ...] | None = None,
) -> list[TransformedSplit | None]:
    """One view per part of ``dataset`` (None for an empty part); the first one trains."""
    transforms = [train_transform] + [eval_transform] * (len(parts) - 1)
    return [
        TransformedSplit(dataset, idx, targets, transform, shape) if len(idx) else None
        for idx, transform in zip(parts, transforms, strict=True)
    ]


def _statistics(
    dataset: Any, indices: np.ndarray, targets: np.ndarray, transform: Callable[[Any], Any]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the images ``indices`` (one pass over them)."""
    view = TransformedSplit(dataset, indices, targets, transform)
    total = total_sq = None
    count = 0
    for i in range(len(view)):
        x = view[i][0].double().flatten(1)
        total = x.sum(1) if total is None else total + x.sum(1)
        total_sq = (x * x).sum(1) if total_sq is None else total_sq + (x * x).sum(1)
        count += x.shape[1]
    assert total is not None and total_sq is not None
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt().clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


# --- imagefolder -------------------------------------------------------------------------


@register("dataset", "imagefolder")
def image_folder(
    *,
    root: str | os.PathLike[str],
    size: int | Sequence[int] | None = None,
    channels: int = 3,
    normalize: bool | str | dict[str, Sequence[float]] = False,
    augment: bool | Sequence[str] = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> DataBundle:
    """Images in one sub-folder per class (``root/cat/1.png``), read with ImageFolder.

    torchvision's ``ImageFolder`` finds the images; the folder names are the classes, in
    sorted order.

    ``size`` resizes every image (an integer for squares, or [height, width]; default: the
    images' own size, which must then be the same for all). ``channels`` is 3 (RGB) or 1
    (grey). Pixels are in [0, 1]; ``normalize`` (true: the training split's per-channel
    mean/std; ``"imagenet"``; or ``{mean, std}``) standardizes them. ``augment`` (true, or
    a list of ``crop``, ``flip``) randomly crops (padding size/8) and flips the training
    split only. Images load from disk on access.
    """
    folder = _check_path(root, "imagefolder.root", directory=True)
    opts = _image_options(
        "imagefolder", size, channels, normalize, augment, channels_optional=False
    )
    _check_splits("imagefolder", val_fraction, test_fraction, seed)
    dataset = _image_folder(folder)
    targets = np.asarray(dataset.targets, dtype=np.int64)
    parts = _fraction_splits("imagefolder", targets, (val_fraction, test_fraction), seed)
    train_tf, eval_tf, shape = _image_transforms("imagefolder", dataset, parts[0], targets, opts)
    expect = shape if opts.size is None else None  # then every image must have that size
    train, val, test = _views(dataset, targets, parts, train_tf, eval_tf, expect)
    assert train is not None
    return DataBundle(
        name="imagefolder",
        train=train,
        val=val,
        test=test,
        num_classes=len(dataset.classes),
        input_shape=shape,
        classes=tuple(dataset.classes),
    )


def _image_folder(folder: Path) -> Any:
    """torchvision's ``ImageFolder`` over ``folder``, which must hold 2 or more classes."""
    from torchvision.datasets import ImageFolder

    try:
        dataset = ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(
            f"imagefolder.root: {str(folder)!r} holds no images in class folders ({exc}). "
            "HINT: put each class's images in a sub-folder named after the class, e.g. "
            "root/cat/1.png",
            field="imagefolder.root",
        ) from None
    if len(dataset.classes) < 2:
        raise ConfigError(
            f"imagefolder.root: {str(folder)!r} has one class folder "
            f"({dataset.classes[0]!r}); a classifier needs at least 2",
            field="imagefolder.root",
        )
    return dataset


# --- torchvision datasets ----------------------------------------------------------------

#: Arguments the adapter sets itself; ``dataset_options`` may not set them.
_TV_RESERVED = ("root", "download", "transform", "target_transform", "transforms")


def torchvision_class(name: Any, field: str = "torchvision.dataset") -> type:
    """The ``torchvision.datasets`` class called ``name`` (any case), or a ConfigError
    naming ``field`` with the close matches."""
    import torchvision.datasets as tvd

    names = sorted(n for n in tvd.__all__ if inspect.isclass(getattr(tvd, n, None)))
    if not isinstance(name, str):
        raise ConfigError.invalid(field, name, "a torchvision.datasets class name, e.g. CIFAR10")
    matches = [n for n in names if n.lower() == name.lower()]
    if name not in names and len(matches) != 1:
        raise ConfigError.invalid(
            field,
            name,
            "a torchvision.datasets class name, e.g. CIFAR10",
            close_matches(name, names).strip() or None,
        )
    return getattr(tvd, name if name in names else matches[0])


@register("dataset", "torchvision")
def torchvision_dataset(
    *,
    dataset: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    dataset_options: dict[str, Any] | None = None,
    size: int | Sequence[int] | None = None,
    channels: int | None = None,
    normalize: bool | str | dict[str, Sequence[float]] = False,
    augment: bool | Sequence[str] = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> DataBundle:
    """A ``torchvision.datasets`` image dataset by class name, e.g. ``torchvision:CIFAR10``.

    Read from ``root``: ``load_dataset("torchvision:CIFAR10", root=...)`` is
    ``load_dataset("torchvision", dataset="CIFAR10", root=...)``. Nothing is downloaded
    unless ``download`` is true. A dataset with its own test split (a ``train`` or
    ``split`` argument) keeps it and holds ``val_fraction`` of its training split out for
    validation; any other is split with ``val_fraction``/``test_fraction``.
    ``dataset_options`` go to the dataset class as they are (e.g. ``{split: balanced}``
    for EMNIST). ``size``, ``channels`` (default: the dataset's own), ``normalize`` and
    ``augment`` are as for ``imagefolder``.
    """
    cls = torchvision_class(dataset)
    label = f"{TORCHVISION_PREFIX}{cls.__name__}"
    check_bool(download, f"{label}.download")
    kwargs = _torchvision_arguments(cls, label, root, download, dataset_options)
    opts = _image_options(label, size, channels, normalize, augment, channels_optional=True)
    _check_splits(label, val_fraction, test_fraction, seed)
    train_set, test_set = _torchvision_sets(cls, kwargs, label, download)
    targets = _dataset_targets(train_set)
    fractions = (val_fraction,) if test_set is not None else (val_fraction, test_fraction)
    parts = _fraction_splits(label, targets, fractions, seed)
    train_tf, eval_tf, shape = _image_transforms(label, train_set, parts[0], targets, opts)
    views = _views(train_set, targets, parts, train_tf, eval_tf)
    if test_set is not None:
        test_targets = _dataset_targets(test_set)
        everything = np.arange(len(test_targets))
        views.append(
            TransformedSplit(test_set, everything, test_targets, eval_tf)
            if len(everything)
            else None
        )
    train, val, test = views
    assert train is not None
    num_classes, classes = _torchvision_classes(train_set, targets)
    return DataBundle(
        name=label,
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        input_shape=shape,
        classes=classes,
    )


def _torchvision_arguments(
    cls: type, label: str, root: Any, download: bool, dataset_options: Any
) -> dict[str, Any]:
    """The arguments of ``cls`` both splits share: ``dataset_options``, root and download."""
    kwargs = check_options(dataset_options, f"{label}.dataset_options")
    for key in _TV_RESERVED:
        if key in kwargs:
            raise ConfigError.invalid(
                f"{label}.dataset_options.{key}",
                kwargs[key],
                "absent",
                hint=f"{key} is an option of the dataset itself"
                if key in ("root", "download")
                else "nasforge sets the transforms",
            )
    params = inspect.signature(cls).parameters
    if "root" in params:
        if not isinstance(root, str | os.PathLike) or not str(root):
            raise ConfigError.invalid(f"{label}.root", root, "a directory path (a string)")
        kwargs["root"] = str(Path(root).expanduser())
    elif root is not None:
        raise ConfigError.invalid(f"{label}.root", root, f"absent: {cls.__name__} reads no files")
    if "download" in params:
        kwargs["download"] = download
    elif download:
        raise ConfigError.invalid(
            f"{label}.download", download, f"false: {cls.__name__} cannot download"
        )
    return kwargs


def _torchvision_sets(
    cls: type, kwargs: dict[str, Any], label: str, download: bool
) -> tuple[Any, Any]:
    """The training and test datasets (None when ``cls`` has no test split of its own, or
    ``dataset_options`` already choose the split)."""
    from torchvision.datasets import MNIST

    params = inspect.signature(cls).parameters
    if ("train" in params or issubclass(cls, MNIST)) and "train" not in kwargs:
        choices: tuple[dict[str, Any], dict[str, Any]] = ({"train": True}, {"train": False})
    elif "split" in params and "split" not in kwargs:
        choices = ({"split": "train"}, {"split": "test"})
    else:
        return _construct(cls, kwargs, label, download), None
    train, test = (_construct(cls, {**kwargs, **choice}, label, download) for choice in choices)
    return train, test


def _torchvision_classes(dataset: Any, targets: np.ndarray) -> tuple[int, tuple[str, ...] | None]:
    """The number of classes of a torchvision dataset, and their names when it has them."""
    names = getattr(dataset, "classes", None)
    classes = tuple(str(c) for c in names) if names else None
    declared = len(classes) if classes else int(getattr(dataset, "num_classes", 0) or 0)
    num_classes = max(declared, int(targets.max()) + 1)
    return num_classes, classes if classes and len(classes) == num_classes else None


def _construct(cls: type, kwargs: dict[str, Any], label: str, download: bool) -> Any:
    """``cls(**kwargs)``, whatever it raises turned into a ConfigError naming the option."""
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"{label}.dataset_options: {cls.__name__} refused the arguments "
            f"{sorted(kwargs)}: {exc}",
            field=f"{label}.dataset_options",
        ) from None
    except Exception as exc:
        root = kwargs.get("root")
        if download:
            message = f"{label}.root: could not download {cls.__name__} into {root!r} ({exc})"
        else:
            message = (
                f"{label}.root: no {cls.__name__} data found under {root!r} "
                f"({type(exc).__name__}: {exc}). HINT: set download: true (Python: "
                "download=True) to download it there, or point root at the folder that "
                "holds it"
            )
        raise ConfigError(message, field=f"{label}.root") from None


def _dataset_targets(dataset: Any) -> np.ndarray:
    """The labels of a torchvision dataset, read from its attributes when it has them."""
    for attr in ("targets", "labels", "_labels", "y"):
        values = getattr(dataset, attr, None)
        if values is not None and len(values) == len(dataset):
            return np.asarray(values, dtype=np.int64).reshape(-1)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)
