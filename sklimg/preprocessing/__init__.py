"""Preprocessing steps for images, usable in scikit-learn pipelines.

Each step works eagerly on arrays and lazily on file paths and :class:`LazyImages`.
"""

from sklimg._lazy import LazyImages
from sklimg.preprocessing._base import ImageTransformer

__all__ = ["ImageTransformer", "LazyImages"]
