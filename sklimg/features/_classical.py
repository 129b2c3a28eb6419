"""Classical image features: HOG, LBP, colour histograms and raw pixels.

Each transformer maps images to a 2-D feature matrix, one fixed-length row per image,
for any scikit-learn model: ``make_pipeline(HOG(), SVC())``. They share one base that
validates the input (arrays, lists of arrays, file paths, :class:`LazyImages`), checks
that every image gives the same number of features, and runs the per-image work in
chunks, in parallel with joblib when ``n_jobs`` asks for it.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklimg._lazy import LazyImages
from sklimg._pixels import unit_float
from sklimg.exceptions import ImageInputError
from sklimg.utils._sklearn_compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    _fit_context,
)
from sklimg.utils.validation import as_images, check_images

__all__ = ["HOG", "LBP", "ColorHistogram", "PixelFeatures"]

# Pixel values per chunk of work: bounds the temporary arrays of the vectorised code
# (HOG keeps about ten float64 copies of a chunk) whatever the image size.
_CHUNK_PIXELS = 2**21
_MAX_CHUNK_IMAGES = 1024
# Float pixels a little outside [0, 1] come from interpolating resizes; clip those, but
# reject images that are clearly on another scale (0-255 floats, standardised values).
_RANGE_TOLERANCE = 1e-3

_CHANNEL_NAMES = {1: ("gray",), 3: ("red", "green", "blue")}


def _pair(value, name: str, owner: str) -> tuple[int, int]:
    """An int or a pair of positive ints (rows, columns)."""
    pair = (value, value) if isinstance(value, Integral) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in pair
    ):
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be a positive int or a pair "
            f"(rows, columns) of positive ints. Got {value!r} instead."
        )
    return int(pair[0]), int(pair[1])


def _unit_range(images: np.ndarray, owner: str) -> np.ndarray:
    """Float32 images in [0, 1] for features on an absolute intensity scale."""
    images = unit_float(images)
    low, high = float(images.min()), float(images.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise ImageInputError(
            f"{owner} needs pixel values in [0, 1] (or uint8 images); got values from "
            f"{low:.4g} to {high:.4g}. Scale them first, e.g. X / 255 for floats in 0-255, "
            f"and put {owner} before any normalisation step."
        )
    return np.clip(images, 0, 1)


def _describe(images, index: int, start: int = 0) -> str:
    """Name image ``index`` of a chunk of ``X`` starting at ``start``, for errors."""
    where = f"image {start + index} of X"
    if isinstance(images, LazyImages) and images.are_paths:
        where += f" ({images.source[index]!r})"
    return where


def _chunk_slices(n_images: int, pixels_per_image: int, n_jobs: int) -> list[slice]:
    """Chunks small enough to bound memory, and at least one per job."""
    size = min(
        _MAX_CHUNK_IMAGES,
        _CHUNK_PIXELS // max(1, pixels_per_image),
        math.ceil(n_images / n_jobs),
    )
    size = max(1, size)
    return [slice(start, min(start + size, n_images)) for start in range(0, n_images, size)]


class _ImageFeatures(TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Base of the feature transformers: validation, fixed length, chunked parallel loop.

    Subclasses implement :meth:`_n_features` (the feature length for an image shape,
    raising when the shape cannot be used), :meth:`_features` (a validated batch
    ``(m, H, W, C)`` to ``(m, n_features)``) and :meth:`_feature_names`.
    """

    _parameter_constraints: dict = {"n_jobs": [Integral, None]}

    #: Whether the number of features depends on the image size (not only channels).
    _size_dependent = True

    def _resolve_params(self) -> None:
        """Check what the declared constraints cannot express (pairs of ints) and keep
        the resolved values for transform."""

    @abstractmethod
    def _n_features(self, shape: tuple[int, int, int], where: str) -> int:
        """Feature length for images of ``shape`` ``(H, W, C)``; raise if unusable."""

    @abstractmethod
    def _features(self, images: np.ndarray) -> np.ndarray:
        """Features ``(m, n_features)`` of a validated batch ``(m, H, W, C)``."""

    @abstractmethod
    def _feature_names(self) -> list[str]:
        """Names of the output features, in order."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters and images, and record the number of output features.

        Nothing is learnt from the pixel values; fit fixes the feature length that
        :meth:`transform` must reproduce for every image.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths or LazyImages
            Images, channels last. For file paths and ``LazyImages`` only the first
            image is decoded (every file's header is checked).
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.

        Raises
        ------
        ImageInputError
            If the images are invalid, too small for the parameters, or would give
            features of different lengths (e.g. images of different sizes; for files
            and ``LazyImages``, only the first is decoded at fit, so a size that
            differs is found by ``transform``).
        """
        self._resolve_params()
        images = as_images(X, ragged=True)
        first = images[0]
        if isinstance(images, LazyImages):
            first = check_images(first[np.newaxis])[0]
        self.input_shape_ = tuple(int(s) for s in first.shape)
        self.n_features_out_ = self._n_features(self.input_shape_, _describe(images, 0))
        if isinstance(images, list):
            for i, image in enumerate(images):
                self._check_shape(image.shape, _describe(images, i))
        return self

    def transform(self, X) -> np.ndarray:
        """Compute the features of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths or LazyImages
            Images, channels last. Files and ``LazyImages`` are decoded one chunk at
            a time, so memory does not grow with the number of images.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), float32

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.
        ImageInputError
            If an image is invalid or gives another number of features than at fit.
        """
        check_is_fitted(self)
        images = as_images(X, ragged=True)
        n_jobs = effective_n_jobs(self.n_jobs)
        slices = _chunk_slices(len(images), math.prod(self.input_shape_), n_jobs)
        if isinstance(images, np.ndarray):
            self._check_shape(images.shape[1:], "X")
            # A chunk of an array is one validated batch: vectorised features.
            tasks = (delayed(self._features)(images[s]) for s in slices)
        else:
            tasks = (delayed(self._features_one_by_one)(images[s], s.start) for s in slices)
        # Threads: the heavy numpy and scikit-image loops release the GIL, and worker
        # processes would each spend seconds importing torch with sklimg.
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(tasks)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _features_one_by_one(self, images, start: int) -> np.ndarray:
        """Features of images that may differ in size, or are decoded on access;
        ``images`` is the chunk of ``X`` that starts at index ``start``."""
        out = np.empty((len(images), self.n_features_out_), dtype=np.float32)
        for i in range(len(images)):
            image = images[i]
            if isinstance(images, LazyImages):
                image = check_images(np.asarray(image)[np.newaxis])[0]
            self._check_shape(image.shape, _describe(images, i, start))
            out[i] = self._features(image[np.newaxis])[0]
        return out

    def _check_shape(self, shape, where: str) -> None:
        shape = tuple(int(s) for s in shape)
        n_features = self._n_features(shape, where)
        if n_features == self.n_features_out_:
            return
        name = type(self).__name__
        message = (
            f"{name} was fitted on images of shape {self.input_shape_} (height, width, "
            f"channels), which give {self.n_features_out_} features each; {where} has "
            f"shape {shape}, which would give {n_features}. Features must have one fixed "
            f"length"
        )
        if self._size_dependent and shape[:2] != self.input_shape_[:2]:
            size = self.input_shape_[:2]
            message += (
                f": resize every image to one size first, e.g. make_pipeline("
                f"sklimg.preprocessing.Resize({size}), {name}(), SVC())."
            )
        else:
            message += (
                f": give every image {self.input_shape_[2]} channel(s), e.g. with "
                f"sklimg.preprocessing.ToRGB or Grayscale before {name}."
            )
        raise ImageInputError(message)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output features.

        Parameters
        ----------
        input_features : None
            Ignored: images have no input feature names. Present for the scikit-learn
            API (``Pipeline`` and ``FeatureUnion`` pass it on).

        Returns
        -------
        feature_names_out : ndarray of str objects, shape (n_features_out,)
        """
        check_is_fitted(self)
        return np.asarray(self._feature_names(), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# ------------------------------------------------------------------------------ HOG
def _hog_orientation_edges(orientations: int) -> np.ndarray:
    # skimage's Cython histogram compares float64 angles with bin edges held as C
    # floats; rounding the edges the same way puts every pixel in the same bin.
    k = np.arange(orientations + 1)
    return np.array([np.float32(180.0 / orientations * i) for i in k], dtype=np.float64)


def _hog_normalize(blocks: np.ndarray, method: str, eps: float = 1e-5) -> np.ndarray:
    """skimage's ``_hog_normalize_block`` applied to each row of ``blocks``."""
    if method == "L1":
        return blocks / (np.abs(blocks).sum(axis=-1, keepdims=True) + eps)
    if method == "L1-sqrt":
        return np.sqrt(blocks / (np.abs(blocks).sum(axis=-1, keepdims=True) + eps))
    out = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + eps**2)
    if method == "L2-Hys":
        out = np.minimum(out, 0.2)
        out = out / np.sqrt((out**2).sum(axis=-1, keepdims=True) + eps**2)
    return out


