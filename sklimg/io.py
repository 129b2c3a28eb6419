"""Read one image file (or an encoded image held in memory) into a channels-last NumPy
array, with errors that name the file.

Pillow decodes; this module decides what comes out: the right way up (EXIF
orientation), 1 or 3 channels, ``uint8`` for 8-bit files and ``float32`` in [0, 1] for
16-bit ones, and a size limit checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sklimg._files import special_file_kind
from sklimg.exceptions import ImageInputError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "check_image_file",
    "decode_image",
    "decoded_shape",
    "read_image",
]

#: Largest image (height x width) read by default: 10,000 x 10,000, larger than any
#: camera photo yet far below what a decompression bomb claims. 300 MB decoded as RGB.
DEFAULT_MAX_PIXELS = 100_000_000

# Errors Pillow raises on damaged data besides OSError (which covers truncation).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F", *_SIXTEEN_BIT_MODES)
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# EXIF orientations that rotate by 90 degrees, swapping height and width.
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)


def read_image(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode an image file to ``(H, W, C)`` with C = 1 (grayscale) or 3 (RGB).

    - The EXIF orientation tag is applied, so photos come out the right way up and
      ``H, W`` are the displayed height and width.
    - Grayscale files (modes ``1``, ``L``, 16-bit) give C = 1; every other colour
      mode (palette, CMYK, YCbCr, ...) is converted to RGB, C = 3.
    - Transparency (an alpha channel, a palette or colour-key transparency) is
      composited on a white background, which is how viewers and browsers show the
      file: the colour stored under fully transparent pixels is arbitrary (often
      black), so dropping alpha would turn a black logo on a transparent background
      into a black square.
    - 8-bit files give ``uint8``; 16-bit files give ``float32`` in [0, 1]
      (scikit-image's convention); 1-bit files give ``uint8`` 0 or 255; 32-bit float
      files give ``float32`` as stored.

    Parameters
    ----------
    path : str or path-like
        The image file: any format Pillow reads (PNG, JPEG, BMP, TIFF, WebP, GIF, ...).
        Multi-frame files give their first frame.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Largest ``height * width`` accepted, checked from the file header before
        decoding, so a small file claiming a huge size (a decompression bomb) is
        rejected without using memory. ``None``: no limit of sklimg's own; above
        ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (about 179 million pixels) Pillow's own
        limit still applies; raise it with ``PIL.Image.MAX_IMAGE_PIXELS = None`` for
        files you trust.

    Returns
    -------
    image : ndarray of shape (H, W, C)
        ``uint8``, or ``float32`` for 16-bit and floating point files.

    Raises
    ------
    ImageInputError
        If the file is missing, a directory, a named pipe, socket or device, not an
        image, truncated or corrupt, holds NaN or infinite pixels (floating point
        files), or is larger than ``max_pixels``; the message names the file.

    See Also
    --------
    check_image_file : Check a file from its header only, without decoding.
    decode_image : The same for an encoded image held in memory (an upload).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from sklimg.io import read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "red.png")
    >>> Image.new("RGBA", (4, 2), (255, 0, 0, 255)).save(path)
    >>> image = read_image(path)
    >>> image.shape, image.dtype, image[0, 0].tolist()
    ((2, 4, 3), dtype('uint8'), [255, 0, 0])
    """
    with _open(path, max_pixels) as (img, name):
        return _decoded(img, name)


def decode_image(
    data: bytes | bytearray | memoryview,
    *,
    name: str = "the image",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file's bytes, held in memory, as :func:`read_image` decodes the
    file: the same orientation, channels, dtypes, size limit and errors.

    For images that never were files (an HTTP upload, a message from a queue, a blob
    from a database): nothing is written to disk.

    Parameters
    ----------
    data : bytes, bytearray or memoryview
        The encoded image, as a file of any format Pillow reads would hold it.
    name : str, default="the image"
        What the error messages call it, e.g. the uploaded file's name.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Largest ``height * width`` accepted, checked from the header before decoding;
        see :func:`read_image`.

    Returns
    -------
    image : ndarray of shape (H, W, C)
        As :func:`read_image` returns.

    Raises
    ------
    ImageInputError
        If ``data`` is empty, not an image, truncated or corrupt, holds NaN or infinite
        pixels, or is larger than ``max_pixels``; the message names ``name``.
    TypeError
        If ``data`` is not bytes-like (a path goes to :func:`read_image`).

    See Also
    --------
    read_image : Decode an image file.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> from sklimg.io import decode_image
    >>> buffer = io.BytesIO()
    >>> Image.new("L", (4, 2), 7).save(buffer, format="PNG")
    >>> image = decode_image(buffer.getvalue(), name="upload.png")
    >>> image.shape, image.dtype, int(image[0, 0, 0])
    ((2, 4, 1), dtype('uint8'), 7)
    >>> decode_image(b"not pixels", name="notes.png")
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: 'notes.png' is not an image file Pillow can read ...
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            f"decode_image takes the encoded image as bytes; got {type(data).__name__}. "
            f"For a file on disk use sklimg.io.read_image(path)."
        )
    label = repr(name)
    if not len(data):
        raise ImageInputError(f"{label} is empty (0 bytes), not an image; send the image.")
    with _open(io.BytesIO(data), max_pixels, name=label) as (img, label):
        return _decoded(img, label)


