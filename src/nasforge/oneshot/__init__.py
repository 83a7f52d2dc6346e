"""Weight sharing and gradient-based search over a cell space's supernet.

- :func:`train_supernet` and :class:`SinglePathSampling`: train one supernet holding every
  arch of the space by uniform single-path sampling; score archs with
  :class:`nasforge.SupernetEvaluator`.
- :class:`Darts`: DARTS, first or second order, with a guard against its collapse into
  parameter-free ops.

The supernet itself (:class:`~nasforge.space.supernet.Supernet`, ``MixedOp``) is defined
with the spaces; docs/oneshot.md walks through all of it.
"""

from nasforge.oneshot.darts import GUARDS, Darts, DartsResult
from nasforge.oneshot.single_path import SinglePathSampling, train_supernet
from nasforge.space.supernet import MixedOp, Supernet

__all__ = [
    "GUARDS",
    "Darts",
    "DartsResult",
    "MixedOp",
    "SinglePathSampling",
    "Supernet",
    "train_supernet",
]
