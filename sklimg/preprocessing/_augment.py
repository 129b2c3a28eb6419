"""Augment: random image changes at training time only, fresh every epoch.

``Augment`` is a transformer whose ``fit_transform`` differs from ``fit().transform()``
(scikit-learn allows this; its ``TargetEncoder`` does the same):

- ``fit_transform(X)`` -- what a ``Pipeline`` calls on the training data, and only on
  the training folds in ``cross_val_score`` and ``GridSearchCV`` -- returns a lazy,
  re-randomised view (:class:`~sklimg.preprocessing.LazyImages`): the classifier's data
  loader draws new random versions of the images every epoch;
- ``transform(X)`` -- what ``predict``, ``predict_proba`` and ``score`` go through --
  returns ``X`` unchanged.

Randomness comes from torch's generator, which :class:`~sklimg.ImageClassifier` seeds
per image and epoch from its ``random_state``: training is reproducible, and the same
whatever the number of DataLoader workers.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from torchvision.transforms import v2

from sklimg._lazy import LazyImages, evenly_spaced
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing._base import _ImageToImageMixin
from sklimg.utils._sklearn_compat import Interval, StrOptions, _fit_context
from sklimg.utils.validation import as_images

__all__ = ["AUGMENT_POLICIES", "Augment", "augmented"]

#: The presets, as values of the individual parameters. ``auto_policy`` is a torchvision
#: automatic augmentation applied before the others.
AUGMENT_POLICIES: dict[str, dict] = {
    "none": dict(hflip=0.0, vflip=0.0, translate=0.0, rotation=0.0, crop_scale=None,
                 color_jitter=0.0, erasing=0.0, auto_policy=None),
    "light": dict(hflip=0.5, vflip=0.0, translate=0.125, rotation=0.0, crop_scale=None,
                  color_jitter=0.0, erasing=0.0, auto_policy=None),
    "standard": dict(hflip=0.5, vflip=0.0, translate=0.0, rotation=10.0, crop_scale=(0.75, 1.0),
                     color_jitter=0.2, erasing=0.0, auto_policy=None),
    "trivialaugment": dict(hflip=0.5, vflip=0.0, translate=0.0, rotation=0.0, crop_scale=None,
                           color_jitter=0.0, erasing=0.0, auto_policy="trivialaugment"),
    "randaugment": dict(hflip=0.5, vflip=0.0, translate=0.0, rotation=0.0, crop_scale=None,
                        color_jitter=0.0, erasing=0.0, auto_policy="randaugment"),
}  # fmt: skip

_PROBABILITY = Interval(Real, 0, 1, closed="both")

#: How far outside [0, 1] pixels may be before the photometric operations refuse them:
#: the overshoot of bicubic resizing (up to about 0.2) is harmless to clip.
_RANGE_TOLERANCE = 0.25
#: Images decoded to check the pixel range of files and LazyImages (arrays in memory
#: are checked whole): a range that is wrong for the data set shows in any of them.
_RANGE_SAMPLE = 32


class Augment(_ImageToImageMixin, TransformerMixin, BaseEstimator):
    """Random augmentation of training images, never applied at prediction time.

    Put it in a ``Pipeline`` before :class:`~sklimg.ImageClassifier` (or pass
    ``ImageClassifier(augment=...)``): each training epoch sees newly augmented images,
    while ``predict``, ``predict_proba`` and ``score`` see the images unchanged. In
    ``cross_val_score`` and ``GridSearchCV`` only the training folds are augmented.

    Parameters
    ----------
    policy : {"light", "standard", "trivialaugment", "randaugment", "none"}, \
            default="standard"
        Preset values for the parameters below, which override it when given:

        - ``"light"``: horizontal flip and a translation of up to 1/8 of the size;
        - ``"standard"``: horizontal flip, random resized crop (75-100% of the area),
          rotation up to 10 degrees, brightness/contrast (and saturation) jitter 0.2;
        - ``"trivialaugment"`` / ``"randaugment"``: torchvision's TrivialAugmentWide /
          RandAugment, then a horizontal flip (float images are quantised to 8 bits
          for them);
        - ``"none"``: nothing (useful as a grid-search option).
    hflip, vflip : float or None, default=None
        Probability of a horizontal / vertical flip. Set ``hflip=0`` for data where
        mirror images mean something else (digits, text).
    translate : float or None, default=None
        Largest shift as a fraction of the longer side (reflect padding, then a random
        crop), at least one pixel. Along a side too short for that, the shift is at
        most the side less one pixel (reflect padding cannot be wider), and none on a
        side of one pixel.
    rotation : float or None, default=None
        Largest rotation in degrees, either way.
    crop_scale : tuple of float or None, default=None
        ``(min, max)`` area fraction of a random resized crop, resized back to the image
        size; ``None`` for the preset's, ``(1.0, 1.0)`` for none.
    color_jitter : float or None, default=None
        Strength of random brightness, contrast and (RGB only) saturation changes.
    erasing : float or None, default=None
        Probability of random erasing (Zhong et al. 2020; timm's ``--reprob``, 0.25 in
        its recipes): a rectangle of 2-33% of the image, of aspect ratio 0.3-3.3, set
        to 0 (black for raw pixels, the mean after ``Normalize``), as torchvision's
        ``RandomErasing`` does, after the other changes. No preset erases.

    Raises
    ------
    ImageInputError
        From ``fit`` and ``fit_transform``, when the settings include a photometric
        change (``color_jitter`` > 0, ``"standard"``, ``"trivialaugment"``,
        ``"randaugment"``) and the images are not ``uint8`` and have values outside
        [0, 1] (by more than 0.25, which allows the overshoot of bicubic resizing):
        clipping would destroy them. Arrays in memory are checked whole; files and
        ``LazyImages`` on up to 32 evenly spaced images.

    Notes
    -----
    Put ``Augment`` after resizing and before ``Normalize``: the photometric changes
    (colour jitter, the automatic policies) work on pixels in [0, 1] and clip to it,
    which would distort normalised values, so they refuse images of another range
    (0-255 floats, 0-16 integers, normalised images); ``uint8`` images are scaled on
    the fly. Geometric changes (flips, ``translate``, ``rotation``, ``crop_scale``:
    policy ``"light"``) and ``erasing`` keep any values. ``Normalize("fit")`` after
    ``Augment`` learns its statistics from the images before augmentation.
    ``set_output`` is accepted and changes nothing (images stay arrays);
    ``get_feature_names_out`` passes names through.

    See Also
    --------
    sklimg.ImageClassifier : Takes ``augment=`` with the same policies.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import Augment
    >>> X = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    >>> aug = Augment("light")
    >>> aug.fit(X).transform(X) is X       # prediction path: unchanged
    True
    >>> view = aug.fit_transform(X)         # training path: lazy and random
    >>> view.random, view[0].shape
    (True, (16, 16, 3))
    """

    _parameter_constraints: dict = {
        "policy": [StrOptions(set(AUGMENT_POLICIES))],
        "hflip": [None, _PROBABILITY],
        "vflip": [None, _PROBABILITY],
        "translate": [None, Interval(Real, 0, 0.5, closed="both")],
        "rotation": [None, Interval(Real, 0, 180, closed="both")],
        "crop_scale": [None, tuple, list],
        "color_jitter": [None, Interval(Real, 0, 1, closed="both")],
        "erasing": [None, _PROBABILITY],
    }

    def __init__(
        self,
        policy="standard",
        *,
        hflip=None,
        vflip=None,
        translate=None,
        rotation=None,
        crop_scale=None,
        color_jitter=None,
        erasing=None,
    ):
        self.policy = policy
        self.hflip = hflip
        self.vflip = vflip
        self.translate = translate
        self.rotation = rotation
        self.crop_scale = crop_scale
        self.color_jitter = color_jitter
        self.erasing = erasing

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Resolve the policy and check the images; learns nothing from the data.

        Parameters
        ----------
        X : images, file paths, LazyImages or None
            Validated when given (as ``fit_transform`` would).
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ImageInputError
            For unusable images, or images outside [0, 1] with photometric settings
            (see the class's Raises section).
        """
        settings = dict(AUGMENT_POLICIES[self.policy])
        for name in (
            "hflip", "vflip", "translate", "rotation", "crop_scale", "color_jitter", "erasing",
        ):  # fmt: skip
            if getattr(self, name) is not None:
                settings[name] = getattr(self, name)
        scale = settings["crop_scale"]
        if scale is not None and not (
            len(scale) == 2
            and all(isinstance(s, Real) for s in scale)
            and 0 < scale[0] <= scale[1] <= 1
        ):
            raise ValueError(
                f"crop_scale must be (min, max) with 0 < min <= max <= 1; got {scale!r}."
            )
        if X is not None:
            images = as_images(X, ragged=True)
            if _photometric(settings):
                _check_range(images, settings, self.policy)
        self.settings_ = settings
        return self

    def transform(self, X):
        """Return ``X`` unchanged: prediction and scoring see the real images.

        Parameters
        ----------
        X : images, file paths or LazyImages

        Returns
        -------
        X : the input, unchanged
        """
        return X

    def fit_transform(self, X, y=None):
        """Fit, and return a lazy view of ``X`` that is re-augmented on every access.

        Parameters
        ----------
        X : array-like of shape (n, H, W[, C]), list of arrays, file paths or LazyImages
        y : ignored

        Returns
        -------
        X_aug : LazyImages
            Decoded and augmented batch by batch by the classifier, anew each epoch;
            ``X`` unchanged when the settings augment nothing (``policy="none"``).
        """
        self.fit()
        images = as_images(X, ragged=True)
        view = _view(images, self.settings_, self.policy)
        return X if view is images else view  # e.g. policy="none" in a grid search

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = False
        return tags


