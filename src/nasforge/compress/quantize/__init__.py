"""Quantization: fake-quant QAT at 2-8 bits and int8 post-training quantization."""

from nasforge.compress.quantize.ptq import (
    BACKENDS,
    FxBackend,
    Int8Backend,
    Int8Quantizer,
    quantize_int8,
)
from nasforge.compress.quantize.qat import (
    ActivationFakeQuant,
    QATQuantizer,
    QuantSpec,
    WeightFakeQuant,
    fake_quantize,
    prepare_qat,
    recalibrate_batchnorm,
    strip_fake_quant,
)

__all__ = [
    "BACKENDS",
    "ActivationFakeQuant",
    "FxBackend",
    "Int8Backend",
    "Int8Quantizer",
    "QATQuantizer",
    "QuantSpec",
    "WeightFakeQuant",
    "fake_quantize",
    "prepare_qat",
    "quantize_int8",
    "recalibrate_batchnorm",
    "strip_fake_quant",
]
