"""Read one image file into a channels-last NumPy array, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sklimg.exceptions import ImageInputError

__all__ = ["check_image_file", "read_image"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to ``(H, W, C)`` with C = 1 (grayscale) or 3 (RGB).

    EXIF orientation is applied, so photos come out the right way up. 8-bit images
    are ``uint8``; 16-bit images are ``float32`` in [0, 1]. Palette, CMYK and other
    colour modes become RGB; transparency is dropped.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    image : ndarray of shape (H, W, C)

    Raises
    ------
    ImageInputError
        If the file is missing, a directory, not an image, or truncated; the message
        names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageInputError(f"{str(path)!r} is a directory, not an image file.")
    if not path.exists():
        raise ImageInputError(f"Image file {str(path)!r} does not exist.")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return _to_array(img)
    except UnidentifiedImageError:
        raise ImageInputError(
            f"{str(path)!r} is not an image file PIL can read (PNG, JPEG, BMP, TIFF, ...)."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"Could not decode {str(path)!r}: {exc}") from exc


def check_image_file(path: str | os.PathLike) -> tuple[int, int]:
    """Check that ``path`` is a readable image without decoding its pixels.

    Reads only the header, so checking thousands of files before training is fast.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    size : tuple of int
        ``(height, width)`` as stored (before EXIF rotation).

    Raises
    ------
    ImageInputError
        If the file is missing, a directory, or not an image; the message names it.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageInputError(f"{str(path)!r} is a directory, not an image file.")
    if not path.exists():
        raise ImageInputError(f"Image file {str(path)!r} does not exist.")
    try:
        with Image.open(path) as img:
            width, height = img.size
    except UnidentifiedImageError:
        raise ImageInputError(
            f"{str(path)!r} is not an image file PIL can read (PNG, JPEG, BMP, TIFF, ...)."
        ) from None
    except OSError as exc:
        raise ImageInputError(f"Could not read {str(path)!r}: {exc}") from exc
    return height, width


def _to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.float32) / 65535.0
        return array[..., None]
    if img.mode in ("L", "1"):
        return np.asarray(img.convert("L"))[..., None]
    return np.asarray(img.convert("RGB"))
