"""Plain Python values from NumPy's: for JSON files, printed output and messages."""

from __future__ import annotations

import json

import numpy as np

__all__ = ["plain", "plain_history"]


def plain(value):
    """A NumPy scalar as the Python value it holds; anything else as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg._json import plain
    >>> plain(np.int64(3)), plain("cat")
    (3, 'cat')
    """
    return value.item() if isinstance(value, np.generic) else value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"history holds a {type(value).__name__}, which cannot be stored")


def plain_history(history) -> list:
    """A skorch ``History`` as plain lists, dicts and numbers, so that it can be stored
    without pickle (JSON, weights-only checkpoints).

    Raises
    ------
    TypeError
        If a record holds something other than numbers, strings, lists and dicts.
    """
    return json.loads(json.dumps(history.to_list(), default=_json_default))
