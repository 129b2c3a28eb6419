"""Warnings that point at the user's own line, however deep in sklimg they are raised."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str | Warning, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` of a message (or of a Warning instance) with the ``stacklevel``
    of the first frame outside sklimg: the user's call (or the library's, e.g.
    scikit-learn's cross-validation, that made it), without counting frames that change
    whenever code moves.

    Examples
    --------
    >>> import warnings
    >>> from sklimg._warnings import warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("careful")
    >>> str(caught[0].message), caught[0].filename.endswith("_warnings.py")
    ('careful', False)
    """
    # Level 1 is this function; level 2 its caller, the first frame looked at.
    frame, level = sys._getframe(1), 2
    while frame is not None and _inside(frame.f_code):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _inside(code) -> bool:
    """Whether a frame runs sklimg's code, or the wrapper scikit-learn's
    ``_fit_context`` puts around sklimg's ``fit`` methods."""
    qualname = getattr(code, "co_qualname", code.co_name)
    return code.co_filename.startswith(_PACKAGE) or qualname.startswith("_fit_context.")
