"""The one version stamp: which sklimg and torch a model was made with.

Pickles, model files and ONNX exports record :func:`versions`, and compare it with the
installed one when they are read back. A leaf module, so that setuptools reads
``__version__`` without importing the package.
"""

from __future__ import annotations

import torch

__all__ = ["__version__", "versions"]

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """The installed sklimg and torch versions (torch without its build suffix).

    Returns
    -------
    versions : dict of str to str
        ``{"sklimg": ..., "torch": ...}``.

    Examples
    --------
    >>> from sklimg._version import versions
    >>> sorted(versions())
    ['sklimg', 'torch']
    """
    return {"sklimg": __version__, "torch": torch.__version__.split("+")[0]}
