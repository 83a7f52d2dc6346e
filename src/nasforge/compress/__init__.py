"""Compression: distillation, pruning, quantization, and pipelines of them."""

from nasforge.compress.base import Compressor
from nasforge.compress.distill import DistillationCallback, Distiller
from nasforge.compress.pipeline import Pipeline
from nasforge.compress.prune import (
    ChannelPruner,
    MagnitudePruner,
    make_permanent,
    prune_channels,
    sparsity_report,
)
from nasforge.compress.quantize import Int8Quantizer, QATQuantizer, quantize_int8
from nasforge.compress.report import CompressionReport
from nasforge.export import export_onnx, export_torchscript, load_model, save_model

__all__ = [
    "ChannelPruner",
    "CompressionReport",
    "Compressor",
    "DistillationCallback",
    "Distiller",
    "Int8Quantizer",
    "MagnitudePruner",
    "Pipeline",
    "QATQuantizer",
    "export_onnx",
    "export_torchscript",
    "load_model",
    "make_permanent",
    "prune_channels",
    "quantize_int8",
    "save_model",
    "sparsity_report",
]
