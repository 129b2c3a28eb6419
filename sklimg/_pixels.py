"""Pixel conventions every module shares, in one place.

Images are channels last with 1 (grayscale) or 3 (RGB) channels. ``uint8`` pixels
(0-255) stay ``uint8`` for as long as they can (a quarter of the memory of float32,
in arrays, in batches and on the way to the device) and become float32 in [0, 1] only
where arithmetic needs them: :func:`unit_float` is that one conversion, for NumPy
arrays and torch tensors alike.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SUPPORTED_CHANNELS", "mismatch_fix", "unit_float"]

#: Channel counts a batch of images may have: grayscale and RGB.
SUPPORTED_CHANNELS = (1, 3)


def unit_float(images):
    """Pixels as float32, ``uint8`` scaled from 0-255 to [0, 1]; other values unchanged.

    Parameters
    ----------
    images : ndarray or torch.Tensor
        Any shape; ``uint8`` or a float type (validated images are one or the other).

    Returns
    -------
    images : ndarray or torch.Tensor
        float32, of the same kind as given; float32 input is returned as it is, not
        copied.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklimg._pixels import unit_float
    >>> unit_float(np.array([0, 51, 255], dtype=np.uint8))
    array([0. , 0.2, 1. ], dtype=float32)
    >>> unit_float(torch.tensor([255], dtype=torch.uint8))
    tensor([1.])
    """
    if isinstance(images, torch.Tensor):
        # A new tensor from .float() when uint8, so dividing in place is safe.
        return images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255)
    return images.astype(np.float32, copy=False)


def mismatch_fix(first: tuple[int, ...], other: tuple[int, ...]) -> str:
    """The steps that make images of shapes ``(H, W[, C])`` agree, for error messages.

    Examples
    --------
    >>> from sklimg._pixels import mismatch_fix
    >>> mismatch_fix((8, 8, 3), (16, 16, 3))
    'Give them the same size with ... e.g. make_pipeline(Resize((64, 64)), ImageClassifier()).'
    """
    channels = [shape[2] if len(shape) > 2 else 1 for shape in (first, other)]
    fixes = []  # (what differs, the step that aligns it)
    if channels[0] != channels[1]:
        fixes.append(("channels (ToRGB or Grayscale)", "ToRGB()"))
    if tuple(first[:2]) != tuple(other[:2]):
        fixes.append(("size", "Resize((64, 64))"))
    if not fixes:
        return "Give every image the same shape."
    return (
        f"Give them the same {' and '.join(what for what, _ in fixes)} with "
        f"sklimg.preprocessing steps before the classifier, e.g. "
        f"make_pipeline({', '.join(step for _, step in fixes)}, ImageClassifier())."
    )