def _hog_batch(
    images: np.ndarray,
    orientations: int,
    pixels_per_cell: tuple[int, int],
    cells_per_block: tuple[int, int],
    block_norm: str,
) -> np.ndarray:
    """``skimage.feature.hog`` of each image of a float batch ``(m, H, W, C)``, at once.

    The same computation as scikit-image 0.26 (gradients, dominant channel, hard
    orientation binning, block normalisation, feature order), vectorised over the
    batch instead of looping over images and blocks in Python: about six times faster
    on 28x28 images. ``tests/test_features.py`` checks it against skimage.
    """
    m, height, width, _ = images.shape
    g_row = np.zeros_like(images)
    g_row[:, 1:-1] = images[:, 2:] - images[:, :-2]
    g_col = np.zeros_like(images)
    g_col[:, :, 1:-1] = images[:, :, 2:] - images[:, :, :-2]
    if images.shape[-1] > 1:
        # Each pixel takes the gradient of the channel where it is strongest.
        best = np.hypot(g_row, g_col).argmax(axis=-1)[..., np.newaxis]
        g_row = np.take_along_axis(g_row, best, axis=-1)
        g_col = np.take_along_axis(g_col, best, axis=-1)
    g_row = g_row[..., 0].astype(np.float64)
    g_col = g_col[..., 0].astype(np.float64)

    c_row, c_col = pixels_per_cell
    n_cells_row, n_cells_col = height // c_row, width // c_col
    g_row = g_row[:, : n_cells_row * c_row, : n_cells_col * c_col]
    g_col = g_col[:, : n_cells_row * c_row, : n_cells_col * c_col]
    magnitude = np.hypot(g_col, g_row)
    orientation = np.arctan2(g_row, g_col) * (180 / np.pi) % 180
    bins = np.searchsorted(_hog_orientation_edges(orientations), orientation, side="right") - 1

    # Angles at or past the float32-rounded last edge fall in no bin, as in skimage.
    weights = np.where(bins < orientations, magnitude, 0.0)
    rows = np.arange(n_cells_row * c_row) // c_row
    cols = np.arange(n_cells_col * c_col) // c_col
    cell = rows[:, None] * n_cells_col + cols[None, :]
    index = (np.arange(m)[:, None, None] * (n_cells_row * n_cells_col) + cell) * orientations
    index = index + np.minimum(bins, orientations - 1)
    hist = np.bincount(
        index.ravel(),
        weights=weights.ravel(),
        minlength=m * n_cells_row * n_cells_col * orientations,
    ).reshape(m, n_cells_row, n_cells_col, orientations) / (c_row * c_col)

    b_row, b_col = cells_per_block
    blocks = sliding_window_view(hist, (b_row, b_col), axis=(1, 2))
    # (m, blocks_row, blocks_col, orientations, b_row, b_col) -> skimage's feature order,
    # one row per block.
    blocks = blocks.transpose(0, 1, 2, 4, 5, 3).reshape(m, -1, b_row * b_col * orientations)
    return _hog_normalize(blocks, block_norm).reshape(m, -1).astype(np.float32)