def _check_range(images, settings: dict, policy: str) -> None:
    """Refuse pixels that the photometric operations would clip to [0, 1]."""
    found = _pixel_range(images)
    if found is None:
        return
    low, high, where = found
    if low >= -_RANGE_TOLERANCE and high <= 1 + _RANGE_TOLERANCE:
        return
    ops = _photometric(settings)
    if settings["auto_policy"]:
        geometric = "policy='light' (flips and shifts)"
    else:
        geometric = "color_jitter=0"
        if policy not in ("light", "none"):
            geometric += ", or policy='light'"
    raise ImageInputError(
        f"Augment(policy={policy!r}) applies {' and '.join(ops)}, which "
        f"{'work' if len(ops) > 1 else 'works'} on pixels in [0, 1], clipping any "
        f"others, but the images{where} have values from {low:.4g} to {high:.4g}: "
        f"clipping would destroy them. Scale the images to [0, 1] (e.g. X / 255 for "
        f"0-255 pixels, X / X.max() otherwise), or pass 0-255 pixels as uint8 "
        f"(scaled on the fly); or use geometric-only settings, which keep any values: "
        f"{geometric}. Put a Normalize step after Augment, not before (or leave it "
        f"out: ImageClassifier normalises by itself, after augmentation)."
    )


def _view(images, settings: dict, policy: str):
    """Validated ``images`` as a lazy view re-augmented on every access, or as they are
    when ``settings`` augment nothing."""
    op = AugmentOp(settings)
    if not op.active:
        return images  # nothing random to draw
    if _photometric(settings):
        _check_range(images, settings, policy)
    if not isinstance(images, LazyImages):
        images = LazyImages(images)
    return images.with_op(op)


