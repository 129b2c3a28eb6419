"""Preprocessing steps for images, usable in scikit-learn pipelines.

Each step works eagerly on arrays and lazily on file paths and :class:`LazyImages`.
"""

from sklimg._lazy import LazyImages
from sklimg.preprocessing._augment import Augment
from sklimg.preprocessing._base import ImageTransformer
from sklimg.preprocessing._load import LoadImages
from sklimg.preprocessing._transforms import CenterCrop, Grayscale, Normalize, Resize, ToRGB

__all__ = [
    "Augment",
    "CenterCrop",
    "Grayscale",
    "ImageTransformer",
    "LazyImages",
    "LoadImages",
    "Normalize",
    "Resize",
    "ToRGB",
]