class HOG(_ImageFeatures):
    """Histograms of oriented gradients (Dalal and Triggs), one vector per image.

    Computes exactly what :func:`skimage.feature.hog` computes for each image, with
    the loop over images and blocks vectorised. Gradients are taken on the pixels
    as given (``uint8`` scaled to [0, 1]); for RGB images each pixel uses the channel
    with the strongest gradient (skimage's ``channel_axis=-1``, as in Dalal and
    Triggs), which keeps colour edges that a grayscale conversion would lose.

    Parameters
    ----------
    orientations : int, default=9
        Number of orientation bins over 0-180 degrees.
    pixels_per_cell : int or tuple of (int, int), default=(8, 8)
        Cell size in pixels (rows, columns).
    cells_per_block : int or tuple of (int, int), default=(2, 2)
        Cells per normalisation block. Images need at least
        ``pixels_per_cell * cells_per_block`` pixels per side.
    block_norm : {"L2-Hys", "L2", "L1", "L1-sqrt"}, default="L2-Hys"
        Block normalisation, as in :func:`skimage.feature.hog`.
    n_jobs : int, default=None
        Threads computing chunks of images in parallel (joblib). ``None`` means 1
        unless in a :func:`joblib.parallel_backend` context; ``-1`` uses all cores.

    Attributes
    ----------
    input_shape_ : tuple of int
        ``(height, width, channels)`` of the (first) image seen at fit.
    n_features_out_ : int
        Length of each feature vector:
        ``blocks_row * blocks_col * cells_per_block[0] * cells_per_block[1] * orientations``.

    See Also
    --------
    skimage.feature.hog : The per-image function this reproduces.
    LBP : Texture features.

    Notes
    -----
    Every image must have the size seen at fit, since the feature length depends on
    it; put a resizing step first for images of varying sizes. Small images
    (such as the 8x8 digits) give better HOG features after upsampling, e.g. to 32x32.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.features import HOG
    >>> X = np.random.default_rng(0).random((10, 32, 32, 3))
    >>> HOG().fit_transform(X).shape
    (10, 324)
    >>> HOG(pixels_per_cell=4, cells_per_block=2, orientations=8).fit(X).n_features_out_
    1568
    """

    _parameter_constraints: dict = {
        **_ImageFeatures._parameter_constraints,
        "orientations": [Interval(Integral, 1, None, closed="left")],
        "pixels_per_cell": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cells_per_block": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "block_norm": [StrOptions({"L1", "L1-sqrt", "L2", "L2-Hys"})],
    }

    def __init__(
        self,
        orientations: int = 9,
        *,
        pixels_per_cell=(8, 8),
        cells_per_block=(2, 2),
        block_norm: str = "L2-Hys",
        n_jobs: int | None = None,
    ) -> None:
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.n_jobs = n_jobs

    def _resolve_params(self) -> None:
        self._cell = _pair(self.pixels_per_cell, "pixels_per_cell", "HOG")
        self._block = _pair(self.cells_per_block, "cells_per_block", "HOG")

    def _n_blocks(self, shape) -> tuple[int, int]:
        """Blocks (rows, columns) that fit in images of ``shape``."""
        return (
            shape[0] // self._cell[0] - self._block[0] + 1,
            shape[1] // self._cell[1] - self._block[1] + 1,
        )

    def _n_features(self, shape, where: str) -> int:
        blocks_row, blocks_col = self._n_blocks(shape)
        if blocks_row < 1 or blocks_col < 1:
            need = (self._cell[0] * self._block[0], self._cell[1] * self._block[1])
            raise ImageInputError(
                f"HOG(pixels_per_cell={self.pixels_per_cell}, cells_per_block="
                f"{self.cells_per_block}) needs images of at least {need[0]}x{need[1]} "
                f"pixels; {where} is {shape[0]}x{shape[1]}. Use smaller cells or "
                f"blocks, or upsample the images first (e.g. with "
                f"sklimg.preprocessing.Resize)."
            )
        return blocks_row * blocks_col * self._block[0] * self._block[1] * self.orientations

    def _features(self, images: np.ndarray) -> np.ndarray:
        return _hog_batch(
            unit_float(images), self.orientations, self._cell, self._block, self.block_norm
        )

    def _feature_names(self) -> list[str]:
        blocks_row, blocks_col = self._n_blocks(self.input_shape_)
        return [
            f"hog_block{r}_{c}_cell{i}_{j}_o{o}"
            for r in range(blocks_row)
            for c in range(blocks_col)
            for i in range(self._block[0])
            for j in range(self._block[1])
            for o in range(self.orientations)
        ]


