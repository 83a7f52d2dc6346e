"""Data from files: the csv, npz, imagefolder and torchvision datasets, from Python and YAML."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import nasforge as nf
from nasforge.cli import main
from nasforge.cli.search import check_config, load_search_config
from nasforge.data import as_loader
from nasforge.data.files import TransformedSplit
from nasforge.data.splits import prepare_splits

SPECIES = ("setosa", "versicolor", "virginica")


def write_csv(path: Path, n: int = 90, *, delimiter: str = ",", seed: int = 0) -> Path:
    """``n`` rows: two numeric features, a text column and a string target (30 per class)."""
    rng = np.random.default_rng(seed)
    lines = [delimiter.join(["width", "height", "note", "species"])]
    for i in range(n):
        label = SPECIES[[2, 0, 1][i % 3]]  # not in sorted order in the file
        w, h = rng.normal(size=2) + SPECIES.index(label)
        lines.append(delimiter.join([f"{w:.4f}", f"{h:.4f}", f"n{i}", label]))
    path.write_text("\n".join(lines) + "\n")
    return path


def class_counts(split: torch.utils.data.TensorDataset, k: int) -> np.ndarray:
    return np.bincount(split.tensors[1].numpy(), minlength=k)


# --- csv -----------------------------------------------------------------------------------


def test_csv_reads_features_and_maps_string_targets(tmp_path):
    path = write_csv(tmp_path / "iris.csv")
    data = nf.load_dataset("csv", path=path, features=["width", "height"], seed=3)
    assert data.classes == SPECIES and data.num_classes == 3 and data.input_shape == (2,)
    assert (len(data.train), len(data.val), len(data.test)) == (66, 12, 12)  # 15% of 30 per class
    x, y = data.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    # stratified: every class keeps its share in every split
    for split in (data.train, data.val, data.test):
        counts = class_counts(split, 3)
        assert counts.max() - counts.min() <= 1, counts
    # the mapping is kept: class i is the i-th sorted name, row by row
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    by_value = {(round(float(r[0]), 4), round(float(r[1]), 4)): r[3] for r in rows}
    for features, label in zip(x.tolist(), y.tolist(), strict=True):
        assert by_value[tuple(round(v, 4) for v in features)] == data.classes[label]


def test_csv_splits_are_reproducible_and_seeded(tmp_path):
    path = write_csv(tmp_path / "iris.csv")
    a, b, c = (
        nf.load_dataset("csv", path=path, features=["width", "height"], seed=s) for s in (0, 0, 1)
    )
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])


def test_csv_target_delimiter_and_integer_labels(tmp_path):
    path = tmp_path / "data.csv"
    rows = ["label;f1;f2"] + [f"{i % 2};{i};{i * 0.5}" for i in range(20)]
    path.write_text("\n".join(rows))
    data = nf.load_dataset("csv", path=path, target="label", delimiter=";", test_fraction=0)
    assert data.classes == ("0", "1") and data.test is None and data.input_shape == (2,)
    x, y = data.train.tensors
    assert torch.equal(y, (x[:, 0] % 2).long())  # 0..K-1 labels are kept as they are
    path.write_text("\n".join(["f,label"] + [f"{i},{[5, 10, 7][i % 3]}" for i in range(30)]))
    data = nf.load_dataset("csv", path=path, standardize=True)
    assert data.classes == ("5", "7", "10")  # other integers are sorted numerically
    x, y = data.train.tensors
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(unbiased=False)) - 1) < 1e-4
    assert set(y.tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("", {}, r"csv\.path: '.*bad\.csv' is empty"),
        ("a,b,y\n", {}, r"has a header but no data rows"),
        (
            "a,b,y\n1,2,x\n3,4,z\n",
            {"target": "label"},
            r"csv\.target must be a column of "
            r"'.*bad\.csv' \('a', 'b', 'y'\), but got 'label'",
        ),
        ("a,b,y\n1,2,x\n3,oops,z\n", {}, r"line 3, column 'b': 'oops' is not a finite number"),
        ("a,b,y\n1,,x\n3,4,z\n", {}, r"line 2, column 'b': '' is not a finite number"),
        ("a,b,y\n1,2,x\n3,4\n", {}, r"line 3 has 2 fields, but the header has 3"),
        ("a,b,y\n1,2,x\n3,4,x\n", {}, r"every sample has the label 'x'"),
        ("a,b,y\n1,2,\n3,4,x\n", {}, r"line 2: the target column 'y' is empty"),
        ("a,b,y\n1,2,x\n", {"features": ["a", "c"]}, r"csv\.features\[1\] must be a column"),
        ("a,b,y\n1,2,x\n", {"features": ["y"]}, r"csv\.features\[0\].*other than the target"),
        ("a,b,y\n1,2,x\n", {"features": "a"}, r"csv\.features must be a list of names"),
        ("a,b,y\n1,2,x\n", {"delimiter": ";;"}, r"csv\.delimiter must be one character"),
        ("a,b,y\n1,2,x\n", {"val_fraction": 1.5}, r"csv\.val_fraction must be a number in"),
        ("a,b,y\n1,2,x\n", {"val_fraction": 0.5, "test_fraction": 0.5}, r"less than 1"),
        ("a,b,y\n1,2,x\n", {"seed": -1}, r"csv\.seed must be a non-negative integer"),
        ("a,b,y\n1,2,x\n", {"standardize": "yes"}, r"csv\.standardize must be True or False"),
        ("a,a,y\n1,2,x\n", {}, r"distinct, non-empty column names"),
    ],
)
def test_csv_errors_name_the_file_column_and_row(tmp_path, text, options, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(nf.ConfigError, match=message):
        nf.load_dataset("csv", path=path, **options)


def test_csv_missing_file(tmp_path):
    with pytest.raises(nf.ConfigError, match=r"csv\.path: file '.*nothere\.csv' does not exist"):
        nf.load_dataset("csv", path=tmp_path / "nothere.csv")
    with pytest.raises(nf.ConfigError, match=r"csv\.path must be a path"):
        nf.load_dataset("csv", path=3)


# --- npz -----------------------------------------------------------------------------------


def test_npz_splits_named_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2, 5)), np.array(["b", "a", "c"] * 20)
    np.savez(tmp_path / "d.npz", inputs=x, labels=y)
    data = nf.load_dataset("npz", path=tmp_path / "d.npz", x="inputs", y="labels", seed=1)
    assert data.classes == ("a", "b", "c") and data.input_shape == (2, 5)
    assert (len(data.train), len(data.val), len(data.test)) == (42, 9, 9)
    assert data.train.tensors[0].dtype == torch.float32
    for split in (data.train, data.val, data.test):
        assert len(set(class_counts(split, 3))) == 1  # stratified
    again = nf.load_dataset("npz", path=tmp_path / "d.npz", x="inputs", y="labels", seed=1)
    assert torch.equal(again.val.tensors[0], data.val.tensors[0])
    first = data.val.tensors[0][0].numpy()
    (row,) = [i for i in range(60) if np.allclose(x[i], first)]  # the labels follow the rows
    assert data.classes[int(data.val.tensors[1][0])] == y[row]


def test_npz_pre_split_arrays_are_used_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.normal(size=(n, 4)) for s, n in (("train", 40), ("test", 8))}
    arrays |= {"y_train": np.arange(40) % 4 + 1, "y_test": np.arange(8) % 4 + 1}
    np.savez(tmp_path / "p.npz", **arrays)
    data = nf.load_dataset("npz", path=tmp_path / "p.npz", val_fraction=0.3)
    assert data.classes == ("1", "2", "3", "4") and data.num_classes == 4
    assert (len(data.train), len(data.val), len(data.test)) == (28, 12, 8)
    assert np.allclose(data.test.tensors[0].numpy(), arrays["x_test"])
    assert data.test.tensors[1].tolist() == (arrays["y_test"] - 1).tolist()
    arrays |= {"x_val": rng.normal(size=(4, 4)), "y_val": np.array([1.0, 2.0, 3.0, 4.0])}
    np.savez(tmp_path / "p.npz", **arrays)
    data = nf.load_dataset("npz", path=tmp_path / "p.npz")
    assert (len(data.train), len(data.val), len(data.test)) == (40, 4, 8)
    assert data.val.tensors[1].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("arrays", "options", "message"),
    [
        ({"x": np.ones((4, 2))}, {}, r"npz\.y must be an array of '.*d\.npz' \('x'\), but got 'y'"),
        ({"x": np.ones((4, 2)), "y": np.arange(4)}, {"x": "X"}, r"npz\.x must be an array.*'x'"),
        ({"x": np.ones((4, 2)), "y": np.arange(3)}, {}, r"4 labels .* in a 1-D array"),
        ({"x": np.ones(4), "y": np.arange(4)}, {}, r"numbers of shape \(N, \.\.\.\)"),
        ({"x": np.full((4, 2), np.nan), "y": np.arange(4)}, {}, r"finite numbers"),
        ({"x": np.ones((4, 2)), "y": np.full(4, 0.5)}, {}, r"integer or string class labels"),
        (
            {"x_train": np.ones((4, 2)), "y_train": np.arange(4), "x_val": np.ones((2, 2))},
            {},
            r"npz\.y must be an array.*but got 'y_val'",
        ),
        (
            {
                "x_train": np.ones((4, 2)),
                "y_train": np.arange(4),
                "x_test": np.ones((2, 3)),
                "y_test": np.arange(2),
            },
            {},
            r"the same shape in every split",
        ),
    ],
)
def test_npz_errors_name_the_array(tmp_path, arrays, options, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(nf.ConfigError, match=message):
        nf.load_dataset("npz", path=tmp_path / "d.npz", **options)


def test_npz_missing_and_wrong_files(tmp_path):
    with pytest.raises(nf.ConfigError, match=r"npz\.path: file .* does not exist"):
        nf.load_dataset("npz", path=tmp_path / "none.npz")
    (tmp_path / "t.npz").write_text("not a zip")
    with pytest.raises(nf.ConfigError, match=r"is not a NumPy \.npz file"):
        nf.load_dataset("npz", path=tmp_path / "t.npz")
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(nf.ConfigError, match=r"holds one array"):
        nf.load_dataset("npz", path=tmp_path / "one.npy")


# --- imagefolder ---------------------------------------------------------------------------


def write_images(root: Path, classes=("dog", "cat"), per_class: int = 10, shape=(12, 10)) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (*shape, 3), dtype=np.uint8) + 50 * c
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_imagefolder_reads_class_folders(tmp_path):
    root = write_images(tmp_path / "images")
    data = nf.load_dataset("imagefolder", root=root, val_fraction=0.2, test_fraction=0.2)
    assert data.classes == ("cat", "dog") and data.num_classes == 2
    assert isinstance(data.train, TransformedSplit)
    assert data.input_shape == (3, 12, 10) and (len(data.train), len(data.val)) == (12, 4)
    x, _ = data.train[0]
    assert x.shape == (3, 12, 10) and x.dtype == torch.float32 and float(x.min()) >= 0
    for split in (data.train, data.val, data.test):
        assert np.bincount(split.targets).tolist() == [len(split) // 2] * 2  # stratified
    same = nf.load_dataset("imagefolder", root=root, val_fraction=0.2, test_fraction=0.2)
    assert same.val.indices == data.val.indices
    other = nf.load_dataset("imagefolder", root=root, seed=1, val_fraction=0.2, test_fraction=0.2)
    assert other.val.indices != data.val.indices
    # the splits work wherever nasforge takes data, and pickle (for process executors)
    splits = prepare_splits(data, val_fraction=0.2, seed=0)
    assert splits.input_shape == (3, 12, 10) and splits.num_classes == 2
    batch = next(iter(as_loader(data.train, batch_size=4)))
    assert batch[0].shape == (4, 3, 12, 10)
    assert len(pickle.loads(pickle.dumps(data.train))) == 12


def test_imagefolder_resize_grey_normalize_and_augment(tmp_path):
    root = write_images(tmp_path / "images")
    data = nf.load_dataset(
        "imagefolder", root=root, size=[8, 6], channels=1, normalize=True, augment=True
    )
    assert data.input_shape == (1, 8, 6)
    train = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert abs(float(train.mean())) < 0.3  # statistics of the (un-augmented) training split
    assert any("RandomCrop" in repr(t) for t in data.train.transform.transforms)
    assert not any("Random" in repr(t) for t in data.val.transform.transforms)
    data = nf.load_dataset("imagefolder", root=root, size=8, normalize="imagenet")
    assert data.input_shape == (3, 8, 8)
    custom = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    data = nf.load_dataset("imagefolder", root=root, size=8, normalize=custom, augment=["flip"])
    assert data.train[0][0].min() < 0


def test_imagefolder_images_of_other_sizes_need_size(tmp_path):
    root = write_images(tmp_path / "images")
    Image.new("RGB", (5, 5)).save(root / "cat" / "odd.png")
    data = nf.load_dataset("imagefolder", root=root, test_fraction=0, val_fraction=0)
    with pytest.raises(nf.ConfigError, match=r"odd\.png' becomes an input of shape .*set the "):
        [data.train[i] for i in range(len(data.train))]
    data = nf.load_dataset("imagefolder", root=root, size=6, test_fraction=0, val_fraction=0)
    assert {tuple(data.train[i][0].shape) for i in range(len(data.train))} == {(3, 6, 6)}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 0}, r"imagefolder\.size must be a positive integer"),
        ({"size": [8]}, r"imagefolder\.size must be an integer or a list \[height, width\]"),
        ({"channels": 2}, r"imagefolder\.channels must be 1 or 3"),
        ({"normalize": "yes"}, r"imagefolder\.normalize must be one of 'imagenet'"),
        ({"normalize": "imagenet", "channels": 1}, r"not 'imagenet' with 1 channel"),
        ({"normalize": {"mean": [0.5]}}, r"imagefolder\.normalize must be false, true"),
        ({"normalize": {"mean": [0.5], "std": [0.2]}}, r"one mean and one std per channel"),
        ({"augment": ["rotate"]}, r"imagefolder\.augment\[0\] must be one of 'crop', 'flip'"),
    ],
)
def test_imagefolder_options_are_checked(tmp_path, options, message):
    root = write_images(tmp_path / "images", per_class=2)
    with pytest.raises(nf.ConfigError, match=message):
        nf.load_dataset("imagefolder", root=root, **options)


def test_imagefolder_bad_roots(tmp_path):
    with pytest.raises(nf.ConfigError, match=r"imagefolder\.root: directory .* does not exist"):
        nf.load_dataset("imagefolder", root=tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(nf.ConfigError, match=r"holds no images in class folders"):
        nf.load_dataset("imagefolder", root=tmp_path / "empty")
    root = write_images(tmp_path / "one", classes=("cat",), per_class=2)
    with pytest.raises(nf.ConfigError, match=r"one class folder \('cat'\)"):
        nf.load_dataset("imagefolder", root=root)


# --- torchvision ---------------------------------------------------------------------------


def write_mnist(root: Path, n_train: int = 40, n_test: int = 10) -> Path:
    """MNIST in torchvision's on-disk format (root/MNIST/raw/*-ubyte), random pixels."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">iiii", 2051, n, 28, 28) + pixels.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">ii", 2049, n) + labels.tobytes()
        )
    return root


