import copy
import io
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

import nasforge as nf
from nasforge.compress.quantize import (
    ActivationFakeQuant,
    Int8Quantizer,
    QATQuantizer,
    QuantSpec,
    WeightFakeQuant,
    fake_quantize,
    prepare_qat,
    quantize_int8,
    recalibrate_batchnorm,
    strip_fake_quant,
)


def _size(model):  # local helper: bytes of the saved state_dict
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def _cnn(width=16, num_classes=3):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


@pytest.fixture
def image_bundle():
    return nf.load_dataset(
        "synthetic", num_samples=300, input_shape=(1, 8, 8), num_classes=3, noise=1.0, seed=0
    )


def _trainer(bundle, **kwargs):
    options = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "seed": 0, "progress": False}
    options.update(kwargs)
    return nf.Trainer(bundle, **options)


# ------------------------------------------------------------------------ fake-quant
@settings(max_examples=30, deadline=None)
@given(
    bits=st.integers(2, 8),
    symmetric=st.booleans(),
    per_channel=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_fake_quant_has_at_most_2_to_the_b_levels(bits, symmetric, per_channel, seed):
    spec = QuantSpec(bits=bits, symmetric=symmetric, per_channel=per_channel)
    w = torch.randn(4, 300, generator=torch.Generator().manual_seed(seed)) * 3
    q = WeightFakeQuant(spec)(w)
    rows = q if per_channel else q.reshape(1, -1)
    for row in rows:
        assert row.unique().numel() <= 2**bits
    if symmetric:
        assert rows.unique().numel() > 1
    # the error of a value inside the range is at most half a step
    step = (w.abs().amax(1, keepdim=True) if per_channel else w.abs().max()) / spec.qmax
    if symmetric:
        assert torch.all((q - w).abs() <= step / 2 + 1e-5)


def test_asymmetric_quantization_represents_zero_exactly_and_uses_the_full_range():
    spec = QuantSpec(bits=4, symmetric=False)
    x = torch.linspace(-1.0, 3.0, 101)
    scale, zp = spec.qparams(x.min(), x.max())
    q = fake_quantize(x, scale, zp, spec.qmin, spec.qmax)
    assert q.unique().numel() == 16
    assert float(fake_quantize(torch.zeros(1), scale, zp, spec.qmin, spec.qmax)) == 0.0
    assert float(q.min()) == pytest.approx(-1.0, abs=float(scale))
    assert float(q.max()) == pytest.approx(3.0, abs=float(scale))


def test_straight_through_estimator_passes_gradients_inside_the_range():
    spec = QuantSpec(bits=3, symmetric=True)
    x = torch.tensor([-5.0, -0.7, 0.1, 0.33, 0.9, 5.0], requires_grad=True)
    scale, zp = spec.qparams(torch.tensor(-1.0), torch.tensor(1.0))
    y = fake_quantize(x, scale, zp, spec.qmin, spec.qmax)
    (y * torch.arange(1.0, 7.0)).sum().backward()
    # identity inside [-1, 1] although round() has zero gradient; zero where clipped
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0]


def test_activation_quantizer_tracks_a_moving_range():
    fq = ActivationFakeQuant(QuantSpec(bits=8, symmetric=False), momentum=0.5)
    fq.train()
    fq(torch.tensor([0.0, 2.0]))
    assert float(fq.max_val) == 2.0
    fq(torch.tensor([0.0, 4.0]))
    assert float(fq.max_val) == 3.0  # 2 + 0.5 * (4 - 2)
    fq.eval()
    fq(torch.tensor([0.0, 100.0]))
    assert float(fq.max_val) == 3.0  # frozen in eval
    assert float(fq(torch.tensor([100.0]))) == pytest.approx(3.0, rel=1e-6)  # clipped


@pytest.mark.parametrize("bits", [1, 9, 2.5, True])
def test_bits_outside_2_to_8_are_refused(bits):
    with pytest.raises(nf.ConfigError, match=r"bits must be an integer in \[2, 8\]"):
        nf.build("compressor", "qat", bits=bits)


def test_invalid_activation_bits_name_their_field():
    with pytest.raises(nf.ConfigError) as info:
        QATQuantizer(activation_bits=12)
    assert info.value.field == "activation_bits"


