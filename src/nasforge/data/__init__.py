"""Datasets that ship with nasforge or are generated locally, and data plumbing."""

from nasforge.data.bundle import DataBundle, load_dataset, stratified_split
from nasforge.data.loaders import TensorLoader, as_loader

__all__ = ["DataBundle", "TensorLoader", "as_loader", "load_dataset", "stratified_split"]
