"""Search spaces: parameter primitives, ``Arch``, ``Space`` and the built-in spaces.

Importing this package never imports torch; only ``Space.build`` does.
"""

from nasforge.space.base import Arch, Space
from nasforge.space.builtin import CNNSpace, MLPSpace, NB201Space
from nasforge.space.params import Choice, Fixed, FloatRange, IntRange, Param

__all__ = [
    "Arch",
    "CNNSpace",
    "Choice",
    "Fixed",
    "FloatRange",
    "IntRange",
    "MLPSpace",
    "NB201Space",
    "Param",
    "Space",
]
