"""Errors raised by sklimg.

Every error subclasses a standard exception (``ValueError``, ``TypeError``), so code
that already catches those keeps working, and says what was received, what was
expected and how to fix it.
"""

from sklearn.exceptions import NotFittedError

__all__ = [
    "DeviceError",
    "ImageDtypeError",
    "ImageInputError",
    "NotFittedError",
    "UnknownBackboneError",
    "WeightsError",
]


class ImageInputError(ValueError):
    """Images (``X``) or labels (``y``) that sklimg cannot use as given.

    Raised before any training starts: wrong number of dimensions or channels,
    NaN or infinite pixels, images of different sizes, mismatched lengths.
    """


class ImageDtypeError(ImageInputError, TypeError):
    """Image data that is not numeric (strings, objects, complex numbers)."""


class UnknownBackboneError(ValueError):
    """A backbone name that is not in the registry."""


class WeightsError(ValueError):
    """Pretrained weights that cannot be found, read or matched to the backbone."""


class DeviceError(ValueError):
    """A ``device`` that does not exist or is not available on this machine."""