# ------------------------------------------------------------------------------ LBP
def _lbp_n_codes(P: int, method: str) -> int:
    return {"default": 2**P, "ror": 2**P, "uniform": P + 2, "nri_uniform": P * (P - 1) + 3}[method]


class LBP(_ImageFeatures):
    """Local binary patterns: normalised histograms of texture codes, per grid cell.

    Each pixel gets a code from comparing it with ``P`` neighbours on a circle of
    radius ``R`` (:func:`skimage.feature.local_binary_pattern`, on the grayscale
    image quantised to 256 levels, as the codes are meant for integer images). The
    codes are counted over the whole image, or over each cell of a ``grid`` so that
    the spatial layout is kept; each histogram sums to 1 and they are concatenated.

    Parameters
    ----------
    P : int, default=8
        Number of neighbours.
    R : float, default=1.0
        Radius of the circle of neighbours, in pixels.
    method : {"uniform", "nri_uniform", "ror", "default"}, default="uniform"
        Code type (see skimage). ``"uniform"`` gives ``P + 2`` codes, rotation
        invariant; ``"nri_uniform"`` ``P * (P - 1) + 3``; ``"ror"`` and
        ``"default"`` ``2 ** P``.
    grid : int or tuple of (int, int), default=(1, 1)
        Cells (rows, columns) the image is split into, each with its own histogram;
        cells are as equal as the image size allows.
    n_jobs : int, default=None
        Threads computing chunks of images in parallel (joblib).

    Attributes
    ----------
    input_shape_ : tuple of int
        ``(height, width, channels)`` of the (first) image seen at fit.
    n_features_out_ : int
        ``grid[0] * grid[1] * n_codes``.

    See Also
    --------
    skimage.feature.local_binary_pattern : The per-image codes.

    Notes
    -----
    RGB images are converted to grayscale (:func:`skimage.color.rgb2gray`). Float
    pixels must lie in [0, 1]. The feature length does not depend on the image
    size, so images of different sizes work (each at least as large as the grid).

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.features import LBP
    >>> X = np.random.default_rng(0).random((10, 28, 28))
    >>> features = LBP(grid=(2, 2)).fit_transform(X)
    >>> features.shape, float(features[0, :10].sum())
    ((10, 40), 1.0)
    """

    _parameter_constraints: dict = {
        **_ImageFeatures._parameter_constraints,
        "P": [Interval(Integral, 1, None, closed="left")],
        "R": [Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions({"default", "ror", "uniform", "nri_uniform"})],
        "grid": [Interval(Integral, 1, None, closed="left"), "array-like"],
    }
    _size_dependent = False

    def __init__(
        self,
        P: int = 8,
        R: float = 1.0,
        *,
        method: str = "uniform",
        grid=(1, 1),
        n_jobs: int | None = None,
    ) -> None:
        self.P = P
        self.R = R
        self.method = method
        self.grid = grid
        self.n_jobs = n_jobs

    def _resolve_params(self) -> None:
        self._cells = _pair(self.grid, "grid", "LBP")

    def _n_features(self, shape, where: str) -> int:
        if shape[0] < self._cells[0] or shape[1] < self._cells[1]:
            raise ImageInputError(
                f"LBP(grid={self.grid}) splits each image into {self._cells[0]}x"
                f"{self._cells[1]} cells, but {where} is only {shape[0]}x{shape[1]} "
                f"pixels. Use a coarser grid."
            )
        return self._cells[0] * self._cells[1] * _lbp_n_codes(self.P, self.method)

    def _features(self, images: np.ndarray) -> np.ndarray:
        from skimage.color import rgb2gray
        from skimage.feature import local_binary_pattern

        images = _unit_range(images, "LBP")
        gray = rgb2gray(images, channel_axis=-1) if images.shape[-1] == 3 else images[..., 0]
        gray = np.round(gray * 255).astype(np.uint8)
        m, height, width = gray.shape
        n_codes = _lbp_n_codes(self.P, self.method)
        cells_row, cells_col = self._cells
        # The grid cell of each pixel, cells as equal as the size allows.
        cell = ((np.arange(height) * cells_row) // height)[:, None] * cells_col + (
            (np.arange(width) * cells_col) // width
        )[None, :]
        n_cells = cells_row * cells_col
        cell_pixels = np.bincount(cell.ravel(), minlength=n_cells)
        out = np.empty((m, n_cells, n_codes), dtype=np.float32)
        for i in range(m):
            codes = local_binary_pattern(gray[i], self.P, self.R, self.method).astype(np.intp)
            counts = np.bincount((cell * n_codes + codes).ravel(), minlength=n_cells * n_codes)
            out[i] = counts.reshape(-1, n_codes) / cell_pixels[:, None]
        return out.reshape(m, -1)

    def _feature_names(self) -> list[str]:
        n_codes = _lbp_n_codes(self.P, self.method)
        return [
            f"lbp_cell{r}_{c}_code{k}"
            for r in range(self._cells[0])
            for c in range(self._cells[1])
            for k in range(n_codes)
        ]


