"""Quantization-aware training: fake-quant at 2-8 bits with a straight-through estimator.

Weights of ``Conv``/``Linear`` layers are fake-quantized through a
``torch.nn.utils.parametrize`` parametrization (per-tensor or per-output-channel,
symmetric or asymmetric); the inputs of those layers are fake-quantized per tensor with
ranges tracked by an exponential moving average. In the backward pass rounding is skipped
(the straight-through estimator, Bengio et al. 2013) and values outside the representable
range get no gradient. The scheme follows Jacob et al. (2018), "Quantization and training
of neural networks for efficient integer-arithmetic-only inference", and Krishnamoorthi
(2018), "Quantizing deep convolutional networks for efficient inference: a whitepaper".

    qat = nf.build("compressor", "qat", bits=4, per_channel=True, epochs=5)
    model = qat.apply(model, trainer)          # fine-tuned, still fake-quantized
    plain = strip_fake_quant(model)            # weights baked onto the 4-bit grid
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from nasforge.compress.base import Compressor
from nasforge.data.loaders import as_loader
from nasforge.errors import ConfigError, close_matches
from nasforge.registry import register
from nasforge.validation import check_bool, check_int, check_number, check_str_list

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

__all__ = [
    "ActivationFakeQuant",
    "QATQuantizer",
    "QuantSpec",
    "WeightFakeQuant",
    "fake_quantize",
    "prepare_qat",
    "recalibrate_batchnorm",
    "strip_fake_quant",
]

logger = logging.getLogger(__name__)

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_INPUT_QUANTIZER = "input_quantizer"


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize one tensor: ``bits`` in 2..8, per-tensor or per-channel, (a)symmetric.

    Symmetric quantization uses the narrow signed range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``
    with zero point 0 (so 2 bits is ternary); asymmetric uses ``[0, 2^b - 1]`` with a zero
    point that represents 0.0 exactly. ``axis`` is the channel axis for per-channel scales.
    """

    bits: int = 8
    per_channel: bool = False
    symmetric: bool = True
    axis: int = 0

    def __post_init__(self) -> None:
        check_int(self.bits, "bits", low=2, high=8)
        check_bool(self.per_channel, "per_channel")
        check_bool(self.symmetric, "symmetric")
        check_int(self.axis, "axis", low=0)

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1) - 1) if self.symmetric else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    def qparams(
        self, min_val: torch.Tensor, max_val: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero point for values in ``[min_val, max_val]`` (0 always included)."""
        eps = torch.finfo(torch.float32).eps
        min_val = torch.clamp(min_val, max=0.0)
        max_val = torch.clamp(max_val, min=0.0)
        if self.symmetric:
            amax = torch.maximum(-min_val, max_val)
            scale = torch.clamp(amax / self.qmax, min=eps)
            return scale, torch.zeros_like(scale)
        scale = torch.clamp((max_val - min_val) / (self.qmax - self.qmin), min=eps)
        zero_point = torch.clamp(self.qmin - torch.round(min_val / scale), self.qmin, self.qmax)
        return scale, zero_point


def fake_quantize(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int
) -> torch.Tensor:
    """Quantize and dequantize ``x``; the gradient is the straight-through estimator.

    Forward: ``(clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale``.
    Backward: identity for ``x`` inside the representable range, zero outside it.
    """
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    dequantized = (q - zero_point) * scale
    low = (qmin - zero_point) * scale
    high = (qmax - zero_point) * scale
    clipped = torch.minimum(torch.maximum(x, low), high)
    return clipped + (dequantized - clipped).detach()


def _channel_view(t: torch.Tensor, ndim: int, axis: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[axis] = -1
    return t.view(shape)


class WeightFakeQuant(nn.Module):
    """Parametrization that fake-quantizes a weight with ranges taken from the weight itself."""

    def __init__(self, spec: QuantSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        w = weight.detach()
        if spec.per_channel:
            flat = w.transpose(0, spec.axis).reshape(w.shape[spec.axis], -1)
            scale, zp = spec.qparams(flat.min(dim=1).values, flat.max(dim=1).values)
            scale = _channel_view(scale, w.dim(), spec.axis)
            zp = _channel_view(zp, w.dim(), spec.axis)
        else:
            scale, zp = spec.qparams(w.min(), w.max())
        return fake_quantize(weight, scale, zp, spec.qmin, spec.qmax)


class ActivationFakeQuant(nn.Module):
    """Fake-quantizes activations per tensor; the range is an EMA of batch min/max in training.

    ``momentum`` weighs the newest batch; the first batch initialises the range. In eval
    mode the stored range is used unchanged.
    """

    def __init__(self, spec: QuantSpec, *, momentum: float = 0.01) -> None:
        super().__init__()
        if spec.per_channel:
            raise ConfigError.invalid(
                "activation per_channel", True, "False", "activations are quantized per tensor"
            )
        self.spec = spec
        self.momentum = check_number(momentum, "momentum", low=0, high=1, low_open=True)
        self.register_buffer("min_val", torch.zeros(()))
        self.register_buffer("max_val", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            low, high = x.detach().min(), x.detach().max()
            if not bool(self.initialized):
                self.min_val.copy_(low)
                self.max_val.copy_(high)
                self.initialized.fill_(True)
            else:
                self.min_val.lerp_(low, self.momentum)
                self.max_val.lerp_(high, self.momentum)
        elif not bool(self.initialized):
            return x  # never saw training data: nothing to quantize against yet
        scale, zp = self.spec.qparams(self.min_val, self.max_val)
        return fake_quantize(x, scale, zp, self.spec.qmin, self.spec.qmax)


def _quantize_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    quantizer = getattr(module, _INPUT_QUANTIZER)
    return (quantizer(args[0]), *args[1:])


def prepare_qat(
    model: nn.Module,
    *,
    weights: QuantSpec,
    activations: QuantSpec | None = None,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Add fake-quant to every Conv/Linear layer of ``model`` in place; return their names.

    Layers named in ``exclude`` (names from ``model.named_modules()``) stay in float.
    """
    known = dict(model.named_modules())
    for name in exclude:
        if name not in known:
            raise ConfigError(
                f"exclude: the model has no layer {name!r}."
                + close_matches(name, [n for n in known if n])
                + f" HINT: use names from model.named_modules(), e.g. {list(known)[1:5]}",
                field="exclude",
            )
    names = []
    for name, module in known.items():
        if not isinstance(module, _LAYERS) or name in exclude:
            continue
        if parametrize.is_parametrized(module, "weight"):
            raise ConfigError(
                f"layer {name!r} is already parametrized (fake-quant applied twice?). HINT: "
                "call strip_fake_quant(model) first",
                field="model",
            )
        parametrize.register_parametrization(module, "weight", WeightFakeQuant(weights))
        if activations is not None:
            module.add_module(_INPUT_QUANTIZER, ActivationFakeQuant(activations))
            module.register_forward_pre_hook(_quantize_input)
        names.append(name)
    return names


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate the running statistics of every BatchNorm layer on ``batches``.

    During QAT the quantization grid moves with the weights, so the running statistics,
    an average over the last few dozen steps, lag behind the final quantized weights and
    evaluation accuracy swings from epoch to epoch. Recomputing them once with the final
    weights (a plain average over ``batches``, everything else in eval mode) removes that
    lag (BN re-estimation, Nagel et al. 2022, "Overcoming oscillations in
    quantization-aware training"). Returns the number of batches used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    seen = 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for inputs in batches:
            model(inputs.to(device))
            seen += 1
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return seen


def strip_fake_quant(model: nn.Module) -> nn.Module:
    """Remove fake-quant from ``model`` in place, keeping the quantized weight values.

    The weights stay on the b-bit grid (stored as floats); input fake-quant is dropped.
    A model without fake-quant is returned unchanged.
    """
    for module in model.modules():
        if isinstance(module, _LAYERS) and parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        hooks = module._forward_pre_hooks  # ids survive deepcopy, unlike hook handles
        for key in [k for k, fn in hooks.items() if fn is _quantize_input]:
            del hooks[key]
        if isinstance(getattr(module, _INPUT_QUANTIZER, None), ActivationFakeQuant):
            delattr(module, _INPUT_QUANTIZER)
    return model


@register("compressor", "qat")
class QATQuantizer(Compressor):
    """Quantization-aware training: fake-quant weights (and inputs) at 2-8 bits, fine-tune.

    ``bits`` applies to the weights of every Conv/Linear layer (``per_channel`` scales along
    the output channels, ``symmetric`` or asymmetric); ``activation_bits`` (``None`` to
    skip) to their inputs, asymmetric per tensor. ``exclude`` keeps named layers in float
    (often the first and last). ``epochs`` overrides the Trainer's for the fine-tuning.
    Afterwards BatchNorm statistics are re-estimated on ``bn_recalibration_batches``
    training batches with the final quantized weights (0 skips it; see
    :func:`recalibrate_batchnorm` for why this matters at 4 bits and below).
    The returned model still carries fake-quant, so evaluating it measures the accuracy of
    the quantized network; :func:`strip_fake_quant` bakes the weights. For int8 speed on the
    CPU, follow with the ``int8`` compressor (which strips fake-quant first).

    Example::

        qat = nf.build("compressor", "qat", bits=4, activation_bits=8, epochs=3)
        model = qat.apply(model, nf.Trainer(data, lr=1e-4))

    Paper: Jacob et al. (2018), "Quantization and training of neural networks for
    efficient integer-arithmetic-only inference".
    """

    name = "qat"

    def __init__(
        self,
        *,
        bits: int = 8,
        activation_bits: int | None = 8,
        per_channel: bool = True,
        symmetric: bool = True,
        exclude: Sequence[str] = (),
        epochs: int | None = None,
        bn_recalibration_batches: int = 32,
    ) -> None:
        self.weights = QuantSpec(bits=bits, per_channel=per_channel, symmetric=symmetric)
        check_int(activation_bits, "activation_bits", low=2, high=8, optional=True)
        self.activations = (
            None
            if activation_bits is None
            else QuantSpec(bits=activation_bits, per_channel=False, symmetric=False)
        )
        self.exclude = tuple(check_str_list(exclude, "exclude"))
        self.epochs = check_int(epochs, "epochs", low=1, optional=True)
        self.bn_recalibration_batches = check_int(
            bn_recalibration_batches, "bn_recalibration_batches", low=0
        )
        self.layers: list[str] = []

    def apply(self, model: nn.Module, trainer: Engine) -> nn.Module:
        """Add fake-quant to ``model`` in place, fine-tune it with ``trainer``, return it."""
        self.layers = prepare_qat(
            model, weights=self.weights, activations=self.activations, exclude=self.exclude
        )
        if not self.layers:
            raise ConfigError(
                "qat found no Conv/Linear layer to quantize (all excluded?)", field="exclude"
            )
        logger.info("qat: fake-quant on %d layers (%s)", len(self.layers), self.weights)
        trainer.fit(model, epochs=self.epochs)
        if self.bn_recalibration_batches and trainer.train_data is not None:
            loader = as_loader(
                trainer.train_data, batch_size=trainer.batch_size, shuffle=True, seed=trainer.seed
            )
            batches = (inputs for inputs, _ in islice(loader, self.bn_recalibration_batches))
            used = recalibrate_batchnorm(model, batches)
            logger.info("qat: re-estimated BatchNorm statistics on %d batches", used)
        return model

    def __repr__(self) -> str:
        act = None if self.activations is None else self.activations.bits
        return (
            f"QATQuantizer(bits={self.weights.bits}, activation_bits={act}, "
            f"per_channel={self.weights.per_channel}, symmetric={self.weights.symmetric}, "
            f"epochs={self.epochs})"
        )
