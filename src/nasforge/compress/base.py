"""The contract every ``compressor`` plugin follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from nasforge.train.trainer import Trainer


class Compressor:
    """One compression step: a policy (what to remove, which bits, which loss) plus one
    mechanism, driven by the Trainer.

    :meth:`apply` takes a model and returns the compressed model (the same object modified in
    place, or a new one when shapes or module types change). Steps that fine-tune do so
    with ``trainer.fit(model, callbacks=[...])``, so training itself knows nothing about
    compression. A :class:`~nasforge.compress.Pipeline` chains steps in order.
    """

    #: Registry name, set by subclasses for reports and logs.
    name: str = "compressor"

    def apply(self, model: nn.Module, trainer: Trainer) -> nn.Module:
        """Compress ``model`` (fine-tuning with ``trainer`` where the method needs it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
