"""LazyImages: a sequence of images decoded (and transformed) only when accessed.

File paths become ``LazyImages``; preprocessing steps add per-image operations to it
instead of decoding everything, and the classifier decodes batch by batch in DataLoader
workers, so memory does not grow with the number of images. It supports the indexing
scikit-learn's cross-validation uses (``X[indices, ...]``), so ``GridSearchCV`` splits
it without decoding anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from sklimg._pixels import SUPPORTED_CHANNELS, mismatch_fix, unit_float
from sklimg.exceptions import ImageInputError
from sklimg.io import decoded_shape, read_image

__all__ = ["LazyImages", "is_path_sequence", "sample_images"]

# Images decoded from files (or lazy views) to learn their shape and pixel statistics.
LAZY_SAMPLE = 256
#: About the most memory the sample of lazy images takes (at least two images).
SAMPLE_BYTES = 2**30


def is_path_sequence(X) -> bool:
    """Whether ``X`` is a 1-D array, list or pandas Series of file paths."""
    if not isinstance(X, np.ndarray) and hasattr(X, "to_numpy") and getattr(X, "ndim", 0) == 1:
        X = X.to_numpy()  # a pandas Series or Index, e.g. a DataFrame's path column
    if isinstance(X, np.ndarray):
        return X.ndim == 1 and (
            X.dtype.kind in "US"
            or (X.dtype == object and X.size > 0 and isinstance(X[0], (str, os.PathLike)))
        )
    return (
        isinstance(X, (list, tuple))
        and len(X) > 0
        and all(isinstance(x, (str, os.PathLike)) for x in X)
    )


class LazyImages:
    """Images decoded on access: a source plus per-image operations.

    Parameters
    ----------
    source : sequence of path-like, or sequence of arrays
        Image files, or images already in memory (possibly of different sizes).
    ops : sequence of callables, default=()
        Applied in order to each ``(H, W, C)`` image when it is accessed. An op with a
        true ``random`` attribute (augmentation) draws from torch's random generator,
        so each access gives a new version.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.preprocessing import LazyImages
    >>> lazy = LazyImages([np.zeros((4, 4, 1)), np.ones((2, 2, 1))])
    >>> len(lazy), lazy[1].shape
    (2, (2, 2, 1))
    >>> len(lazy[np.array([1])])
    1
    """

    def __init__(
        self,
        source: Sequence,
        ops: Sequence[Callable] = (),
        *,
        _file_shapes: np.ndarray | None = None,
    ) -> None:
        if hasattr(source, "to_numpy") and not isinstance(source, np.ndarray):
            source = source.to_numpy()  # pandas: iterate values, not index labels
        if isinstance(source, np.ndarray) and source.dtype != object and source.ndim > 1:
            self.source = source
        else:
            items = np.empty(len(source), dtype=object)
            # Plain str (not np.str_): paths appear in error messages.
            items[:] = [
                os.fspath(s) if isinstance(s, os.PathLike) else str(s) if isinstance(s, str) else s
                for s in source
            ]
            self.source = items
        self.ops = tuple(ops)
        # (n, 3) shapes the files decode to, read from their headers by check_files;
        # None until then.
        self._file_shapes = _file_shapes

    @property
    def are_paths(self) -> bool:
        """Whether the source is image files."""
        return len(self.source) > 0 and isinstance(self.source[0], str)

    @property
    def file_shapes(self) -> np.ndarray | None:
        """``(n, 3)`` shapes ``(height, width, channels)`` the files decode to, read from
        their headers by :meth:`check_files`; None before that, or for images in
        memory."""
        return self._file_shapes

    @property
    def random(self) -> bool:
        """Whether an operation is random (augmentation): each access differs."""
        return any(getattr(op, "random", False) for op in self.ops)

    @property
    def shape(self) -> tuple[int]:
        """``(n_images,)``; scikit-learn reads the number of samples from it."""
        return (len(self.source),)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # scikit-learn indexes as X[indices, ...]
            key = key[0]
        if isinstance(key, (int, np.integer)):
            return self.load(int(key))
        shapes = None if self._file_shapes is None else self._file_shapes[key]
        return LazyImages(self.source[key], self.ops, _file_shapes=shapes)

    def __iter__(self):
        return (self.load(i) for i in range(len(self)))

    def __repr__(self) -> str:
        kind = "files" if self.are_paths else "in-memory images"
        ops = ", ".join(getattr(op, "__name__", type(op).__name__) for op in self.ops)
        return f"LazyImages({len(self)} {kind}{', ops: ' + ops if ops else ''})"

    def without_random(self) -> LazyImages | np.ndarray:
        """The images before augmentation: random operations dropped.

        Returns
        -------
        images : LazyImages or ndarray
            The in-memory source array itself when nothing else is left to apply.
        """
        ops = tuple(op for op in self.ops if not getattr(op, "random", False))
        if not ops and self.source.dtype != object:
            return self.source
        return LazyImages(self.source, ops, _file_shapes=self._file_shapes)

    def with_op(self, op: Callable) -> LazyImages:
        """A new LazyImages with ``op`` applied after the existing operations.

        Parameters
        ----------
        op : callable
            ``op(image) -> image`` on ``(H, W, C)`` arrays; a true ``random``
            attribute marks it as augmentation.

        Returns
        -------
        images : LazyImages
        """
        return LazyImages(self.source, (*self.ops, op), _file_shapes=self._file_shapes)

    def check_files(self, max_reported: int = 10) -> None:
        """Check every file's header before any work starts; report all bad files at once.

        Checked once: views made from this one by indexing or adding operations share
        the result, so cross-validation does not re-read every header for each fold.
        The headers also give the shape each file decodes to, which
        :func:`sample_images` compares across all the files.

        Raises
        ------
        ImageInputError
            Listing up to ``max_reported`` bad files and what is wrong with each.
        """
        if not self.are_paths or self._file_shapes is not None:
            return
        problems = []
        shapes = np.zeros((len(self), 3), dtype=np.int64)
        for i, path in enumerate(self.source):
            try:
                shapes[i] = decoded_shape(path)
            except ImageInputError as exc:
                problems.append(str(exc))
        if problems:
            shown = "\n  ".join(problems[:max_reported])
            more = (
                f"\n  ... and {len(problems) - max_reported} more"
                if len(problems) > max_reported
                else ""
            )
            raise ImageInputError(
                f"{len(problems)} of {len(self)} image files cannot be used; fix or remove "
                f"them:\n  {shown}{more}"
            )
        self._file_shapes = shapes

    def with_gray_as_rgb(self, *, always: bool = False) -> LazyImages:
        """These images, with grayscale files repeated to RGB where the others are RGB.

        A folder of photos often mixes the two; torchvision's ``ImageFolder`` converts
        every file to RGB, and so does this, for files only (their headers, read by
        :meth:`check_files`, say which are which). Files of one kind are returned as
        they are, unless ``always`` (for a model fitted on RGB images).

        Parameters
        ----------
        always : bool, default=False
            Repeat grayscale files to RGB even where no file is RGB.

        Returns
        -------
        images : LazyImages
        """
        shapes = self._file_shapes
        channels = set() if shapes is None else set(shapes[:, 2].tolist())
        if 1 not in channels or (channels != {1, 3} and not always):
            return self
        promoted = shapes.copy()
        promoted[:, 2] = 3
        # First, as decoding does it: the operations after it see RGB images.
        return LazyImages(self.source, (gray_to_rgb, *self.ops), _file_shapes=promoted)

    def check_same_shape(self) -> None:
        """For files used as they are (or through operations that keep each image's
        shape, such as ``Normalize``), fail unless every file decodes to one shape,
        naming a file of the most common shape and one of another.

        Raises
        ------
        ImageInputError
            With the step that fixes it (``Resize``, ``ToRGB`` or ``Grayscale``).
        """
        shapes = self._file_shapes
        reshaped = any(not getattr(op, "keeps_shape", False) for op in self.ops)
        if reshaped or shapes is None or len(shapes) == 0:
            return
        distinct, first, counts = np.unique(shapes, axis=0, return_index=True, return_counts=True)
        if len(distinct) == 1:
            return
        order = np.argsort(-counts, kind="stable")
        common, other = (tuple(int(v) for v in distinct[k]) for k in order[:2])
        common_file, other_file = (self.source[first[k]] for k in order[:2])
        raise ImageInputError(
            f"The image files differ in shape ({len(distinct)} shapes among {len(self)} "
            f"files): {common_file!r} is {common} but {other_file!r} is {other} (height, "
            f"width, channels). {mismatch_fix(common, other)}"
        )

    def load(self, i: int) -> np.ndarray:
        """Decode image ``i`` and apply the operations.

        Parameters
        ----------
        i : int
            Position of the image.

        Returns
        -------
        image : ndarray of shape (H, W, C)
        """
        item = self.source[i]
        image = read_image(item) if isinstance(item, str) else np.asarray(item)
        if image.ndim == 2:
            image = image[..., None]
        for op in self.ops:
            image = op(image)
        return image


def gray_to_rgb(image: np.ndarray) -> np.ndarray:
    """A grayscale ``(H, W, 1)`` image repeated to RGB; an RGB one as it is."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