def _decoded(img: Image.Image, name: str) -> np.ndarray:
    img.load()  # decode inside _open, so that damaged data is reported as such
    ImageOps.exif_transpose(img, in_place=True)
    return _to_array(img, name)


def check_image_file(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[int, int]:
    """Check that ``path`` is an image file of acceptable size without decoding it.

    Reads only the header, so checking thousands of files before training is fast.
    Damage after the header (a truncated file) is found only when the pixels are
    decoded by :func:`read_image`.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Largest ``height * width`` accepted; see :func:`read_image`.

    Returns
    -------
    size : tuple of int
        ``(height, width)`` as stored, before EXIF rotation.

    Raises
    ------
    ImageInputError
        If the file is missing, a directory, a named pipe, socket or device, not an
        image, or larger than ``max_pixels``; the message names it.

    Examples
    --------
    >>> import tempfile, os
    >>> from PIL import Image
    >>> from sklimg.io import check_image_file
    >>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
    >>> Image.new("L", (5, 3)).save(path)
    >>> check_image_file(path)
    (3, 5)
    """
    with _open(path, max_pixels) as (img, _):
        width, height = img.size
    return height, width


def decoded_shape(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[int, int, int]:
    """The shape :func:`read_image` will return for ``path``, from the header alone.

    Parameters
    ----------
    path : str or path-like
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Largest ``height * width`` accepted; see :func:`read_image`.

    Returns
    -------
    shape : tuple of int
        ``(height, width, channels)``: the EXIF orientation applied, 1 channel for
        grayscale files and 3 for the rest.

    Raises
    ------
    ImageInputError
        As :func:`check_image_file`.

    Examples
    --------
    >>> import tempfile, os
    >>> from PIL import Image
    >>> from sklimg.io import decoded_shape
    >>> path = os.path.join(tempfile.mkdtemp(), "photo.jpg")
    >>> exif = Image.Exif()
    >>> exif[0x0112] = 6  # taken with the camera on its side: shown rotated by 90 degrees
    >>> Image.new("RGB", (40, 30)).save(path, exif=exif)
    >>> decoded_shape(path)
    (40, 30, 3)
    """
    with _open(path, max_pixels) as (img, _):
        width, height = img.size
        gray = img.mode in _GRAY_MODES
        orientation = _orientation(img)
    if orientation in _TRANSPOSED_ORIENTATIONS:
        height, width = width, height
    return height, width, 1 if gray else 3


@contextmanager
def _open(
    source, max_pixels: int | None, *, name: str | None = None
) -> Iterator[tuple[Image.Image, str]]:
    """Open ``source`` lazily, its size checked; yields the image and its name for
    messages (the path's repr, unless ``name`` is given: ``source`` is then an open
    binary file).

    Pillow's errors, raised on opening or later in the ``with`` block (decoding), become
    an ``ImageInputError`` that names the file.
    """
    _check_max_pixels(max_pixels)
    if name is None:
        name = _check_path(source)
    try:
        # Pillow warns about large images itself; sklimg's limit replaces its warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_size(img.size, max_pixels, name)
                yield img, name
    except ImageInputError:
        raise  # sklimg's own, already clear (and a ValueError, caught below otherwise)
    except UnidentifiedImageError:
        raise ImageInputError(
            f"{name} is not an image file Pillow can read (PNG, JPEG, BMP, TIFF, WebP, GIF, "
            f"...), or its header is damaged. Remove it from the list or convert it."
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"Image file {name} is over Pillow's own size limit ({exc}). If you trust the "
            f"file, set PIL.Image.MAX_IMAGE_PIXELS = None and pass max_pixels=None."
        ) from None
    except _DECODE_ERRORS as exc:
        raise ImageInputError(
            f"Could not read image file {name}: {exc}. The file is damaged or incomplete "
            f"(an interrupted download or copy?); replace it or remove it from the list."
        ) from exc


def _orientation(img: Image.Image) -> int | None:
    """The EXIF orientation :func:`read_image` will apply to an open file's size, read
    without decoding the pixels."""
    if img.format == "TIFF":
        return None  # Pillow's TIFF reader reports the size with the rotation applied
    if img.format == "PNG":
        # Pillow's PNG getexif decodes the whole file to find an eXIf chunk stored after
        # the pixels (which the PNG specification does not allow); the base method reads
        # what the header holds: an eXIf chunk, ImageMagick's raw profile, XMP.
        return Image.Image.getexif(img).get(0x0112)
    return img.getexif().get(0x0112)


def _check_max_pixels(max_pixels) -> None:
    if max_pixels is not None and (
        not isinstance(max_pixels, Integral) or isinstance(max_pixels, bool) or max_pixels < 1
    ):
        raise ValueError(
            f"max_pixels must be a positive integer (height * width) or None for no limit; "
            f"got {max_pixels!r}."
        )


def _check_path(path) -> str:
    """The path's repr for messages, after checking it names an existing file."""
    name = repr(os.fspath(path))
    kind = special_file_kind(path)
    if kind == "a folder":
        raise ImageInputError(
            f"{name} is a directory, not an image file. Pass the files inside it, e.g. "
            f"sorted(pathlib.Path({name}).glob('*.png'))."
        )
    if kind is not None:
        # Opening a named pipe waits for a writer, and a device never ends: refused
        # before open, so that a stray pipe in a folder cannot hang a fit.
        raise ImageInputError(
            f"{name} is {kind}, not a regular image file; reading it could block or "
            f"never end. Remove it from the list or folder, or copy the image to a file."
        )
    if not Path(path).exists():
        raise ImageInputError(
            f"Image file {name} does not exist (relative paths start from the working "
            f"directory {os.getcwd()!r}); check the path."
        )
    return name


def _check_size(size: tuple[int, int], max_pixels: int | None, name: str) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageInputError(
            f"Image file {name} is {width} x {height} = {width * height:,} pixels, over the "
            f"limit of max_pixels={max_pixels:,} (a guard against decompression bombs). If "
            f"you trust the file, raise the limit: read_image(path, max_pixels=...) or "
            f"max_pixels=None; or downscale the file."
        )


def _to_array(img: Image.Image, name: str) -> np.ndarray:
    gray = img.mode in _GRAY_MODES
    if img.mode in _SIXTEEN_BIT_MODES:
        return (np.asarray(img, dtype=np.float32) / np.float32(65535))[..., np.newaxis]
    if img.mode == "I":
        # Pillow gives some 16-bit files (older versions: every 16-bit PNG) as 32-bit "I".
        array = np.asarray(img)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ImageInputError(
                f"Image file {name} holds 32-bit integer pixels outside the 16-bit range "
                f"0..65535, which sklimg cannot scale to [0, 1]; convert it to 8 or 16 bits."
            )
        return (array.astype(np.float32) / np.float32(65535))[..., np.newaxis]
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float32)
        if not np.isfinite(array).all():
            # The same refusal as for arrays: NaN would flow silently into predictions.
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise ImageInputError(
                f"Image file {name} holds {bad:,} NaN or infinite pixels (of "
                f"{array.size:,}); sklimg needs finite pixel values. Repair the file "
                f"(e.g. np.nan_to_num on its pixels) or remove it from the list."
            )
        return array[..., np.newaxis]
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        return _composite_on_white(np.asarray(img.convert("LA" if gray else "RGBA")))
    array = np.asarray(img.convert("L" if gray else "RGB"))
    return array[..., np.newaxis] if gray else array


def _composite_on_white(array: np.ndarray) -> np.ndarray:
    """``(H, W, C + 1)`` uint8 colour and straight alpha -> ``(H, W, C)`` on white."""
    alpha = array[..., -1:].astype(np.float32) / np.float32(255)
    colour = array[..., :-1].astype(np.float32)
    return np.rint(colour * alpha + np.float32(255) * (1 - alpha)).astype(np.uint8)