def augmented(augment, images):
    """What :class:`~sklimg.ImageClassifier` trains on with ``augment=``: the lazy,
    re-randomised view of ``images`` that ``Augment.fit_transform`` gives, for images
    already validated (they are not checked again).

    Parameters
    ----------
    augment : str or Augment
        A policy, or an ``Augment``, which is not changed (a clone is fitted).
    images : ndarray of shape (n, H, W, C), list of arrays, or LazyImages
        Validated images.

    Returns
    -------
    images : LazyImages, or ``images`` when the settings augment nothing

    Raises
    ------
    ImageInputError
        For pixels outside [0, 1] with photometric settings (see :class:`Augment`).
    """
    augment = clone(augment) if isinstance(augment, Augment) else Augment(augment)
    augment.fit()  # resolves the policy and checks the parameters
    return _view(images, augment.settings_, augment.policy)


def _photometric(settings: dict) -> list[str]:
    """The operations of ``settings`` that work on [0, 1] pixels and clip to it."""
    ops = []
    if settings["auto_policy"]:
        ops.append(f"the automatic policy {settings['auto_policy']!r}")
    if settings["color_jitter"]:
        ops.append(f"colour jitter (color_jitter={settings['color_jitter']})")
    return ops


def _pixel_range(images) -> tuple[float, float, str] | None:
    """``(lowest, highest, where)`` of the non-uint8 pixels; ``None`` if all are uint8.

    Arrays and lists in memory are checked whole; ``LazyImages`` (before their random
    operations) on up to ``_RANGE_SAMPLE`` evenly spaced images, ``where`` saying so.
    """
    where = ""
    if isinstance(images, LazyImages):
        images = images.without_random()
    if isinstance(images, LazyImages):
        n = len(images)
        indices = evenly_spaced(n, _RANGE_SAMPLE)
        images = [images.load(int(i)) for i in indices]
        where = f" ({len(indices)} of {n} checked)"
    elif isinstance(images, np.ndarray):
        images = [images]
    lows, highs = [], []
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8 and image.size:
            lows.append(float(image.min()))
            highs.append(float(image.max()))
    if not lows:
        return None
    return min(lows), max(highs), where