# Every image comes out with the shape its file's header, promoted, says.
gray_to_rgb.keeps_shape = True


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Up to ``k`` evenly spaced positions among ``n`` images, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).astype(int))


def sample_images(images, n: int = LAZY_SAMPLE) -> np.ndarray:
    """The images before augmentation: in memory as they are; otherwise up to ``n``
    evenly spaced images decoded (float32 in [0, 1]), to learn the shape and the pixel
    statistics: fewer for files so large that ``n`` of them would take more than
    :data:`SAMPLE_BYTES`, but at least two."""
    if isinstance(images, LazyImages):
        images = images.without_random()
    if isinstance(images, np.ndarray):
        return images
    images.check_same_shape()  # all the files, from their headers
    shapes = images.file_shapes
    if shapes is not None and len(shapes):
        # Huge images (a 9500 x 9500 file is 1 GiB as float32): fewer of them, so the
        # sample stays near SAMPLE_BYTES and the fit's memory check can speak first.
        largest = 4 * int(np.prod(shapes, axis=1).max())
        n = max(2, min(n, SAMPLE_BYTES // largest))
    indices = evenly_spaced(len(images), n)
    decoded = []
    for i in indices:
        image = images.load(int(i))
        if image.ndim == 2:
            image = image[..., None]
        if decoded and image.shape != decoded[0].shape:
            raise ImageInputError(
                f"Images differ in shape: image {indices[0]} is {decoded[0].shape} but image "
                f"{i} is {image.shape} (height, width, channels). "
                f"{mismatch_fix(decoded[0].shape, image.shape)}"
            )
        decoded.append(unit_float(image))
    sample = np.stack(decoded)
    if sample.shape[-1] not in SUPPORTED_CHANNELS:
        raise ImageInputError(
            f"The images have {sample.shape[-1]} channels; expected 1 (grayscale) or 3 "
            f"(RGB). Add a sklimg.preprocessing.ToRGB or Grayscale step."
        )
    return sample
