"""Datasets that ship offline, as images."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

__all__ = ["load_digits_images"]


def load_digits_images(*, return_X_y: bool = False):
    """scikit-learn's handwritten digits as 8x8 grayscale images in [0, 1].

    1,797 images of the digits 0-9, shipped with scikit-learn (no download).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``images`` of shape (1797, 8, 8), float32 in [0, 1]; ``target`` of shape
        (1797,); ``target_names``; ``DESCR``.
    (images, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, X.dtype, float(X.max())
    ((1797, 8, 8), dtype('float32'), 1.0)
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    if return_X_y:
        return images, digits.target
    return Bunch(
        images=images,
        target=digits.target,
        target_names=digits.target_names,
        DESCR=digits.DESCR,
    )
