"""What a callable accepts, for settings that only some optimizers and heads take."""

from __future__ import annotations

import inspect

__all__ = ["takes_keyword"]


def takes_keyword(function, name: str) -> bool:
    """Whether ``function`` (or a class's ``__init__``) accepts the keyword ``name``,
    named or through ``**kwargs``.

    Examples
    --------
    >>> import torch
    >>> from sklimg.utils._introspection import takes_keyword
    >>> takes_keyword(torch.optim.SGD, "weight_decay")
    True
    >>> takes_keyword(torch.optim.LBFGS, "weight_decay")
    False
    """
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)