def test_torchvision_dataset_from_files_on_disk(tmp_path):
    root = write_mnist(tmp_path / "data")
    data = nf.load_dataset("torchvision:MNIST", root=root, val_fraction=0.25, size=16)
    assert data.name == "torchvision:MNIST" and data.num_classes == 10
    assert data.classes[0] == "0 - zero" and data.input_shape == (1, 16, 16)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)  # its own test
    assert np.bincount(data.val.targets).tolist() == [1] * 10  # stratified
    x, y = data.test[3]
    assert x.shape == (1, 16, 16) and y == 3
    same = nf.load_dataset("torchvision", dataset="mnist", root=str(root), val_fraction=0.25)
    assert same.val.indices == data.val.indices and same.input_shape == (1, 28, 28)


def test_torchvision_dataset_without_root_or_test_split():
    options = {"size": 40, "image_size": (3, 8, 8), "num_classes": 4}
    data = nf.load_dataset("torchvision:FakeData", dataset_options=options, channels=1)
    assert data.num_classes == 4 and data.input_shape == (1, 8, 8) and data.classes is None
    assert len(data.train) + len(data.val) + len(data.test) == 40


def test_torchvision_missing_data_names_root_and_download(tmp_path):
    message = (
        r"torchvision:CIFAR10\.root: no CIFAR10 data found under '.*nowhere'.*"
        r"set download: true \(Python: download=True\)"
    )
    with pytest.raises(nf.ConfigError, match=message):
        nf.load_dataset("torchvision:CIFAR10", root=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # nothing downloaded, nothing created


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "torchvision:CIFAR11",
            {"root": "."},
            r"torchvision\.dataset must be a torchvision"
            r"\.datasets class name.*Did you mean 'CIFAR10'",
        ),
        ("torchvision:CIFAR10", {}, r"torchvision:CIFAR10\.root must be a directory path"),
        ("torchvision:CIFAR10", {"root": ".", "download": "yes"}, r"\.download must be True"),
        ("torchvision:CIFAR10", {"root": ".", "dataset": "MNIST"}, r"dataset must be absent"),
        (
            "torchvision:CIFAR10",
            {"root": ".", "dataset_options": {"transform": 1}},
            r"dataset_options\.transform must be absent",
        ),
        ("torchvision:FakeData", {"root": "."}, r"root must be absent: FakeData reads no files"),
        ("torchvision:FakeData", {"dataset_options": {"sise": 3}}, r"refused the arguments"),
    ],
)
def test_torchvision_options_are_checked(name, options, message):
    with pytest.raises(nf.ConfigError, match=message):
        nf.load_dataset(name, **options)


