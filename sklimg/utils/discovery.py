"""Find sklimg's public estimators, for the common tests and the docs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]


def all_estimators() -> list[tuple[str, type]]:
    """Public estimator classes defined in sklimg, as ``(name, class)`` sorted by name.

    Returns
    -------
    estimators : list of (str, type)

    Examples
    --------
    >>> from sklimg.utils.discovery import all_estimators
    >>> ("ImageClassifier", __import__("sklimg").ImageClassifier) in all_estimators()
    True
    """
    import sklimg

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(sklimg.__path__, prefix="sklimg."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]) or ".tests" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("sklimg")
                and not name.startswith("_")
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())
