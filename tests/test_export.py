"""Saving, reloading and exporting (pruned) models."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from nasforge.compress import (
    export_onnx,
    export_torchscript,
    load_model,
    prune_channels,
    save_model,
)
from nasforge.errors import CheckpointError, ConfigError, MissingDependencyError


@pytest.fixture(scope="module")
def pruned():
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None, num_classes=10).eval()
    x = torch.randn(2, 3, 16, 16)
    return prune_channels(model, x, ratio=0.5, round_to=8).eval(), x


def test_pruned_model_saves_and_rebuilds_with_weights_only(pruned, tmp_path):
    model, x = pruned
    path = save_model(model, tmp_path / "m.pt", builder="mobilenet_v2", kwargs={"num_classes": 10})
    payload = torch.load(path, weights_only=True)  # plain tensors, numbers and strings
    assert payload["shapes"]["features.2.conv.1.0"]["groups"] < 96
    loaded = load_model(path)
    assert type(loaded) is type(model)
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded.features[2].conv[1][0].groups == model.features[2].conv[1][0].groups


def test_load_into_a_users_fresh_model(tmp_path):
    def build():
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))

    x = torch.randn(1, 3, 6, 6)
    small = prune_channels(build().eval(), x, ratio=0.5).eval()
    save_model(small, tmp_path / "s.pt")
    with pytest.raises(ConfigError, match="model="):
        load_model(tmp_path / "s.pt")
    loaded = load_model(tmp_path / "s.pt", model=build())
    assert loaded[0].out_channels == loaded[1].num_features == loaded[3].in_channels == 4
    torch.testing.assert_close(loaded(x), small(x))


def test_bad_files_give_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a nasforge model"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="torchvision model"):
        save_model(nn.Linear(2, 2), tmp_path / "x.pt", builder="resnet81")


_JIT_LOAD = "ignore:`torch.jit.load` is deprecated:FutureWarning"


@pytest.mark.filterwarnings(_JIT_LOAD)
def test_torchscript_export_matches(pruned, tmp_path):
    model, x = pruned
    path = export_torchscript(model, tmp_path / "m.ts", x)
    torch.testing.assert_close(torch.jit.load(str(path))(x), model(x))


@pytest.mark.filterwarnings(_JIT_LOAD)
def test_int8_models_export_to_torchscript_not_save_model(tmp_path):
    from nasforge.compress.quantize import quantize_int8

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 4))
    x = torch.randn(4, 3, 6, 6)
    quantized = quantize_int8(model.eval(), [x])
    with pytest.raises(ConfigError, match="export_torchscript"):
        save_model(quantized, tmp_path / "q.pt")
    path = export_torchscript(quantized, tmp_path / "q.ts", x)
    torch.testing.assert_close(torch.jit.load(str(path))(x), quantized(x))


def test_onnx_export_matches_when_onnx_is_installed(pruned, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnxruntime

    model, x = pruned
    path = export_onnx(model, tmp_path / "m.onnx", x)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = torch.randn(5, 3, 16, 16)  # the batch dimension is dynamic
    (out,) = session.run(None, {"input": batch.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), model(batch), rtol=1e-3, atol=1e-4)


def test_onnx_without_onnx_says_how_to_install(pruned, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    model, x = pruned
    with pytest.raises(MissingDependencyError, match="pip install onnx"):
        export_onnx(model, tmp_path / "m.onnx", x)


def test_models_with_masks_attached_must_be_made_permanent_first(tmp_path):
    import nasforge as nf
    from nasforge.compress import make_permanent

    data = nf.load_dataset("synthetic", num_samples=60, input_shape=(4,), num_classes=2)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    pruner = nf.build("compressor", "magnitude_prune", sparsity=0.5, permanent=False)
    pruner.apply(model, nf.Trainer(data, progress=False))
    with pytest.raises(ConfigError, match="make_permanent"):
        save_model(model, tmp_path / "m.pt")
    save_model(make_permanent(model), tmp_path / "m.pt")
    loaded = load_model(
        tmp_path / "m.pt", model=nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    )
    assert (loaded[0].weight == 0).float().mean().item() == 0.5