# --- YAML configs --------------------------------------------------------------------------

CONFIG = {
    "space": {"name": "mlp", "options": {"max_depth": 1, "widths": [8]}},
    "strategy": "random",
    "budget": 2,
    "training": {"epochs": 1, "latency": False},
}


def test_a_search_config_reads_csv_data(tmp_path, capsys):
    path = write_csv(tmp_path / "iris.csv")
    config = {
        **CONFIG,
        "data": {"name": "csv", "options": {"path": str(path), "features": ["width", "height"]}},
    }
    checked = load_search_config(config)
    check_config(checked)
    assert checked.data == ("csv", {"path": str(path), "features": ["width", "height"]})
    file = tmp_path / "search.yaml"
    file.write_text(yaml.safe_dump(config))
    assert main(["search", str(file), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "best 2 of 2 trials" in capsys.readouterr().out


def test_search_configs_name_torchvision_datasets(tmp_path, capsys):
    config = {**CONFIG, "data": {"name": "torchvision:CIFAR10", "options": {"root": "x"}}}
    check_config(load_search_config(config))
    bad = {**CONFIG, "data": {"name": "torchvision:CIFAR", "options": {}}}
    with pytest.raises(nf.ConfigError, match=r"data\.name must be a torchvision\.datasets class"):
        load_search_config(bad)
    config["data"]["options"]["root"] = str(tmp_path / "nowhere")
    file = tmp_path / "search.yaml"
    file.write_text(yaml.safe_dump(config))
    assert main(["search", str(file), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no CIFAR10 data found under" in err and "nowhere" in err and "download: true" in err
    root = write_mnist(tmp_path / "data")
    config["data"] = {"name": "torchvision:MNIST", "options": {"root": str(root), "size": 4}}
    config["space"] = {"name": "mlp", "options": {"max_depth": 1, "widths": [4]}}
    file.write_text(yaml.safe_dump(config))
    assert main(["search", str(file), "--out", str(tmp_path / "o2"), "--no-progress"]) == 0


def test_databundle_classes_default_to_none():
    assert nf.load_dataset("synthetic", num_samples=20, input_shape=[2]).classes is None


def test_compress_configs_name_file_and_torchvision_datasets(tmp_path):
    from nasforge.cli.compress import _build_trainer, load_config

    config = {"model": {"name": "resnet18"}, "compressors": [{"name": "int8"}]}
    bad = {**config, "data": {"name": "torchvision:CIFAR11"}}
    with pytest.raises(nf.ConfigError, match=r"data\.name must be a torchvision.*'CIFAR10'"):
        load_config(bad)
    root = write_mnist(tmp_path / "data")
    good = {**config, "data": {"name": "torchvision:MNIST", "options": {"root": str(root)}}}
    assert isinstance(_build_trainer(load_config(good)), nf.Trainer)
    path = write_csv(tmp_path / "iris.csv")
    good = {**config, "data": {"name": "csv", "options": {"path": str(path)}}}
    with pytest.raises(nf.ConfigError, match=r"data\.options: .*'n0' is not a finite number"):
        _build_trainer(load_config(good))  # the text column needs leaving out
