"""Duplicate images: identical decoded pixels, and near-identical thumbnails.

An exact duplicate has the same decoded pixels as an earlier image (a content hash of
the pixels, not of the file, so the same picture saved twice as PNG is found, and a
PNG and its lossless re-save are one image). A near duplicate is an image whose
thumbnail is within a cosine similarity ``threshold`` of an earlier one's.

The thumbnail is a fixed embedding, not a model's features: each image as grayscale,
resized (with antialiasing) to 32x32, blurred by a Gaussian of one thumbnail pixel, its
mean subtracted and scaled to unit norm.
Fixed, so the duplicates found do not depend on the model audited nor need a fitted
one; of a fixed size, so copies saved at another size are compared with the original;
centred and normalised, so a copy that is brighter or of more contrast is the same
thumbnail; small and blurred, so re-encoding noise (JPEG) and the shift of a resize
average out while the layout of the image stays. ``benchmarks/audit.py`` measures the
default threshold, 0.995, on Fashion-MNIST: JPEG (quality 75) copies and copies resized
by 0.9 or 1.15 are all caught, while 0.9% of distinct images match another one (not
inspected: some may be real near duplicates of the data set). 8x8 digits are too small for a resize
to be slight: a resized copy of one is rarely caught (JPEG copies are).
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.transform import resize
from sklearn.neighbors import NearestNeighbors

from sklimg._lazy import LazyImages
from sklimg._pixels import unit_float

__all__ = [
    "THUMBNAIL_BLUR",
    "THUMBNAIL_SIDE",
    "exact_digests",
    "first_duplicates",
    "matches_across",
    "outlier_scores",
    "thumbnails",
]

#: The side of the thumbnails near duplicates are compared by.
THUMBNAIL_SIDE = 32
#: The blur of the thumbnails, in thumbnail pixels.
THUMBNAIL_BLUR = 1.0


def _each(images):
    """The images one at a time, decoded (files are read here)."""
    if isinstance(images, LazyImages):
        images = images.without_random()
    for i in range(len(images)):
        yield np.asarray(images[i])


def exact_digests(images) -> list[str]:
    """A digest of each image's decoded pixels (with its shape and dtype).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C), list of arrays, or LazyImages

    Returns
    -------
    digests : list of str
    """
    digests = []
    for image in _each(images):
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{image.shape}{image.dtype}".encode())
        h.update(np.ascontiguousarray(image).tobytes())
        digests.append(h.hexdigest())
    return digests


def thumbnails(images, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """The fixed embedding near duplicates are found by (see the module's notes).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C), list of arrays, or LazyImages
    side : int, default=32

    Returns
    -------
    embedding : ndarray of shape (n, side * side), float32
        Rows of unit norm (zero for a flat image, which has no layout to compare).

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.duplicates import thumbnails
    >>> X = load_digits_images().images[:2]
    >>> at_32 = thumbnails(np.kron(X, np.ones((1, 4, 4))))
    >>> at_24_paler = thumbnails(np.kron(X, np.ones((1, 3, 3))) * 0.5 + 0.2)
    >>> (at_32 * at_24_paler).sum(axis=1).round(3)  # each image and its copy
    array([0.999, 1.   ], dtype=float32)
    >>> (at_32[0] @ at_32[1]).round(2)  # two digits
    np.float32(0.29)
    """
    rows = []
    for image in _each(images):
        gray = unit_float(image)
        gray = gray.mean(axis=-1) if gray.ndim == 3 else gray
        small = resize(gray, (side, side), anti_aliasing=True, preserve_range=True)
        small = gaussian_filter(small, THUMBNAIL_BLUR).ravel()
        small = small - small.mean()
        norm = np.linalg.norm(small)
        rows.append(small / norm if norm > 1e-8 else np.zeros_like(small))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), side * side)


def first_duplicates(digests: list[str], embedding: np.ndarray, threshold: float) -> np.ndarray:
    """For each image, the position of the first earlier image it duplicates, else -1.

    An identical image (same digest) is preferred; else the first earlier image whose
    thumbnail has a cosine similarity of at least ``threshold``.

    Parameters
    ----------
    digests : list of str
        From :func:`exact_digests`.
    embedding : ndarray of shape (n, d)
        From :func:`thumbnails`.
    threshold : float
        In (0, 1]; 1 finds identical images only.

    Returns
    -------
    first : ndarray of shape (n,), int
    """
    n = len(digests)
    first = np.full(n, -1, dtype=np.int64)
    seen: dict[str, int] = {}
    for i, digest in enumerate(digests):
        if digest in seen:
            first[i] = seen[digest]
        else:
            seen[digest] = i
    if threshold >= 1 or n < 2:
        return first
    for i, near in enumerate(_neighbours(embedding, embedding, threshold)):
        earlier = near[near < i]
        if first[i] < 0 and len(earlier):
            first[i] = earlier.min()
    return first


def matches_across(
    digests: list[str],
    embedding: np.ndarray,
    other_digests: list[str],
    other_embedding: np.ndarray,
    threshold: float,
) -> list[np.ndarray]:
    """For each image, the positions of the images of another set that it duplicates.

    Parameters
    ----------
    digests, embedding
        Of the images, from :func:`exact_digests` and :func:`thumbnails`.
    other_digests, other_embedding
        Of the other set (the same set, to find duplicates within it).
    threshold : float
        As for :func:`first_duplicates`.

    Returns
    -------
    matches : list of ndarray of int
        One array per image, sorted.
    """
    by_digest: dict[str, list[int]] = {}
    for j, digest in enumerate(other_digests):
        by_digest.setdefault(digest, []).append(j)
    exact = [np.asarray(by_digest.get(d, []), dtype=np.int64) for d in digests]
    if threshold >= 1 or not len(other_digests):
        return exact
    near = _neighbours(embedding, other_embedding, threshold)
    return [np.union1d(e, n).astype(np.int64) for e, n in zip(exact, near, strict=True)]


def _neighbours(queries: np.ndarray, reference: np.ndarray, threshold: float) -> list:
    """Positions in ``reference`` within cosine similarity ``threshold`` of each query
    (flat images, of zero embedding, match nothing but identical pixels)."""
    flat = ~np.any(queries, axis=1)
    index = NearestNeighbors(radius=1 - threshold, metric="cosine").fit(reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        near = index.radius_neighbors(queries, return_distance=False)
    flat_reference = ~np.any(reference, axis=1)
    return [
        np.empty(0, dtype=np.int64) if flat[i] else np.setdiff1d(n, np.flatnonzero(flat_reference))
        for i, n in enumerate(near)
    ]


def outlier_scores(embedding: np.ndarray, k: int = 10) -> np.ndarray:
    """How unlike the other images each image is: the mean cosine distance of its
    thumbnail to its ``k`` nearest other thumbnails (0: among copies of itself; higher:
    more unusual).

    Parameters
    ----------
    embedding : ndarray of shape (n, d)
        From :func:`thumbnails`.
    k : int, default=10
        Neighbours averaged over (fewer when there are fewer other images).

    Returns
    -------
    scores : ndarray of shape (n,), float64
    """
    n = len(embedding)
    if n < 2:
        return np.zeros(n)
    k = min(k, n - 1)
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(embedding)
    with np.errstate(invalid="ignore", divide="ignore"):
        distances, _ = index.kneighbors(embedding)
    # The nearest is the image itself (distance 0), unless a copy ties with it.
    return np.nan_to_num(distances[:, 1:].mean(axis=1), nan=1.0).astype(np.float64)
