"""LoadImages: the first step of a pipeline that takes image files."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from sklimg._lazy import LazyImages
from sklimg.preprocessing._base import _ImageToImageMixin, _stack_if_same_shape
from sklimg.utils._sklearn_compat import _fit_context
from sklimg.utils.validation import as_images

__all__ = ["LoadImages"]

# As ImageTransformer: RGBA passes through, for a ToRGB step to handle.
_ACCEPTED_CHANNELS = (1, 3, 4)


class LoadImages(_ImageToImageMixin, TransformerMixin, BaseEstimator):
    """Turn image file paths into images, lazily by default.

    Every file's header is checked first, and all bad files (missing, not an image,
    too large) are reported in one error, before any work starts. Files are decoded
    by :func:`sklimg.io.read_image`: right way up, 1 or 3 channels, transparency on
    white. Among files of both kinds, grayscale ones are promoted to RGB (as
    torchvision's ``ImageFolder`` converts every file to RGB), so a photo collection
    with a few grayscale pictures loads as one colour dataset.

    Parameters
    ----------
    lazy : bool, default=True
        ``True``: return :class:`LazyImages`, which decodes each file only when it is
        read (the steps after this one add their operations to it, and the classifier
        decodes batch by batch), so memory does not grow with the number of files.
        ``False``: decode every file now and return an array ``(n, H, W, C)``, or a
        list of ``(H, W, C)`` arrays when the images differ in size.

    See Also
    --------
    sklimg.io.read_image : Decode one file.

    Notes
    -----
    Images that are already in memory (an array, or a list of arrays) pass through
    unchanged, after validation, so one pipeline takes both files and arrays.
    ``LazyImages`` pass through unchanged with ``lazy=True`` and are decoded with
    ``lazy=False``. ``set_output`` is accepted and changes nothing (images stay
    arrays); ``get_feature_names_out`` passes names through.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from sklimg.preprocessing import LoadImages
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
    >>> for path in paths:
    ...     Image.new("RGB", (6, 4)).save(path)
    >>> LoadImages().fit_transform(paths)
    LazyImages(3 files)
    >>> LoadImages(lazy=False).fit_transform(paths).shape
    (3, 4, 6, 3)
    """

    _parameter_constraints: dict = {"lazy": ["boolean"]}

    def __init__(self, lazy=True):
        self.lazy = lazy

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the files' headers, or validate images already in memory.

        Parameters
        ----------
        X : sequence of str or path-like, LazyImages, array-like or list of arrays
            Image files, or images.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The step itself; it learns nothing.
        """
        self._load(X, decode=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Load the images; the same as ``fit(X).transform(X)``, checking files once.

        Parameters
        ----------
        X : sequence of str or path-like, LazyImages, array-like or list of arrays
            Image files, or images.
        y : None
            Ignored.

        Returns
        -------
        X_new : LazyImages, ndarray of shape (n_samples, H, W, C) or list of ndarray
            See :meth:`transform`.
        """
        return self._load(X, decode=not self.lazy)

    def transform(self, X):
        """Load the images.

        Parameters
        ----------
        X : sequence of str or path-like, LazyImages, array-like or list of arrays
            Image files, or images.

        Returns
        -------
        X_new : LazyImages, ndarray of shape (n_samples, H, W, C) or list of ndarray
            ``LazyImages`` with ``lazy=True``; decoded images with ``lazy=False``;
            images in memory unchanged.

        Raises
        ------
        ImageInputError
            Listing every file that is missing, not an image or too large; or
            describing what is wrong with images in memory.
        """
        self._validate_params()
        return self._load(X, decode=not self.lazy)

    def _load(self, X, *, decode: bool):
        images = as_images(X, channels=_ACCEPTED_CHANNELS, ragged=True)
        if not isinstance(images, LazyImages):
            return X
        X = images
        return _stack_if_same_shape(list(X)) if decode else X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = False
        return tags
