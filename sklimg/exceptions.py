"""Errors raised by sklimg.

Every error subclasses a standard exception (``ValueError``, ``TypeError``), so code
that already catches those keeps working, and says what was received, what was
expected and how to fix it.
"""

from sklearn.exceptions import NotFittedError

__all__ = [
    "CheckpointError",
    "DeviceError",
    "ImageDtypeError",
    "ImageInputError",
    "InsufficientMemoryError",
    "ModelFileError",
    "NotFittedError",
    "PixelRangeWarning",
    "TrainingDivergedError",
    "TrainingInterruptedWarning",
    "UnknownBackboneError",
    "VersionMismatchWarning",
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
    """A backbone name that is not in the registry.

    Parameters
    ----------
    message : str
    name : str or None, default=None
        The unknown name.
    close : sequence of str, default=()
        Registered names close to it.
    """

    def __init__(self, message: str, *, name: str | None = None, close=()) -> None:
        super().__init__(message)
        self.name = name
        self.close = tuple(close)


class WeightsError(ValueError):
    """Pretrained weights that cannot be found, read or matched to the backbone."""


class DeviceError(ValueError):
    """A ``device`` that does not exist or is not available on this machine."""


class ModelFileError(ValueError):
    """A model file that is not an sklimg model, was modified, truncated, or names a type
    sklimg does not know. Loading it ran nothing."""


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the last good weights are kept."""


class CheckpointError(OSError):
    """A checkpoint could not be written (a full disk, a folder that went away); the
    classifier keeps the weights of the last complete epoch and no partial file is
    left."""


class InsufficientMemoryError(MemoryError):
    """Work refused before it starts because its estimate is over the free memory
    (e.g. training on very large images); the message says how to shrink it."""


class VersionMismatchWarning(UserWarning):
    """A model saved with other versions of sklimg or torch than those installed."""


class PixelRangeWarning(UserWarning):
    """Images given for prediction on another pixel scale than the training images
    (e.g. values up to 255 where the training images were in [0, 1])."""


class TrainingInterruptedWarning(UserWarning):
    """Training stopped by Ctrl-C; the model keeps the best weights so far."""
