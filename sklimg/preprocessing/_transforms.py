"""Per-image preprocessing steps: Resize, CenterCrop, ToRGB, Grayscale, Normalize.

Each step implements one vectorised operation on a stacked ``(n, H, W, C)`` batch; on
one image (the lazy route, or a list of images of different sizes) it runs the same
operation on a batch of one, so lazy and eager results agree exactly.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from sklimg._lazy import LazyImages
from sklimg._pixels import unit_float
from sklimg.backbones import BackboneSpec, get_backbone
from sklimg.backbones._torchvision import IMAGENET_MEAN, IMAGENET_STD
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing._base import ImageTransformer
from sklimg.utils._sklearn_compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    _fit_context,
)
from sklimg.utils.validation import as_images, check_images

__all__ = ["CenterCrop", "Grayscale", "Normalize", "Resize", "ToRGB"]

# Luminance weights for R, G, B.
_GRAY_WEIGHTS = {
    "bt601": (0.299, 0.587, 0.114),  # ITU-R 601-2: Pillow's convert("L"), torchvision, OpenCV
    "bt709": (0.2125, 0.7154, 0.0721),  # scikit-image's rgb2gray
}

# Values converted to float per chunk of a batch (64 MB as float32), so that resizing or
# computing statistics of a large uint8 array never holds all of it as float at once.
_CHUNK_VALUES = 1 << 24

_TORCH_MODES = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}


def _pair(value, param: str, owner: str) -> tuple[int, int]:
    """``size`` as ``(height, width)``: an int is a square."""
    if isinstance(value, Integral):
        return int(value), int(value)
    if len(value) == 2 and all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        return int(value[0]), int(value[1])
    raise InvalidParameterError(
        f"The '{param}' parameter of {owner} must be a positive int or a (height, width) "
        f"pair of positive ints. Got {value!r} instead."
    )


def _like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float results back in the input's type: uint8 rounded and clipped, else float32."""
    if dtype == np.uint8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return values.astype(np.float32, copy=False)