# ---------------------------------------------------------------- colour histogram
class ColorHistogram(_ImageFeatures):
    """Per-channel intensity histograms, each normalised to sum to 1.

    The range [0, 1] (0-255 for ``uint8``) of each channel is split into ``bins``
    equal bins; the histograms of the channels are concatenated (a single one for
    grayscale images; red, green, then blue for RGB). The layout of the image is
    ignored: pair it with :class:`HOG` or :class:`LBP` in a ``make_union`` for shape
    and texture.

    Parameters
    ----------
    bins : int, default=16
        Bins per channel.
    n_jobs : int, default=None
        Threads computing chunks of images in parallel (joblib).

    Attributes
    ----------
    input_shape_ : tuple of int
        ``(height, width, channels)`` of the (first) image seen at fit.
    n_features_out_ : int
        ``bins * channels``.

    Notes
    -----
    Float pixels must lie in [0, 1]. The feature length depends only on the number
    of channels, so images of different sizes work.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.features import ColorHistogram
    >>> X = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    >>> X[1] = 255
    >>> ColorHistogram(bins=2).fit_transform(X)
    array([[1., 0., 1., 0., 1., 0.],
           [0., 1., 0., 1., 0., 1.]], dtype=float32)
    """

    _parameter_constraints: dict = {
        **_ImageFeatures._parameter_constraints,
        "bins": [Interval(Integral, 1, None, closed="left")],
    }
    _size_dependent = False

    def __init__(self, bins: int = 16, *, n_jobs: int | None = None) -> None:
        self.bins = bins
        self.n_jobs = n_jobs

    def _n_features(self, shape, where: str) -> int:
        return self.bins * shape[2]

    def _features(self, images: np.ndarray) -> np.ndarray:
        images = _unit_range(images, "ColorHistogram")
        m, height, width, channels = images.shape
        bins = np.minimum((images * self.bins).astype(np.intp), self.bins - 1)
        # One bincount for the whole batch: bin b of channel c of image i at index
        # (i * channels + c) * bins + b.
        offsets = (np.arange(m)[:, None] * channels + np.arange(channels)) * self.bins
        index = bins + offsets[:, None, None, :]
        counts = np.bincount(index.ravel(), minlength=m * channels * self.bins)
        return (counts.reshape(m, -1) / (height * width)).astype(np.float32)

    def _feature_names(self) -> list[str]:
        channels = _CHANNEL_NAMES[self.input_shape_[2]]
        return [f"colorhistogram_{c}_bin{b}" for c in channels for b in range(self.bins)]


