"""Batch augmentation (nasforge.train.augment), which consistent distillation relies on."""

import pytest
import torch

import nasforge as nf
from nasforge.train.augment import (
    AugmentedLoader,
    Compose,
    GaussianNoise,
    Mixup,
    RandomScale,
    RandomShift,
    augmented,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_random_shift_moves_each_sample_and_fills_with_zeros():
    x = torch.arange(1.0, 11.0).repeat(64, 1).unsqueeze(1)  # (64, 1, 10)
    y = torch.zeros(64, dtype=torch.long)
    shifted, same_y = RandomShift(3)(x, y, _gen())
    assert same_y is y
    for row in shifted[:, 0]:
        nonzero = row[row != 0]
        k = int(nonzero[0].item()) - 1  # how far the signal moved left (k > 0) or right
        if k > 0:
            assert torch.equal(nonzero, torch.arange(k + 1.0, 11.0))
        else:
            start = int((row == 0).sum())
            assert torch.equal(row[start:], torch.arange(1.0, 11.0 - start))
    offsets = {int((r == 0).sum()) * (1 if r[0] == 0 else -1) for r in shifted[:, 0]}
    assert offsets <= set(range(-3, 4)) and len(offsets) > 3


def test_circular_shift_is_a_roll():
    x = torch.randn(16, 2, 12)
    shifted, _ = RandomShift(5, mode="circular")(x, torch.zeros(16), _gen(1))
    for original, moved in zip(x, shifted, strict=True):
        assert any(torch.equal(torch.roll(original, k, dims=-1), moved) for k in range(-5, 6))


def test_scale_and_noise():
    x = torch.ones(100, 1, 40)
    scaled, _ = RandomScale(0.5, 2.0)(x, None, _gen())
    factors = scaled[:, 0, 0]
    assert torch.all(scaled == factors.view(-1, 1, 1))
    assert float(factors.min()) >= 0.5 and float(factors.max()) <= 2.0
    noisy, _ = GaussianNoise(0.1)(torch.zeros(200, 1, 40), None, _gen())
    assert float(noisy.std()) == pytest.approx(0.1, rel=0.05)


def test_mixup_mixes_inputs_and_labels_with_the_same_weight():
    x = torch.eye(8).unsqueeze(1)  # sample i is the i-th unit vector
    y = torch.arange(8) % 4
    mixed, soft = Mixup(0.4, num_classes=4)(x, y, _gen())
    assert soft.shape == (8, 4)
    torch.testing.assert_close(soft.sum(1), torch.ones(8))
    for i in range(8):
        weights = mixed[i, 0]  # the mixing weights of each source sample
        expected = torch.zeros(4)
        for j in range(8):
            expected[y[j]] += weights[j]
        torch.testing.assert_close(soft[i], expected)


def test_augmented_loader_is_reproducible_and_new_every_epoch():
    x, y = torch.randn(100, 1, 20), torch.arange(100) % 3
    transform = Compose(RandomShift(2), GaussianNoise(0.1))

    def epochs(loader, n=2):
        return [[b[0].clone() for b in loader] for _ in range(n)]

    a = epochs(AugmentedLoader(x, y, transform=transform, batch_size=32, seed=3))
    b = epochs(AugmentedLoader(x, y, transform=transform, batch_size=32, seed=3))
    assert all(
        torch.equal(u, v) for ea, eb in zip(a, b, strict=True) for u, v in zip(ea, eb, strict=True)
    )
    assert not torch.equal(a[0][0], a[1][0])  # a new view (and order) each epoch
    unshuffled = AugmentedLoader(x, y, transform=transform, shuffle=False, batch_size=100)
    first, second = epochs(unshuffled)
    assert not torch.equal(first[0], second[0])  # new noise even without shuffling


def test_augmented_wraps_in_memory_data_and_refuses_the_rest():
    data = nf.load_dataset("synthetic", num_samples=60, input_shape=(1, 8), seed=0)
    loader = augmented(data.train, GaussianNoise(0.1), batch_size=16, seed=0)
    assert isinstance(loader, nf.TensorLoader) and loader.batch_size == 16
    with pytest.raises(nf.ConfigError, match="in-memory data"):
        augmented(torch.utils.data.DataLoader(data.train), GaussianNoise(0.1))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomShift(0),
        lambda: RandomShift(2, mode="reflect"),
        lambda: RandomScale(2.0, 1.0),
        lambda: GaussianNoise(0),
        lambda: Mixup(0.2, num_classes=1),
        lambda: Compose("shift"),
    ],
)
def test_invalid_augmentations_are_refused(make):
    with pytest.raises(nf.ConfigError):
        make()
