"""Plugins that remember how they were constructed.

:class:`Configurable` records the arguments of its constructor, defaults included, in
``options`` before ``__init__`` runs, so a plugin never keeps a hand-written list of its
own options (for a state dict, a pickle or a journal) that could miss one.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def _signature(cls: type) -> inspect.Signature:
    return inspect.signature(cls.__init__)  # type: ignore[misc]


def _bind(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = _signature(cls).bind_partial(None, *args, **kwargs)
    except TypeError:  # __init__ raises the same error with its own message
        return {}
    bound.apply_defaults()
    options: dict[str, Any] = {}
    for index, (name, value) in enumerate(bound.arguments.items()):
        if index == 0:  # self
            continue
        parameter = bound.signature.parameters[name]
        if parameter.kind is parameter.VAR_KEYWORD:
            options.update(value)
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            options[name] = value
    return options


class Configurable:
    """Mixin: ``options`` holds every constructor argument by name, defaults included."""

    _constructor_options: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # inspect.signature(cls) would otherwise report __new__'s (*args, **kwargs), and
        # the registry checks arguments against the signature.
        init = inspect.signature(cls.__init__)  # type: ignore[misc]
        parameters = list(init.parameters.values())[1:]
        cls.__signature__ = init.replace(parameters=parameters)  # type: ignore[attr-defined]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        # Unpickling calls __new__ without arguments; the pickled __dict__ then restores
        # the options recorded at construction.
        self._constructor_options = _bind(cls, args, kwargs)
        return self

    @property
    def options(self) -> dict[str, Any]:
        """The constructor arguments (a copy), e.g. to build an equal instance."""
        return dict(self._constructor_options)