# --------------------------------------------------------------------------- pixels
class PixelFeatures(_ImageFeatures):
    """The pixels themselves, flattened, with ``uint8`` images scaled to [0, 1].

    The simplest baseline, and a useful part of a ``make_union``. Features follow
    the image in row-major order, channels last: ``(row, column, channel)``.

    Parameters
    ----------
    n_jobs : int, default=None
        Threads decoding file paths and ``LazyImages`` in parallel (arrays are
        reshaped directly).

    Attributes
    ----------
    input_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen at fit.
    n_features_out_ : int
        ``height * width * channels``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.features import PixelFeatures
    >>> X = np.full((3, 2, 2), 255, dtype=np.uint8)
    >>> PixelFeatures().fit_transform(X)
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]], dtype=float32)
    """

    def __init__(self, *, n_jobs: int | None = None) -> None:
        self.n_jobs = n_jobs

    def _n_features(self, shape, where: str) -> int:
        return math.prod(shape)

    def _features(self, images: np.ndarray) -> np.ndarray:
        return unit_float(images).reshape(len(images), -1)

    def _feature_names(self) -> list[str]:
        height, width, channels = self.input_shape_
        names = _CHANNEL_NAMES[channels]
        return [
            f"pixel_r{r}_c{c}_{ch}" for r in range(height) for c in range(width) for ch in names
        ]