class AugmentOp:
    """The per-image random transform of a fitted :class:`Augment` (picklable).

    Works on one ``(H, W, C)`` array and returns an array of the same shape and dtype.
    """

    random = True
    __name__ = "Augment"

    def __init__(self, settings: dict) -> None:
        self.settings = dict(settings)
        self._pipelines: dict[tuple, v2.Compose] = {}

    def __getstate__(self):
        return {"settings": self.settings}

    def __setstate__(self, state):
        self.__init__(state["settings"])

    @property
    def active(self) -> bool:
        """Whether any random change is configured."""
        s = self.settings
        return bool(
            s["auto_policy"]
            or s["hflip"]
            or s["vflip"]
            or s["translate"]
            or s["rotation"]
            or s["color_jitter"]
            or s["erasing"]
            or (s["crop_scale"] is not None and tuple(s["crop_scale"]) != (1.0, 1.0))
        )

    def _pipeline(self, height: int, width: int, channels: int) -> v2.Compose:
        key = (height, width, channels)
        if key not in self._pipelines:
            s = self.settings
            steps: list = []
            if s["auto_policy"] == "trivialaugment":
                steps.append(v2.TrivialAugmentWide())
            elif s["auto_policy"] == "randaugment":
                steps.append(v2.RandAugment())
            if s["crop_scale"] is not None and tuple(s["crop_scale"]) != (1.0, 1.0):
                steps.append(v2.RandomResizedCrop((height, width), scale=tuple(s["crop_scale"])))
            if s["translate"]:
                pad = max(1, round(s["translate"] * max(height, width)))
                # Reflect padding must be narrower than the side: short sides shift less.
                padding = (min(pad, width - 1), min(pad, height - 1))  # (left/right, top/bottom)
                if any(padding):
                    steps.append(
                        v2.RandomCrop((height, width), padding=padding, padding_mode="reflect")
                    )
            if s["rotation"]:
                steps.append(v2.RandomRotation(s["rotation"]))
            if s["color_jitter"]:
                j = s["color_jitter"]
                steps.append(v2.ColorJitter(j, j, j if channels == 3 else 0))
            if s["hflip"]:
                steps.append(v2.RandomHorizontalFlip(s["hflip"]))
            if s["vflip"]:
                steps.append(v2.RandomVerticalFlip(s["vflip"]))
            if s["erasing"]:
                steps.append(v2.RandomErasing(s["erasing"], value=0))
            # Nothing left, e.g. only a translation of a 1 x 1 image: unchanged.
            self._pipelines[key] = v2.Compose(steps or [v2.Identity()])
        return self._pipelines[key]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        height, width, channels = image.shape
        dtype = image.dtype
        # A copy: decoded images can be read-only views, which torch does not accept.
        tensor = torch.from_numpy(np.array(image.transpose(2, 0, 1)))
        quantise = self.settings["auto_policy"] is not None and dtype != np.uint8
        if quantise:
            tensor = (tensor.clamp(0, 1) * 255).round().to(torch.uint8)
        out = self._pipeline(height, width, channels)(tensor)
        if quantise:
            out = out.float() / 255
        return out.numpy().transpose(1, 2, 0).astype(dtype, copy=False)
