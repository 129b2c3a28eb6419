"""Validation of images and labels, shared by every estimator.

Images follow scikit-image's convention: channels last, ``(n_samples, height, width)``
for grayscale and ``(n_samples, height, width, channels)`` otherwise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Integral

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from sklimg._json import plain
from sklimg._lazy import LazyImages, is_path_sequence
from sklimg._pixels import SUPPORTED_CHANNELS, mismatch_fix
from sklimg._warnings import warn
from sklimg.exceptions import ImageDtypeError, ImageInputError, PixelRangeWarning

__all__ = [
    "as_images",
    "check_groups",
    "check_image_list",
    "check_image_shape_param",
    "check_images",
    "check_labels",
    "check_same_range",
    "check_same_shape",
    "check_sample_weight",
    "pixel_range",
]


def check_image_shape_param(image_shape) -> tuple[int, ...] | None:
    """Validate the ``image_shape`` parameter: ``None``, ``(H, W)`` or ``(H, W, C)``.

    Parameters
    ----------
    image_shape : tuple of int or None

    Returns
    -------
    image_shape : tuple of int or None

    Raises
    ------
    ImageInputError
        If it is not two or three positive integers.

    Examples
    --------
    >>> from sklimg.utils.validation import check_image_shape_param
    >>> check_image_shape_param([28, 28])
    (28, 28)
    >>> check_image_shape_param((28, -1))
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: image_shape must be (height, width) or ...
    """
    if image_shape is None:
        return None
    shape = tuple(image_shape)
    if len(shape) not in (2, 3) or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ImageInputError(
            f"image_shape must be (height, width) or (height, width, channels) with "
            f"positive integers; got {image_shape!r}. For load_digits().data use "
            f"image_shape=(8, 8)."
        )
    return tuple(int(s) for s in shape)


def _stack_list(X: Sequence) -> np.ndarray:
    """Stack a list of equally sized images, or say which one differs."""
    arrays = [np.asarray(x) for x in X]
    first = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != first:
            raise ImageInputError(
                f"X is a list of images of different shapes: image 0 has shape {first} "
                f"but image {i} has shape {a.shape}. {mismatch_fix(first, a.shape)}"
            )
    return np.stack(arrays)


def _looks_like_paths(X) -> bool:
    if isinstance(X, np.ndarray):
        return X.ndim == 1 and (
            X.dtype.kind in "US"
            or (X.dtype == object and X.size > 0 and isinstance(X[0], (str, os.PathLike)))
        )
    return len(X) > 0 and isinstance(X[0], (str, bytes, os.PathLike))


def check_images(X, *, image_shape=None, channels=SUPPORTED_CHANNELS) -> np.ndarray:
    """Validate a batch of images and return it as ``(n, H, W, C)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W[ * C])
        The images: a NumPy array, or a list of equally sized arrays. Channels last,
        with 1 (grayscale) or 3 (RGB) channels. A 2-D array holds one flattened image
        per row and is reshaped with ``image_shape``, or into squares when that is
        unambiguous (64 values -> 8x8).
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of each row when ``X`` is 2-D.
    channels : tuple of int, default=(1, 3)
        Accepted channel counts.

    Returns
    -------
    images : ndarray of shape (n_samples, H, W, C)
        ``uint8`` images stay ``uint8`` (they are scaled to [0, 1] on the fly, which
        keeps memory at one byte per pixel); ``uint16`` and ``bool`` images are scaled
        to [0, 1] as float32 (scikit-image's convention); other numeric types become
        ``float32`` unchanged.

    Raises
    ------
    ImageInputError
        If ``X`` is empty, has the wrong number of dimensions or channels, contains
        NaN or infinite values, or is a list of images of different sizes.
    ImageDtypeError
        If ``X`` is not numeric.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.utils.validation import check_images
    >>> check_images(np.zeros((5, 8, 8))).shape
    (5, 8, 8, 1)
    >>> check_images(np.zeros((5, 64))).shape
    (5, 8, 8, 1)
    """
    shape_param = check_image_shape_param(image_shape)
    X = _unwrapped(X)
    if X is None:
        raise ImageInputError("X is None; expected an array of images of shape (n, H, W[, C]).")
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ImageInputError("X is empty; expected at least one image.")
        if _looks_like_paths(X):
            raise ImageInputError(
                "X holds file paths; load them first with sklimg.preprocessing.LoadImages "
                "or pass an array of pixels."
            )
        X = _stack_list(X)
    elif hasattr(X, "__array__") or isinstance(X, np.ndarray):
        X = np.asarray(X)
    else:
        raise ImageDtypeError(
            f"X must be an array or a list of arrays of images; got {type(X).__name__}."
        )

    if X.dtype.kind in "USO" and _looks_like_paths(X):
        raise ImageInputError(
            "X holds file paths; load them first with sklimg.preprocessing.LoadImages "
            "or pass an array of pixels."
        )
    if X.dtype.kind not in "biuf":
        raise ImageDtypeError(
            f"X must hold numeric pixel values; got an array of dtype {X.dtype}. "
            f"Convert it with np.asarray(X, dtype=np.float32) or decode the images first."
        )
    if X.ndim == 0 or X.shape[0] == 0:
        raise ImageInputError(f"X is empty (shape {X.shape}); expected at least one image.")
    if X.size == 0:
        raise ImageInputError(
            f"X holds images of 0 pixels (shape {X.shape}); every image needs a height and "
            f"width of at least 1."
        )

    return _convert_pixels(_to_nhwc(X, shape_param, channels))


def _convert_pixels(X: np.ndarray) -> np.ndarray:
    """uint8 kept; uint16 and bool scaled to [0, 1]; other numbers as float32; finite."""
    if X.dtype == np.uint8:
        return X
    if X.dtype == np.bool_:
        return X.astype(np.float32)
    if X.dtype == np.uint16:
        return (X / np.float32(65535)).astype(np.float32)
    X = np.asarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        n_bad = int((~np.isfinite(X)).reshape(len(X), -1).any(axis=1).sum())
        raise ImageInputError(
            f"X contains NaN or infinite pixel values in {n_bad} of {len(X)} images. "
            f"Remove those images or replace the values, e.g. with np.nan_to_num(X)."
        )
    return X


def as_images(X, *, image_shape=None, channels=SUPPORTED_CHANNELS, ragged=False):
    """Images in memory as a validated array, or files and lazy views as ``LazyImages``.

    Parameters
    ----------
    X : array-like, list of arrays, file paths (1-D array or list of str/Path), or
        LazyImages
    image_shape : tuple of int, default=None
        See :func:`check_images`.
    channels : tuple of int, default=(1, 3)
        Accepted channel counts of in-memory images.
    ragged : bool, default=False
        Accept a list of images of different sizes (returned as a list), for steps
        such as ``Resize``; see :func:`check_image_list`.

    Returns
    -------
    images : ndarray of shape (n, H, W, C), list of arrays, or LazyImages
        File headers are checked up front, so a missing or unreadable file fails here,
        before any work starts.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.utils.validation import as_images
    >>> as_images(np.zeros((5, 8, 8), dtype=np.uint8)).shape
    (5, 8, 8, 1)
    >>> as_images(["missing.png"])
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: ...missing.png...
    """
    X = _unwrapped(X)
    if is_path_sequence(X):
        X = LazyImages(X)
    if isinstance(X, LazyImages):
        if len(X) == 0:
            raise ImageInputError("X is empty; expected at least one image.")
        X.check_files()
        # A folder of photos mixes grayscale and colour files: all become RGB.
        return X.with_gray_as_rgb()
    if ragged:
        return check_image_list(X, channels=channels)
    return check_images(X, image_shape=image_shape, channels=channels)


def _unwrapped(X):
    """What a container of images holds, as the rest of validation takes it: a
    one-column DataFrame of paths or arrays as its column, a pandas Series or Index as
    its values, a 1-D object array of image arrays as a list of them."""
    if hasattr(X, "columns") and getattr(X, "ndim", 0) == 2 and X.shape[1] == 1:
        column = X.iloc[:, 0]
        if column.dtype.kind == "O":  # paths or arrays; numbers stay a (flattened) table
            X = column
    if not isinstance(X, np.ndarray) and hasattr(X, "to_numpy") and getattr(X, "ndim", 0) == 1:
        X = X.to_numpy()
    if isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1 and X.size:
        if all(isinstance(x, np.ndarray) for x in X):
            X = list(X)
    return X


def check_image_list(X, *, channels=SUPPORTED_CHANNELS):
    """Validate images that may differ in size, for steps such as ``Resize``.

    Parameters
    ----------
    X : array-like of shape (n, H, W[, C]) or list of arrays of shape (H, W[, C])
    channels : tuple of int, default=(1, 3)
        Accepted channel counts.

    Returns
    -------
    images : ndarray of shape (n, H, W, C), or list of ndarray of shape (H, W, C)
        An array when all images share a shape, else a list; pixel types converted as
        in :func:`check_images`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.utils.validation import check_image_list
    >>> [image.shape for image in check_image_list([np.zeros((8, 8)), np.zeros((10, 12, 3))])]
    [(8, 8, 1), (10, 12, 3)]
    """
    X = _unwrapped(X)
    if isinstance(X, (list, tuple)) and len(X) and not _looks_like_paths(X):
        arrays = [np.asarray(x) for x in X]
        if any(a.shape != arrays[0].shape for a in arrays):
            out = []
            for i, a in enumerate(arrays):
                if a.ndim not in (2, 3):
                    raise ImageInputError(
                        f"Image {i} of X has shape {a.shape}; expected (height, width) or "
                        f"(height, width, channels)."
                    )
                if a.dtype.kind not in "biuf":
                    raise ImageDtypeError(
                        f"Image {i} of X has dtype {a.dtype}; expected numeric pixels."
                    )
                out.append(_convert_pixels(_to_nhwc(a[np.newaxis], None, channels))[0])
            return out
    return check_images(X, channels=channels)


def _to_nhwc(
    X: np.ndarray, shape_param: tuple[int, ...] | None, channels=SUPPORTED_CHANNELS
) -> np.ndarray:
    if X.ndim == 2:
        n, d = X.shape
        if shape_param is None:
            side = math.isqrt(d)
            if side * side != d:
                raise ImageInputError(
                    f"X is 2-D with {d} values per row, which is not a square image; pass "
                    f"image_shape=(height, width) or (height, width, channels), or give X "
                    f"as (n_samples, height, width[, channels]). If X is one {n}x{d} image, "
                    f"pass it as X[None] (a batch of one)."
                )
            shape_param = (side, side)
        if math.prod(shape_param) != d:
            raise ImageInputError(
                f"image_shape={shape_param} holds {math.prod(shape_param)} values but X has "
                f"{d} values per row."
            )
        X = X.reshape((n, *shape_param))
    elif shape_param is not None and X.ndim in (3, 4):
        # image_shape reshapes flattened rows; images already in shape must agree with it
        # rather than have it ignored in silence.
        shape = X.shape[1:] if X.ndim == 4 else (*X.shape[1:], 1)
        if shape[: len(shape_param)] != shape_param[: len(shape)]:
            raise ImageInputError(
                f"image_shape={shape_param} does not match X, whose images are already "
                f"of shape {X.shape[1:]}; image_shape only reshapes 2-D X (one flattened "
                f"image per row). Leave image_shape=None, or set it to {X.shape[1:]}."
            )
    if X.ndim == 3:
        X = X[..., np.newaxis]
    if X.ndim != 4:
        raise ImageInputError(
            f"X has {X.ndim} dimensions (shape {X.shape}); expected (n_samples, height, "
            f"width) for grayscale or (n_samples, height, width, channels), channels last."
        )
    n_channels = X.shape[-1]
    if n_channels not in channels:
        hint = (
            " It looks channels-first; use np.moveaxis(X, 1, -1)." if X.shape[1] in channels else ""
        )
        hint += (
            " Drop the alpha channel with X[..., :3] or add a sklimg.preprocessing.ToRGB step."
            if n_channels == 4
            else ""
        )
        expected = " or ".join(str(c) for c in channels)
        raise ImageInputError(
            f"X has {n_channels} channels (shape {X.shape}); expected {expected} "
            f"(1 grayscale, 3 RGB), channels last.{hint}"
        )
    return X


def check_labels(y, n_samples: int, *, min_classes: int = 2) -> np.ndarray:
    """Validate classification labels for ``n_samples`` images.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels: integers, strings or any hashable values of one type.
    n_samples : int
        The number of images in ``X``.
    min_classes : int, default=2
        The fewest classes ``y`` may hold (1 for a part of the data, as in
        ``partial_fit``).

    Returns
    -------
    y : ndarray of shape (n_samples,)

    Raises
    ------
    ImageInputError
        If ``y`` is missing, not 1-D, has another length than ``X``, contains NaN,
        holds continuous values, or has fewer than ``min_classes`` classes.

    Examples
    --------
    >>> from sklimg.utils.validation import check_labels
    >>> check_labels(["cat", "dog", "cat"], n_samples=3)
    array(['cat', 'dog', 'cat'], dtype='<U3')
    >>> check_labels([1, 1, 1], n_samples=3)
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: y has a single class (1); ...
    """
    if y is None:
        raise ImageInputError("y is None; a classifier needs one label per image: fit(X, y).")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        # As scikit-learn's estimators say of it (column_or_1d).
        warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ImageInputError(
            f"y must be 1-D with one label per image; got shape {y.shape}. Multi-label "
            f"and multi-output targets are not supported."
        )
    if len(y) != n_samples:
        raise ImageInputError(
            f"X has {n_samples} images but y has {len(y)} labels; pass one label per image."
        )
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ImageInputError(
            f"y contains NaN in {int(np.isnan(y).sum())} places; remove those images or "
            f"give them a label."
        )
    if y.dtype == object:
        missing = sum(v is None or (isinstance(v, float) and v != v) for v in y)
        if missing:
            raise ImageInputError(
                f"y has {missing} missing labels (None or NaN); remove those images or give "
                f"them a label."
            )
        kinds = {"string" if isinstance(v, str) else type(v).__name__ for v in y}
        if "string" in kinds and len(kinds) > 1:
            raise ImageInputError(
                f"y mixes strings with other types ({sorted(kinds)}); use one type for the "
                f"labels, e.g. y.astype(str)."
            )
    try:
        check_classification_targets(y)
    except ValueError as exc:
        raise ImageInputError(
            f"y looks {type_of_target(y)}, not like class labels ({exc}). Pass integer or "
            f"string class labels."
        ) from exc
    classes = np.unique(y)
    if len(classes) < min_classes:
        raise ImageInputError(
            f"y has a single class ({plain(classes[0])!r}); a classifier needs at least 2 classes."
        )
    return y


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate weights per image, as ``fit(X, y, sample_weight=...)`` takes them.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), number or None
        A weight for each image; a number gives every image that weight. ``None``: all
        images weigh the same.
    n_samples : int
        The number of images in ``X``.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,), float64, or None

    Raises
    ------
    ImageInputError
        If the weights are not numbers, not 1-D, of another length than ``X``, NaN,
        infinite or negative, or all zero.

    Examples
    --------
    >>> from sklimg.utils.validation import check_sample_weight
    >>> check_sample_weight([1, 2, 0], n_samples=3)
    array([1., 2., 0.])
    >>> check_sample_weight([1, -2, 0], n_samples=3)
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: sample_weight must be non-negative; ...
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.dtype == object:  # e.g. a pandas column of Python floats
        try:
            weights = weights.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if weights.ndim == 0 and weights.dtype.kind in "iuf":  # a number: every image alike
        weights = np.full(n_samples, weights, dtype=np.float64)
    if weights.dtype == bool or weights.dtype.kind not in "iuf":
        raise ImageInputError(
            f"sample_weight must hold numbers; got dtype {weights.dtype}. Pass one float "
            f"weight per image."
        )
    weights = weights.astype(np.float64)
    if weights.ndim != 1:
        raise ImageInputError(
            f"sample_weight must be 1-D with one weight per image; got shape {weights.shape}."
        )
    if len(weights) != n_samples:
        raise ImageInputError(
            f"X has {n_samples} images but sample_weight has {len(weights)} weights; pass "
            f"one weight per image."
        )
    if not np.isfinite(weights).all():
        raise ImageInputError(
            f"sample_weight must be finite; got {int((~np.isfinite(weights)).sum())} NaN or "
            f"infinite weight(s)."
        )
    if (weights < 0).any():
        raise ImageInputError(
            f"sample_weight must be non-negative; got {int((weights < 0).sum())} negative "
            f"weight(s), the smallest {weights.min():g}. Give images you want to ignore a "
            f"weight of 0."
        )
    if not weights.any():
        raise ImageInputError(
            "sample_weight is zero for every image, which leaves nothing to learn from; "
            "give some images a positive weight."
        )
    return weights


def check_groups(groups, n_samples: int) -> np.ndarray | None:
    """Validate a group per image, as ``fit(X, y, groups=...)`` takes them.

    Parameters
    ----------
    groups : array-like of shape (n_samples,) or None
        A label of any type per image (a patient, a camera, a session): images of one
        group are kept on one side of a split.
    n_samples : int
        The number of images in ``X``.

    Returns
    -------
    groups : ndarray of shape (n_samples,) or None

    Raises
    ------
    ImageInputError
        If ``groups`` is not 1-D, of another length than ``X``, or has missing values.

    Examples
    --------
    >>> from sklimg.utils.validation import check_groups
    >>> check_groups(["a", "a", "b"], n_samples=3)
    array(['a', 'a', 'b'], dtype='<U1')
    >>> check_groups([1, 2], n_samples=3)
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: X has 3 images but groups has 2 groups; ...
    """
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ImageInputError(
            f"groups must be 1-D with one group per image; got shape {groups.shape}."
        )
    if len(groups) != n_samples:
        raise ImageInputError(
            f"X has {n_samples} images but groups has {len(groups)} groups; pass one group "
            f"per image."
        )
    missing = (
        np.isnan(groups).sum()
        if groups.dtype.kind == "f"
        else sum(g is None or (isinstance(g, float) and g != g) for g in groups)
        if groups.dtype == object
        else 0
    )
    if missing:
        raise ImageInputError(
            f"groups has {int(missing)} missing values (None or NaN); give every image a group."
        )
    return groups


def check_same_shape(images: np.ndarray, fitted_shape: tuple[int, ...], owner: str) -> None:
    """Raise when images at predict time differ in size or channels from those at fit.

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C)
        The images to predict (or a sample of them).
    fitted_shape : tuple of int
        ``(H, W, C)`` seen at fit (``input_shape_``).
    owner : str
        The estimator's class name, for the message.

    Raises
    ------
    ImageInputError
        Saying whether the size or the channels differ, and which step fixes it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.utils.validation import check_same_shape
    >>> check_same_shape(np.zeros((2, 8, 8, 1)), (8, 8, 1), "ImageClassifier")
    >>> check_same_shape(np.zeros((2, 16, 16, 1)), (8, 8, 1), "ImageClassifier")
    Traceback (most recent call last):
    ...
    sklimg.exceptions.ImageInputError: ImageClassifier was fitted on images of ... (8, 8) ...
    """
    shape = tuple(images.shape[1:])
    if shape == tuple(fitted_shape):
        return
    if shape[-1] != fitted_shape[-1]:
        raise ImageInputError(
            f"{owner} was fitted on images with {fitted_shape[-1]} channel(s) but X has "
            f"{shape[-1]}. Convert them the same way as at fit (e.g. with "
            f"sklimg.preprocessing.ToRGB or Grayscale in the pipeline)."
        )
    raise ImageInputError(
        f"{owner} was fitted on images of height x width {fitted_shape[:2]} but X has "
        f"{shape[:2]}. Resize them the same way as at fit, e.g. with a "
        f"sklimg.preprocessing.Resize step in a Pipeline before the classifier."
    )


def pixel_range(images: np.ndarray) -> tuple[float, float]:
    """Lowest and highest pixel value, ``uint8`` counted in [0, 1] as the networks see it.

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C)
        Validated images (``uint8`` or ``float32``, see :func:`check_images`).

    Returns
    -------
    low, high : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.utils.validation import pixel_range
    >>> pixel_range(np.array([[[[0], [255]]]], dtype=np.uint8))
    (0.0, 1.0)
    """
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return float(images.min()) / scale, float(images.max()) / scale


def check_same_range(images: np.ndarray, fitted_range: tuple[float, float], owner: str) -> None:
    """Warn when images at predict time are on another pixel scale than those at fit.

    A model fitted on ``uint8`` images (0-255, seen as [0, 1]) and given the same pixels
    as ``int64`` or ``float`` 0-255 sees values 255 times larger, and predicts nonsense
    without any error; the reverse happens too.

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C)
        The images to predict (or a sample of them).
    fitted_range : tuple of float
        ``pixel_range`` of the training images.
    owner : str
        The estimator's class name, for the message.

    Warns
    -----
    PixelRangeWarning
        If the training images lay in [0, 1] (within 0.5) and these exceed 2, or the
        training images were non-negative up to 100 or more (0-255 floats) and these
        lie in [0, 1.5] with fractional values (a dark 0-255 image has whole ones) or
        are ``uint8`` (read as [0, 1]). Other scales (e.g. normalised images) are not judged.
    """
    low, high = pixel_range(images)
    fitted_low, fitted_high = fitted_range
    unit_at_fit = fitted_low >= -0.5 and fitted_high <= 1.5
    bytes_at_fit = fitted_low >= 0 and fitted_high >= 100
    # uint8 images are always read as [0, 1]: after a fit on 0-255 floats or ints they
    # are 255 times too dark whatever their content, so they are judged by dtype alone.
    if (
        (unit_at_fit and high > 2)
        or (bytes_at_fit and images.dtype == np.uint8)
        or (
            bytes_at_fit and low >= 0 and 0 < high <= 1.5 and not np.all(images == np.round(images))
        )
    ):
        warn(
            f"{owner} was fitted on pixels in [{fitted_range[0]:.3g}, {fitted_high:.3g}] "
            f"(uint8 counts as [0, 1]) but these images range over [{low:.3g}, {high:.3g}]: "
            f"the predictions will be meaningless. Give the images as at fit, e.g. uint8 "
            f"0-255 pixels, or floats scaled the same way.",
            PixelRangeWarning,
        )
