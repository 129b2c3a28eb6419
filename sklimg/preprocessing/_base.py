"""The base of per-image transformers: eager on arrays, lazy on files and LazyImages."""

from __future__ import annotations

import copy
from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from sklimg._lazy import LazyImages
from sklimg.utils.validation import as_images

__all__ = ["ImageTransformer"]

_OUTPUT_CONTAINERS = ("default", "pandas", "polars")


class _ImageToImageMixin:
    """The scikit-learn output API of steps that map images to images.

    A ``Pipeline`` calls ``set_output`` and ``get_feature_names_out`` on every step. An
    image step has no feature columns: it accepts the calls, keeps its output an image
    array (or a list, or ``LazyImages``), and passes feature names through, so that the
    feature extractor after it names the columns. scikit-learn's automatic wrapping of
    ``transform`` output in a DataFrame is turned off for these classes and their
    subclasses (``auto_wrap_output_keys=None``): even with
    ``sklearn.set_config(transform_output="pandas")``, images stay arrays.
    """

    def __init_subclass__(cls, auto_wrap_output_keys=None, **kwargs):
        super().__init_subclass__(auto_wrap_output_keys=auto_wrap_output_keys, **kwargs)

    def set_output(self, *, transform=None):
        """Accept a ``Pipeline``'s output configuration; images stay arrays.

        ``Pipeline.set_output(transform="pandas")`` configures every step. A DataFrame
        cannot hold images, so this step's output is unchanged whatever ``transform``
        is: an array of shape ``(n_samples, H, W, C)``, a list of arrays or
        ``LazyImages``. The feature extractor and the steps after it (e.g.
        ``HOG``, ``StandardScaler``) give DataFrames.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            The output container asked for; accepted and ignored.

        Returns
        -------
        self : object
            The step itself, unchanged.

        Raises
        ------
        ValueError
            If ``transform`` is not one of the values above.
        """
        if transform is not None and transform not in _OUTPUT_CONTAINERS:
            raise ValueError(
                f"{type(self).__name__}.set_output got transform={transform!r}; expected "
                f"one of {_OUTPUT_CONTAINERS} or None. (Images stay arrays whatever it is.)"
            )
        return self

    def get_feature_names_out(self, input_features=None):
        """Pass feature names through: an image step creates no named features.

        ``Pipeline.get_feature_names_out`` asks every step in turn; the names come
        from the feature extractor after this step (e.g. ``PixelFeatures``).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names from the steps before; returned unchanged.

        Returns
        -------
        feature_names_out : array-like of str or None
            ``input_features`` itself.
        """
        return input_features


class _Op:
    """A fitted transformer's per-image function, frozen (copied) and picklable."""

    def __init__(self, transformer: ImageTransformer) -> None:
        self.transformer = copy.deepcopy(transformer)
        self.random = getattr(self.transformer, "_random_op", False)
        self.keeps_shape = getattr(self.transformer, "_keeps_shape", False)
        self.__name__ = type(transformer).__name__

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.transformer._transform_one(image)


class ImageTransformer(_ImageToImageMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of transformers that map each image to a new image.

    Subclasses implement ``_transform_one(image) -> image`` on one ``(H, W, C)`` array,
    and may override ``_transform_array`` with a vectorised version for a stacked
    ``(n, H, W, C)`` batch. ``transform`` then works on:

    - arrays ``(n, H, W[, C])`` and lists of arrays (possibly of different sizes):
      eagerly, returning an array when the results share a shape, else a list;
    - file paths and :class:`LazyImages`: lazily, returning ``LazyImages`` with the
      operation appended, so nothing is decoded until the classifier reads a batch.

    Subclasses with parameters declare them in ``_parameter_constraints``, as
    scikit-learn's estimators do; ``fit`` validates them.

    In a ``Pipeline``, ``set_output(transform="pandas")`` is accepted (images stay
    arrays; the feature extractor after the step gives the DataFrame) and
    ``get_feature_names_out`` passes the names of the steps before it through.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import ImageTransformer
    >>> class Invert(ImageTransformer):
    ...     def _transform_one(self, image):
    ...         return 1.0 - image
    >>> Invert().fit_transform(np.zeros((2, 4, 4), dtype=np.float32)).max()
    np.float32(1.0)
    >>> [image.shape for image in Invert().fit_transform([np.zeros((4, 4)), np.zeros((6, 5, 3))])]
    [(4, 4, 1), (6, 5, 3)]
    """

    #: Channel counts accepted on input (RGBA allowed: ToRGB turns it into RGB).
    _accepted_channels = (1, 3, 4)
    #: No parameters unless a subclass declares them.
    _parameter_constraints: dict = {}
    #: Whether every output image has its input's shape (then the classifier can
    #: check the shapes of files from their headers, through this step).
    _keeps_shape = False

    def fit(self, X, y=None):
        """Validate the parameters; stateless transformers learn nothing.

        Parameters
        ----------
        X : array-like of images, list of arrays, file paths or LazyImages
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        return self

    def transform(self, X):
        """Transform each image.

        Parameters
        ----------
        X : array-like of shape (n, H, W[, C]), list of arrays, file paths or LazyImages

        Returns
        -------
        X_new : ndarray, list of arrays, or LazyImages
            Same kind as the input: lazy inputs stay lazy.
        """
        self._check_fitted()
        images = as_images(X, channels=self._accepted_channels, ragged=True)
        if isinstance(images, LazyImages):
            return images.with_op(_Op(self))
        if isinstance(images, np.ndarray):
            return self._transform_array(images)
        return _stack_if_same_shape([self._transform_one(image) for image in images])

    def _check_fitted(self) -> None:
        """Stateless transformers need no fit; stateful ones override this."""

    def _transform_array(self, images: np.ndarray):
        return _stack_if_same_shape([self._transform_one(image) for image in images])

    @abstractmethod
    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        """Transform one ``(H, W, C)`` image."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = False
        return tags


def _stack_if_same_shape(images: list[np.ndarray]):
    if images and all(image.shape == images[0].shape for image in images):
        return np.stack(images)
    return images
