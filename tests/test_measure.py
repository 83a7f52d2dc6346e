"""nasforge.measure: parameter and MAC counts, latency, size on disk."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.measure import count_macs, count_params, measure_latency, size_on_disk


@pytest.mark.parametrize(
    ("name", "published_gmacs"),
    [("resnet18", 1.814), ("mobilenet_v2", 0.300)],
)
def test_macs_match_published_counts_at_224(name, published_gmacs):
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    macs = count_macs(model, (3, 224, 224))
    assert abs(macs / 1e9 - published_gmacs) / published_gmacs < 0.02


def test_macs_by_hand_for_conv_depthwise_and_linear():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),  # 8x8 out: 64 * 4 * (2 * 9) = 4608
        nn.Conv2d(4, 4, 3, padding=1, groups=4),  # 64 * 4 * 9 = 2304
        nn.Flatten(),
        nn.Linear(4 * 64, 5),  # 256 * 5 = 1280
    )
    assert count_macs(model, (2, 8, 8)) == 4608 + 2304 + 1280
    # an example batch gives the per-sample count too
    assert count_macs(model, torch.randn(4, 2, 8, 8)) == 4608 + 2304 + 1280


def test_count_params_counts_trainable_only_on_request():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 3 * 4 + 4 + 4 * 2 + 2
    assert count_params(model, trainable_only=True) == 4 + 4 * 2 + 2


def test_size_on_disk_is_the_saved_state_dict(tmp_path):
    model = nn.Linear(100, 50)
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    # the same bytes up to the archive's internal file names, which follow the file name
    assert size_on_disk(model) == pytest.approx(path.stat().st_size, rel=0.02)
    assert size_on_disk(model.state_dict()) == size_on_disk(model)


def test_latency_scales_with_work_and_restores_threads():
    small = nn.Linear(8, 8)
    big = nn.Sequential(*[nn.Linear(512, 512) for _ in range(8)])
    threads = torch.get_num_threads()
    fast = measure_latency(small, (8,), batch_size=1, threads=1, repeats=10)
    slow = measure_latency(big, (512,), batch_size=64, threads=1, repeats=10)
    assert 0 < fast < slow
    assert torch.get_num_threads() == threads
    assert small.training  # mode restored


def test_latency_validates_arguments():
    with pytest.raises(ConfigError, match="batch_size"):
        measure_latency(nn.Linear(2, 2), (2,), batch_size=0)
    with pytest.raises(ConfigError, match="input_shape"):
        count_macs(nn.Linear(2, 2), (0,))


def test_int8_models_are_counted_with_their_packed_weights():
    from nasforge.compress.quantize import quantize_int8

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 8 * 8, 64)
    ).eval()
    quantized = quantize_int8(model, [torch.randn(8, 3, 8, 8)])
    assert count_params(quantized) == count_params(model)
    assert count_macs(quantized, (3, 8, 8)) == count_macs(model, (3, 8, 8))
    assert size_on_disk(quantized) < size_on_disk(model) / 3


def test_compare_latency_times_models_in_turn():
    from nasforge.measure import compare_latency

    small = nn.Linear(64, 64)
    big = nn.Sequential(*[nn.Linear(64, 64) for _ in range(16)])
    threads = torch.get_num_threads()
    times = compare_latency({"small": small, "big": big}, (64,), batch_size=4, repeats=20)
    assert set(times) == {"small", "big"}
    assert 0 < times["small"] < times["big"]
    assert torch.get_num_threads() == threads and small.training and big.training