# ------------------------------------------------------------------------------- QAT
def test_qat_trains_a_quantized_model_and_strip_keeps_its_weights(image_bundle):
    model = _cnn()
    qat = nf.build("compressor", "qat", bits=3, activation_bits=8, per_channel=True, epochs=3)
    out = qat.apply(model, _trainer(image_bundle))
    assert out is model
    assert qat.layers == ["0", "3", "8"]
    assert _trainer(image_bundle).evaluate(model)["accuracy"] > 0.6  # chance: 0.33
    for name in qat.layers:
        weight = model.get_submodule(name).weight  # fake-quantized on access
        for channel in weight.detach().reshape(weight.shape[0], -1):
            assert channel.unique().numel() <= 2**3
    x = image_bundle.test.tensors[0]
    model.eval()
    with torch.no_grad():
        expected = model(x)
        weights = {n: model.get_submodule(n).weight.detach().clone() for n in qat.layers}
    strip_fake_quant(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert not any(isinstance(m, ActivationFakeQuant) for m in model.modules())
    assert set(model.state_dict()) == set(_cnn().state_dict())
    for n in qat.layers:
        assert torch.equal(model.get_submodule(n).weight, weights[n])
    with torch.no_grad():  # only the 8-bit input rounding is gone
        assert (model(x).argmax(1) == expected.argmax(1)).float().mean() > 0.9


def test_strip_without_activation_quant_gives_identical_outputs(image_bundle):
    model = _cnn()
    QATQuantizer(bits=4, activation_bits=None, epochs=1).apply(model, _trainer(image_bundle))
    x = image_bundle.test.tensors[0]
    model.eval()
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(strip_fake_quant(model)(x), expected, rtol=0, atol=0)


def test_prepare_qat_excludes_layers_and_refuses_to_run_twice():
    model = _cnn()
    names = prepare_qat(model, weights=QuantSpec(bits=8), exclude=["0"])
    assert names == ["3", "8"]
    assert not parametrize.is_parametrized(model[0])
    with pytest.raises(nf.ConfigError, match=r"no layer '9'.*e\.g\. \['0', '1', '2', '3'\]"):
        prepare_qat(_cnn(), weights=QuantSpec(bits=8), exclude=["9"])
    with pytest.raises(nf.ConfigError, match="already parametrized"):
        prepare_qat(model, weights=QuantSpec(bits=8))
    copied = copy.deepcopy(model)  # fake-quant models can be copied and stripped
    strip_fake_quant(copied)
    assert parametrize.is_parametrized(model[3])


# ------------------------------------------------------------------------------ int8
def test_int8_is_smaller_close_and_quiet(image_bundle):
    model = _cnn(width=32)
    trainer = _trainer(image_bundle, epochs=3)
    trainer.fit(model)
    model.eval()
    before = copy.deepcopy(model.state_dict())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = nf.build("compressor", "int8", calibration_batches=4).apply(model, trainer)
        x = image_bundle.test.tensors[0]
        with torch.no_grad():
            out_q, out_f = quantized(x), model(x)
    assert not [w for w in caught if "torch" in w.filename or "quantiz" in str(w.message)]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert _size(quantized) < _size(model) / 2.5  # tiny model: headers weigh more
    assert (out_q.argmax(1) == out_f.argmax(1)).float().mean() > 0.95
    assert (out_q - out_f).abs().max() < 0.1 * out_f.abs().max()
    acc_f = trainer.evaluate(model)["accuracy"]
    assert trainer.evaluate(quantized)["accuracy"] >= acc_f - 0.02


def test_int8_after_qat_strips_fake_quant_first(image_bundle):
    model = _cnn()
    trainer = _trainer(image_bundle)
    model = QATQuantizer(bits=8, epochs=1).apply(model, trainer)
    quantized = Int8Quantizer(calibration_batches=2).apply(model, trainer)
    assert parametrize.is_parametrized(model[0])  # the input model keeps its fake-quant
    kinds = {type(m).__module__ for m in quantized.modules()}
    assert "torch.ao.nn.intrinsic.quantized.modules.conv_relu" in kinds
    assert trainer.evaluate(quantized)["accuracy"] > 0.6


def test_a_custom_backend_plugs_into_the_seam(image_bundle):
    class Recording:
        name = "recording"

        def __init__(self):
            self.calls = []

        def quantize(self, model, calibration, example_inputs):
            self.calls.append((model, len(calibration), example_inputs[0].shape))
            return model

    backend = Recording()
    model = _cnn()
    out = Int8Quantizer(calibration_batches=3, backend=backend).apply(model, _trainer(image_bundle))
    (copy_, batches, shape) = backend.calls[0]
    assert copy_ is out and copy_ is not model and not copy_.training
    assert batches == 3 and shape == (1, 1, 8, 8)


@pytest.mark.parametrize(
    ("options", "field"),
    [({"calibration_batches": 0}, "calibration_batches"), ({"backend": "pt3e"}, "backend")],
)
def test_int8_validation(options, field):
    with pytest.raises(nf.ConfigError) as info:
        nf.build("compressor", "int8", **options)
    assert info.value.field == field


def test_untraceable_model_gives_a_clear_error():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(nf.ConfigError, match="cannot trace Branchy"):
        quantize_int8(Branchy(), [torch.randn(8, 4)])


def _resnet18(pruned: bool = False):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # CIFAR-style stem
    model.maxpool = nn.Identity()
    if pruned:  # what structured pruning leaves: same module types, fewer inner channels
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in layer:
                keep = block.conv1.out_channels // 2
                conv1 = block.conv1
                block.conv1 = nn.Conv2d(conv1.in_channels, keep, 3, conv1.stride, 1, bias=False)
                block.bn1 = nn.BatchNorm2d(keep)
                block.conv2 = nn.Conv2d(keep, block.conv2.out_channels, 3, 1, 1, bias=False)
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("pruned", [False, True])
def test_int8_resnet18_is_4x_smaller_and_runs_int8_kernels(pruned):
    """Speed is measured in benchmarks/compress.py; here: size, int8 kernels, outputs."""
    model = _resnet18(pruned)
    generator = torch.Generator().manual_seed(0)
    calibration = [torch.rand(16, 3, 16, 16, generator=generator) for _ in range(4)]
    quantized = quantize_int8(model, calibration)
    assert _size(model) / _size(quantized) > 3.5
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    int8_modules = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")
    int8_convs = [
        m
        for m in quantized.modules()
        if type(m).__module__.startswith(int8_modules) and "Conv" in type(m).__name__
    ]
    assert len(int8_convs) == len(convs)  # every convolution runs as an int8 kernel
    assert not any(isinstance(m, nn.Conv2d) for m in quantized.modules())
    with torch.no_grad():
        batch = torch.rand(32, 3, 16, 16, generator=generator)
        out_f, out_q = model(batch), quantized(batch)
    assert torch.nn.functional.cosine_similarity(out_f, out_q).min() > 0.95


def test_batchnorm_recalibration_averages_statistics_of_the_final_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    model[1].running_mean.fill_(5.0)  # stale statistics
    batches = [torch.randn(8, 1, 6, 6) for _ in range(3)]
    assert recalibrate_batchnorm(model, batches) == 3
    with torch.no_grad():
        means = [model[0](b).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(model[1].running_mean, torch.stack(means).mean(0))
    assert model.training and model[1].momentum == 0.1  # mode and momentum restored
    assert recalibrate_batchnorm(nn.Linear(2, 2), batches) == 0


@pytest.mark.parametrize("batches", [0, 2])
def test_qat_recalibrates_batchnorm_after_fine_tuning(image_bundle, batches):
    calls = []

    class Marker(nf.Callback):
        def on_fit_end(self, trainer, state):
            calls.append("fit_end")

    model = _cnn()
    model[1].register_forward_hook(
        lambda m, a, o: calls.append((m.training, torch.is_grad_enabled()))
    )
    QATQuantizer(bits=4, epochs=1, bn_recalibration_batches=batches).apply(
        model, _trainer(image_bundle, callbacks=[Marker()])
    )
    after = calls[calls.index("fit_end") + 1 :]
    assert after == [(True, False)] * batches  # BN in train mode, no gradients


def test_bn_recalibration_batches_is_validated():
    with pytest.raises(nf.ConfigError) as info:
        QATQuantizer(bn_recalibration_batches=-1)
    assert info.value.field == "bn_recalibration_batches"