def _resize(images: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize a ``(n, H, W, C)`` batch with torch, in chunks to bound memory."""
    n, height, width, channels = images.shape
    if (height, width) == size:
        return images.copy()
    mode = _TORCH_MODES[interpolation]
    out = np.empty((n, *size, channels), dtype=images.dtype)
    step = max(1, _CHUNK_VALUES // (max(height * width, size[0] * size[1]) * channels))
    for start in range(0, n, step):
        chunk = torch.from_numpy(np.asarray(images[start : start + step], dtype=np.float32))
        # antialias only acts when downsampling; nearest must never blend pixels.
        resized = torch.nn.functional.interpolate(
            chunk.permute(0, 3, 1, 2), size=size, mode=mode, antialias=mode != "nearest-exact"
        )
        out[start : start + step] = _like(resized.permute(0, 2, 3, 1).numpy(), images.dtype)
    return out


def _center_slices(have: int, want: int) -> tuple[slice, slice]:
    """Source and destination slices that centre ``have`` pixels in ``want`` along one axis.

    An odd difference leaves the extra pixel at the end: the bottom row or right column
    is the one cropped, or the one padded.
    """
    offset = abs(have - want) // 2
    if have >= want:
        return slice(offset, offset + want), slice(0, want)
    return slice(0, have), slice(offset, offset + have)


def _center_fit(images: np.ndarray, size: tuple[int, int], pad_value: float) -> np.ndarray:
    """Crop or pad each spatial axis of ``(n, H, W, C)`` around the centre to ``size``."""
    n, height, width, channels = images.shape
    fill = _like(np.float32(pad_value), images.dtype)
    out = np.full((n, *size, channels), fill, dtype=images.dtype)
    (src_rows, dst_rows), (src_cols, dst_cols) = (
        _center_slices(height, size[0]),
        _center_slices(width, size[1]),
    )
    out[:, dst_rows, dst_cols] = images[:, src_rows, src_cols]
    return out


class _ImageStep(ImageTransformer):
    """A step defined by one batch operation, ``_transform_array``, used on every route."""

    _parameter_constraints: dict = {}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the images; this step learns nothing.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths or \
LazyImages
            Arrays are validated; files have their headers checked.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The step itself.
        """
        as_images(X, channels=self._accepted_channels, ragged=True)
        return self

    def _check_fitted(self) -> None:
        # Stateless steps transform without fit, so their parameters are checked here.
        self._validate_params()

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        batch = check_images(image[np.newaxis], channels=self._accepted_channels)
        return self._transform_array(batch)[0]

    @abstractmethod
    def _transform_array(self, images: np.ndarray) -> np.ndarray:
        """Transform a validated ``(n, H, W, C)`` batch into a new array."""


class Resize(_ImageStep):
    """Resize images to one size, stretching them or keeping their aspect ratio.

    Parameters
    ----------
    size : int or tuple of (int, int), default=224
        Output ``(height, width)``; an int gives a square (unlike torchvision, where an
        int sets the shorter side).
    mode : {"stretch", "pad", "crop"}, default="stretch"
        How the aspect ratio is handled:

        - ``"stretch"``: resize to ``size`` exactly; the aspect ratio may change.
        - ``"pad"``: scale the image to fit inside ``size``, keeping its aspect ratio,
          and pad the rest with ``pad_value`` (letterboxing): nothing is lost.
        - ``"crop"``: scale the image to cover ``size``, keeping its aspect ratio, and
          crop the overflow around the centre: no padding is added.

        Padding and cropping are centred; an odd difference leaves the extra row or
        column at the bottom or right.
    interpolation : {"nearest", "bilinear", "bicubic"}, default="bilinear"
        Resampling filter. Downsampling with ``"bilinear"`` or ``"bicubic"`` is always
        antialiased (as Pillow does), so thin lines and fine textures do not alias.
        ``"nearest"`` copies the nearest pixel, as Pillow and scikit-image do (torch's
        ``"nearest-exact"``), and never blends values: use it for label masks.
    pad_value : float, default=0
        Value of the padded pixels in ``mode="pad"``, in the images' units: 0-255 for
        ``uint8`` images, as given for float images.

    See Also
    --------
    CenterCrop : Crop (or pad) to a size without resampling.

    Notes
    -----
    ``uint8`` images stay ``uint8`` (resampled in float32, then rounded and clipped to
    0-255); other images come out as ``float32``, not clipped, since float pixels may
    have any range. A list of images of different sizes becomes one stacked array.
    File paths and :class:`LazyImages` are resized lazily, one image at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import Resize
    >>> images = [np.zeros((30, 40, 3), np.uint8), np.zeros((50, 20, 3), np.uint8)]
    >>> Resize((16, 16)).fit_transform(images).shape
    (2, 16, 16, 3)
    >>> wide = np.full((1, 10, 20), 255, np.uint8)
    >>> Resize(8, mode="pad").fit_transform(wide)[0, :, 0, 0]
    array([  0,   0, 255, 255, 255, 255,   0,   0], dtype=uint8)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "mode": [StrOptions({"stretch", "pad", "crop"})],
        "interpolation": [StrOptions(set(_TORCH_MODES))],
        "pad_value": [Real],
    }

    def __init__(self, size=224, *, mode="stretch", interpolation="bilinear", pad_value=0):
        self.size = size
        self.mode = mode
        self.interpolation = interpolation
        self.pad_value = pad_value

    def _validate_params(self) -> None:
        super()._validate_params()
        _pair(self.size, "size", type(self).__name__)

    def _transform_array(self, images: np.ndarray) -> np.ndarray:
        target = _pair(self.size, "size", type(self).__name__)
        height, width = images.shape[1:3]
        if self.mode == "stretch":
            return _resize(images, target, self.interpolation)
        # "pad" scales to fit inside the target, "crop" to cover it.
        scale = (min if self.mode == "pad" else max)(target[0] / height, target[1] / width)
        scaled = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
        return _center_fit(_resize(images, scaled, self.interpolation), target, self.pad_value)


class CenterCrop(_ImageStep):
    """Crop the centre of each image to a fixed size, padding images that are smaller.

    Parameters
    ----------
    size : int or tuple of (int, int), default=224
        Output ``(height, width)``; an int gives a square.
    pad_value : float, default=0
        Value of the pixels added along a side where the image is smaller than
        ``size`` (as torchvision's ``CenterCrop`` pads with zeros), in the images'
        units: 0-255 for ``uint8`` images. Padding keeps the output size fixed, which
        is what the steps after a crop rely on.

    See Also
    --------
    Resize : Resample to a size, optionally keeping the aspect ratio.

    Notes
    -----
    The crop is centred; when the difference in size is odd, the extra row or column
    is cropped (or padded) at the bottom or right. ``uint8`` pixels stay ``uint8``;
    others come out as ``float32`` (see :ref:`input`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import CenterCrop
    >>> image = np.arange(25).reshape(1, 5, 5)
    >>> CenterCrop(3).fit_transform(image)[0, ..., 0]
    array([[ 6.,  7.,  8.],
           [11., 12., 13.],
           [16., 17., 18.]], dtype=float32)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "pad_value": [Real],
    }

    def __init__(self, size=224, *, pad_value=0):
        self.size = size
        self.pad_value = pad_value

    def _validate_params(self) -> None:
        super()._validate_params()
        _pair(self.size, "size", type(self).__name__)

    def _transform_array(self, images: np.ndarray) -> np.ndarray:
        return _center_fit(images, _pair(self.size, "size", type(self).__name__), self.pad_value)


class ToRGB(_ImageStep):
    """Give every image three channels: grayscale repeated, RGBA without alpha.

    Grayscale ``(H, W)`` or ``(H, W, 1)`` images have their channel repeated three
    times; RGBA images lose their alpha channel (image files with transparency are
    already composited on white by :func:`sklimg.io.read_image`); RGB images are
    unchanged. ``uint8`` pixels stay ``uint8``; others come out as ``float32`` (see
    :ref:`input`).

    See Also
    --------
    Grayscale : The other direction.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import ToRGB
    >>> ToRGB().fit_transform(np.zeros((2, 8, 8))).shape
    (2, 8, 8, 3)
    >>> ToRGB().fit_transform(np.zeros((2, 8, 8, 4), np.uint8)).shape
    (2, 8, 8, 3)
    """

    def __init__(self):
        pass

    def _transform_array(self, images: np.ndarray) -> np.ndarray:
        if images.shape[-1] == 1:
            return np.repeat(images, 3, axis=-1)
        return images[..., :3].copy()


class Grayscale(_ImageStep):
    """Turn RGB images into one-channel luminance images.

    Parameters
    ----------
    weights : {"bt601", "bt709"}, default="bt601"
        Luminance weights of R, G and B:

        - ``"bt601"``: ITU-R 601-2, ``0.299 R + 0.587 G + 0.114 B``, as Pillow's
          ``convert("L")``, torchvision and OpenCV compute it.
        - ``"bt709"``: ``0.2125 R + 0.7154 G + 0.0721 B``, as scikit-image's
          ``rgb2gray`` computes it.

    See Also
    --------
    ToRGB : The other direction.

    Notes
    -----
    Images that are already grayscale are unchanged; the alpha channel of RGBA images
    is ignored. The output has one channel, ``(n, H, W, 1)``. ``uint8`` images stay
    ``uint8`` (rounded); others come out as ``float32``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import Grayscale
    >>> red = np.zeros((1, 2, 2, 3), np.uint8)
    >>> red[..., 0] = 255
    >>> Grayscale().fit_transform(red)[0, 0, 0]
    array([76], dtype=uint8)
    """

    _parameter_constraints: dict = {"weights": [StrOptions(set(_GRAY_WEIGHTS))]}

    def __init__(self, weights="bt601"):
        self.weights = weights

    def _transform_array(self, images: np.ndarray) -> np.ndarray:
        if images.shape[-1] == 1:
            return images.copy()
        weights = np.asarray(_GRAY_WEIGHTS[self.weights], dtype=np.float32)
        luminance = images[..., :3].astype(np.float32) @ weights
        return _like(luminance, images.dtype)[..., np.newaxis]


class Normalize(_ImageStep):
    """Scale pixels to [0, 1], then subtract a per-channel mean and divide by a std.

    Parameters
    ----------
    mean : {"fit", "imagenet", "auto"}, float or sequence of float, default="fit"
        Where the statistics come from:

        - ``"fit"``: the per-channel mean and standard deviation of every pixel of
          the training images, learned in :meth:`fit` (file paths and
          :class:`LazyImages` are read once). This is what a network trained from
          scratch needs.
        - ``"imagenet"``: mean ``(0.485, 0.456, 0.406)``, std ``(0.229, 0.224,
          0.225)``, which most pretrained weights expect.
        - ``"auto"``: the mean and std of ``backbone``'s pretrained weights.
        - numbers: the mean itself, one per channel or one for all; give ``std`` too.
    std : float, sequence of float or None, default=None
        The standard deviation, when ``mean`` is given as numbers; must be ``None``
        otherwise, since the other choices set both.
    backbone : str, BackboneSpec or None, default=None
        The backbone whose statistics ``mean="auto"`` uses, e.g. ``"resnet18"``; see
        :func:`sklimg.backbones.list_backbones`. Ignored for other values of ``mean``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_channels,) or (1,)
        The mean subtracted, in [0, 1] units; one value applies to every channel.
    std_ : ndarray of shape (n_channels,) or (1,)
        The standard deviation divided by. With ``mean="fit"``, a channel that is
        constant over the training images gets 1, as in scikit-learn's
        ``StandardScaler``.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : The same for feature tables.

    Notes
    -----
    ``uint8`` pixels are divided by 255 first; other pixel types are used as given
    (16-bit files are already read as [0, 1]). The output is ``float32``. Statistics
    from ``"fit"`` weigh every pixel the same, so larger images count more.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import Normalize
    >>> X = np.array([[[0, 255]], [[255, 255]]], dtype=np.uint8)  # 2 images of 1 x 2
    >>> norm = Normalize().fit(X)
    >>> norm.mean_, norm.std_
    (array([0.75]), array([0.4330127...]))
    >>> Normalize("imagenet").fit(np.zeros((1, 4, 4, 3), np.uint8)).mean_
    array([0.485, 0.456, 0.406])
    """

    _keeps_shape = True

    _parameter_constraints: dict = {
        "mean": [StrOptions({"fit", "imagenet", "auto"}), "array-like", Real],
        "std": ["array-like", Real, None],
        "backbone": [str, BackboneSpec, None],
    }

    def __init__(self, mean="fit", std=None, *, backbone=None):
        self.mean = mean
        self.std = std
        self.backbone = backbone

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Resolve the statistics, learning them from ``X`` when ``mean="fit"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths or \
LazyImages
            Training images; images of different sizes are fine.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted step.
        """
        # Parameters are resolved before any image is read, so mistakes fail fast.
        stats = self._stats_from_params()
        images = as_images(X, channels=self._accepted_channels, ragged=True)
        if isinstance(images, LazyImages):
            # After an Augment step: learn from the real images, not one random draw,
            # so fits stay reproducible.
            images = images.without_random()
        if stats is None:
            mean, std = _pixel_stats(images, self._accepted_channels)
            std[std == 0] = 1.0
        else:
            mean, std = stats
        self.mean_ = np.array(mean, dtype=np.float64)
        self.std_ = np.array(std, dtype=np.float64)
        return self

    def _stats_from_params(self):
        """``(mean, std)`` set by the parameters; ``None`` when they are learned."""
        if not isinstance(self.mean, str):
            return self._given_stats()
        if self.std is not None:
            raise ValueError(
                f"Normalize got std={self.std!r} with mean={self.mean!r}, which sets the "
                f"std itself. Pass std=None, or give both mean and std as numbers."
            )
        if self.mean == "imagenet":
            return IMAGENET_MEAN, IMAGENET_STD
        if self.mean == "auto":
            return self._backbone_stats()
        return None

    def _backbone_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.backbone is None:
            raise ValueError(
                "Normalize(mean='auto') takes the statistics from a backbone, but "
                "backbone=None. Pass backbone='resnet18' (any name from "
                "sklimg.backbones.list_backbones(pretrained=True)), or use mean='fit'."
            )
        spec = (
            self.backbone
            if isinstance(self.backbone, BackboneSpec)
            else get_backbone(self.backbone)
        )
        if spec.mean is None or spec.std is None:
            raise ValueError(
                f"Backbone {spec.name!r} has no normalisation statistics (it has no "
                f"pretrained weights), so Normalize(mean='auto') has nothing to use. Use "
                f"mean='fit' to learn them from the training images."
            )
        return spec.mean, spec.std

    def _given_stats(self) -> tuple[np.ndarray, np.ndarray]:
        name = type(self).__name__
        if self.std is None:
            raise ValueError(
                f"{name} got mean={self.mean!r} without std. Give std too, e.g. "
                f"Normalize(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)), or use "
                f"mean='fit' to learn both."
            )
        mean = np.atleast_1d(np.asarray(self.mean, dtype=np.float64))
        std = np.atleast_1d(np.asarray(self.std, dtype=np.float64))
        for param, values in (("mean", mean), ("std", std)):
            if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
                raise InvalidParameterError(
                    f"The '{param}' parameter of {name} must be a finite number or a "
                    f"sequence of them, one per channel. Got {getattr(self, param)!r} instead."
                )
        if (std <= 0).any():
            raise InvalidParameterError(
                f"The 'std' parameter of {name} must be positive. Got {self.std!r} instead."
            )
        if len(mean) != len(std) and 1 not in (len(mean), len(std)):
            raise ValueError(
                f"{name} got {len(mean)} mean values but {len(std)} std values; give one "
                f"per channel for both, or a single value for all channels."
            )
        return np.broadcast_arrays(mean, std)

    def _check_fitted(self) -> None:
        check_is_fitted(self)

    def _transform_array(self, images: np.ndarray) -> np.ndarray:
        channels = images.shape[-1]
        if len(self.mean_) not in (1, channels):
            raise ImageInputError(
                f"Normalize has statistics for {len(self.mean_)} channels but the images "
                f"have {channels} (shape {images.shape}). Convert the images first, e.g. "
                f"with sklimg.preprocessing.ToRGB() or Grayscale() before Normalize."
            )
        mean = self.mean_.astype(np.float32)
        std = self.std_.astype(np.float32)
        return (unit_float(images) - mean) / std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags


def _batches(images, channels: tuple[int, ...]) -> Iterator[tuple[int, np.ndarray]]:
    """``(index of first image, (n, H, W, C) batch)`` over an array, list or LazyImages."""
    if isinstance(images, np.ndarray):
        step = max(1, _CHUNK_VALUES // max(1, images[0].size))
        for start in range(0, len(images), step):
            yield start, images[start : start + step]
    elif isinstance(images, LazyImages):
        for i, image in enumerate(images):
            yield i, check_images(image[np.newaxis], channels=channels)
    else:
        for i, image in enumerate(images):
            yield i, image[np.newaxis]


def _pixel_stats(images, channels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (ddof=0) in [0, 1] units over every pixel, in one pass.

    Batch statistics are merged with Chan, Golub and LeVeque's pairwise update, which
    stays accurate in float64 however many pixels there are; lazy images are decoded
    once and a large array is never copied to float64 whole.
    """
    count, mean, m2 = 0, None, None
    for index, batch in _batches(images, channels):
        pixels = unit_float(batch).reshape(-1, batch.shape[-1]).astype(np.float64)
        if mean is None:
            mean, m2 = np.zeros(pixels.shape[1]), np.zeros(pixels.shape[1])
        elif pixels.shape[1] != len(mean):
            raise ImageInputError(
                f"Image {index} has {pixels.shape[1]} channels but the images before it have "
                f"{len(mean)}; Normalize needs one channel count. Put ToRGB() or "
                f"Grayscale() before it."
            )
        batch_mean = pixels.mean(axis=0)
        delta = batch_mean - mean
        total = count + len(pixels)
        mean = mean + delta * len(pixels) / total
        m2 = m2 + ((pixels - batch_mean) ** 2).sum(axis=0) + delta**2 * count * len(pixels) / total
        count = total
    return mean, np.sqrt(m2 / count)
