"""The contract every ``compressor`` plugin follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from nasforge._options import Configurable

if TYPE_CHECKING:
    from nasforge.train.engine import Engine


class Compressor(Configurable):
    """One compression step: a policy (what to remove, which bits, which loss) plus one
    mechanism, driven by the training engine (a :class:`nasforge.Trainer` is one).

    :meth:`apply` takes a model and returns the compressed model (the same object modified in
    place, or a new one when shapes or module types change). Steps that fine-tune do so
    with ``trainer.fit(model, callbacks=[...])``, so training itself knows nothing about
    compression. A :class:`~nasforge.compress.Pipeline` chains steps in order. Constructor
    options are recorded automatically in :attr:`options`.
    """

    #: Registry name, set by subclasses for reports and logs.
    name: str = "compressor"

    def __init__(self) -> None:
        """A compressor without options; subclasses take theirs as keyword arguments."""

    def apply(self, model: nn.Module, trainer: Engine) -> nn.Module:
        """Compress ``model`` (fine-tuning with ``trainer`` where the method needs it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(
            f"{k}={v!r}" for k, v in self.options.items() if not isinstance(v, nn.Module)
        )
        return f"{type(self).__name__}({options})"
