"""Compression: distillation, pruning, quantization, and pipelines of them."""

from nasforge.compress.base import Compressor

__all__ = ["Compressor"]
