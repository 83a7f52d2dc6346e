"""Datasets that ship with nasforge, are generated locally or are read from files, and data
plumbing."""

from nasforge.data.bundle import DataBundle, load_dataset, stratified_split
from nasforge.data.loaders import TensorLoader, as_loader
from nasforge.data.splits import Splits, prepare_splits

__all__ = [
    "DataBundle",
    "Splits",
    "TensorLoader",
    "as_loader",
    "load_dataset",
    "prepare_splits",
    "stratified_split",
]
