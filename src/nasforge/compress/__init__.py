"""Compression: distillation, pruning, quantization, and pipelines of them."""

from nasforge.compress.base import Compressor
from nasforge.compress.export import export_onnx, export_torchscript, load_model, save_model
from nasforge.compress.pipeline import Pipeline
from nasforge.compress.prune import (
    ChannelPruner,
    MagnitudePruner,
    make_permanent,
    prune_channels,
    sparsity_report,
)
from nasforge.compress.report import CompressionReport

__all__ = [
    "ChannelPruner",
    "CompressionReport",
    "Compressor",
    "MagnitudePruner",
    "Pipeline",
    "export_onnx",
    "export_torchscript",
    "load_model",
    "make_permanent",
    "prune_channels",
    "save_model",
    "sparsity_report",
]
