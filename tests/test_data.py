import sys
from collections import defaultdict

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import nasforge as nf
from nasforge.data import TensorLoader, as_loader, stratified_split


def _labels(dataset):
    return dataset.tensors[1].numpy()


def _samples(dataset):
    """Each sample of a TensorDataset as a hashable (pixels, label) pair."""
    x, y = dataset.tensors
    return [(image.numpy().tobytes(), int(label)) for image, label in zip(x, y, strict=True)]


def test_digits_default_split_is_stratified_disjoint_and_complete():
    data = nf.load_dataset("digits")
    assert data.input_shape == (1, 8, 8)
    assert data.num_classes == 10
    sizes = [len(data.train), len(data.val), len(data.test)]
    assert sum(sizes) == 1797
    assert abs(len(data.test) - 0.15 * 1797) < 10
    # Which of the 1797 samples each split holds: the 8x8 digits contain a few identical
    # images, so every (image, label) maps to the list of its positions in the full set,
    # and each split sample takes one of them; one used twice or left over is a bug.
    everything = nf.load_dataset("digits", val_fraction=0.0, test_fraction=0.0)
    positions = defaultdict(list)
    for i, sample in enumerate(_samples(everything.train)):
        positions[sample].append(i)
    indices = []
    for split in (data.train, data.val, data.test):
        taken = set()
        for sample in _samples(split):
            assert positions[sample], "a sample is in two splits (or twice in one)"
            taken.add(positions[sample].pop())
        indices.append(taken)
    train, val, test = indices
    assert not (train & val or train & test or val & test)  # disjoint
    assert train | val | test == set(range(1797))  # complete
    test_counts = np.bincount(_labels(data.test), minlength=10)
    assert test_counts.min() >= 25  # every class is present in proportion
    assert data.train.tensors[0].min() >= 0.0 and data.train.tensors[0].max() <= 1.0


def test_digits_matches_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    data = nf.load_dataset("digits", val_fraction=0.0, test_fraction=0.0)
    ours = data.train.tensors[0].squeeze(1).numpy() * 16
    np.testing.assert_array_equal(ours, reference.images)
    np.testing.assert_array_equal(_labels(data.train), reference.target)


def test_digits_options_upsample_and_channels():
    data = nf.load_dataset("digits", size=16, channels=3)
    assert data.input_shape == (3, 16, 16)
    x = data.train.tensors[0]
    assert torch.equal(x[:, 0], x[:, 2])


def test_digits_split_depends_on_seed_only():
    a, b = nf.load_dataset("digits", seed=3), nf.load_dataset("digits", seed=3)
    c = nf.load_dataset("digits", seed=4)
    assert torch.equal(a.test.tensors[1], b.test.tensors[1])
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [("size", 4, "digits.size"), ("channels", 2, "digits.channels"), ("seed", 0, None)],
)
def test_digits_rejects_bad_options(option, value, field):
    if field is None:
        nf.load_dataset("digits", **{option: value})
        return
    with pytest.raises(nf.ConfigError, match=field) as info:
        nf.load_dataset("digits", **{option: value})
    assert info.value.field == field


def test_mnist1d_is_generated_with_the_standard_split():
    pytest.importorskip("mnist1d")
    data = nf.load_dataset("mnist1d")
    assert data.input_shape == (1, 40)
    assert len(data.train) + len(data.val) == 4000
    assert len(data.test) == 1000
    assert abs(len(data.val) - 400) <= 5  # per-class rounding
    state = np.random.get_state()[1].copy()
    nf.load_dataset("mnist1d", num_samples=500)
    assert np.array_equal(state, np.random.get_state()[1])  # global numpy RNG untouched


def test_mnist1d_without_the_package_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(nf.MissingDependencyError, match="pip install mnist1d"):
        nf.load_dataset("mnist1d")


def test_synthetic_shapes_and_reproducibility():
    a = nf.load_dataset("synthetic", input_shape=(2, 5), num_classes=4, seed=1)
    b = nf.load_dataset("synthetic", input_shape=(2, 5), num_classes=4, seed=1)
    assert a.input_shape == (2, 5)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert set(_labels(a.train)) == {0, 1, 2, 3}
    with pytest.raises(nf.ConfigError, match=r"synthetic\.num_classes"):
        nf.load_dataset("synthetic", num_classes=1)


def test_stratified_split_keeps_proportions():
    labels = np.array([0] * 80 + [1] * 20)
    train, val, test = stratified_split(labels, (0.25, 0.25), seed=0)
    assert len(train) == 50 and len(val) == 25 and len(test) == 25
    assert (labels[val] == 1).sum() == 5
    assert len(set(train) | set(val) | set(test)) == 100
    with pytest.raises(nf.ConfigError):
        stratified_split(labels, (0.6, 0.5), seed=0)


def test_tensor_loader_covers_everything_and_shuffles_reproducibly():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    loader = TensorLoader(x, y, batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 3
    first = torch.cat([b[1] for b in loader])
    second = torch.cat([b[1] for b in loader])
    assert sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, second)  # a new order each epoch
    loader.set_epoch(0)
    assert torch.equal(torch.cat([b[1] for b in loader]), first)


def test_as_loader_accepts_arrays_datasets_and_loaders():
    x, y = np.random.rand(12, 3), np.arange(12) % 2
    loader = as_loader((x, y), batch_size=5)
    batch_x, batch_y = next(iter(loader))
    assert batch_x.dtype == torch.float32 and batch_y.dtype == torch.int64
    dl = DataLoader(TensorDataset(torch.zeros(4, 1), torch.zeros(4)))
    assert as_loader(dl) is dl
    with pytest.raises(nf.ConfigError, match="inputs and targets differ"):
        as_loader((x, y[:5]))
    with pytest.raises(nf.ConfigError, match="a Dataset, a DataLoader"):
        as_loader("data.csv")
