"""A feature cache keyed by image content and by the feature extractor.

Frozen features depend only on the image and on the extractor (architecture, weights,
input preprocessing). Keying each image's features by a digest of its content, inside a
folder keyed by a digest of the extractor's module (structure and every weight and
buffer), lets cross-validation folds and grid points that share images compute each
image once, and makes stale reuse impossible: another backbone, weight file or
normalisation hashes to another folder; another resize or preprocessing step changes
the image digest. Shards are written atomically (temporary file, then rename), so
parallel fits (``GridSearchCV(n_jobs=2)``) can share a cache folder.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import joblib
import numpy as np
from torch import nn

from sklimg._files import atomic_write
from sklimg._lazy import LazyImages

__all__ = [
    "FeatureCache",
    "cached_transform",
    "image_digests",
    "module_digest",
    "resolve_memory",
]

_DIGEST_BYTES = 16


def resolve_memory(memory) -> Path | None:
    """The cache folder from a ``memory`` parameter: None, a path, or a joblib.Memory."""
    if memory is None:
        return None
    if isinstance(memory, joblib.Memory):
        location = None if memory.location is None else Path(memory.location)
    else:
        location = Path(os.fspath(memory))
    if location is not None and location.exists() and not location.is_dir():
        raise ValueError(
            f"memory={str(location)!r} is a file; pass a folder for the feature cache (it "
            f"is created if missing), or memory=None."
        )
    return location


def module_digest(module: nn.Module) -> str:
    """Digest of a module's structure and of every parameter and buffer."""
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return joblib.hash((repr(module), state))


def image_digests(images) -> list[str] | None:
    """One content digest per image, or None when images are random (augmented).

    In-memory images hash their pixels; files hash their bytes; the operations a
    ``LazyImages`` applies (resizing, ...) are part of every digest.
    """
    if isinstance(images, LazyImages):
        if images.random:
            return None
        ops = joblib.hash(images.ops).encode()
        digests = []
        for item in images.source:
            h = hashlib.blake2b(ops, digest_size=_DIGEST_BYTES)
            if isinstance(item, str):
                h.update(Path(item).read_bytes())
            else:
                _update_array(h, np.asarray(item))
            digests.append(h.hexdigest())
        return digests
    out = []
    for image in images:
        h = hashlib.blake2b(digest_size=_DIGEST_BYTES)
        _update_array(h, image)
        out.append(h.hexdigest())
    return out


def _update_array(h, array: np.ndarray) -> None:
    h.update(f"{array.shape}{array.dtype}".encode())
    h.update(np.ascontiguousarray(array).tobytes())


class FeatureCache:
    """Features of images for one extractor, stored as shards under ``location``.

    Parameters
    ----------
    location : path-like
        The cache folder (the ``memory`` parameter).
    extractor_digest : str
        :func:`module_digest` of the feature extractor.
    """

    def __init__(self, location: Path, extractor_digest: str) -> None:
        self.folder = Path(location) / "sklimg-features" / extractor_digest

    def _load(self) -> dict[str, np.ndarray]:
        table: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard) as data:
                for key, row in zip(data["keys"].astype(str), data["features"], strict=True):
                    table[key] = row
        return table

    def get_or_compute(self, digests: list[str], compute) -> np.ndarray:
        """Features for ``digests``; ``compute(indices)`` makes the missing ones.

        Parameters
        ----------
        digests : list of str
            One digest per image, from :func:`image_digests`.
        compute : callable
            ``compute(indices) -> ndarray (len(indices), D)`` for the images not cached.

        Returns
        -------
        features : ndarray of shape (n_images, D)
        """
        table = self._load()
        missing = sorted({i for i, d in enumerate(digests) if d not in table})
        if missing:
            # Each distinct missing image is computed once, even if repeated in X.
            first_of = {}
            for i in missing:
                first_of.setdefault(digests[i], i)
            todo = sorted(first_of.values())
            new = np.asarray(compute(np.asarray(todo)), dtype=np.float32)
            self._write([digests[i] for i in todo], new)
            table.update(zip((digests[i] for i in todo), new, strict=True))
        return np.stack([table[d] for d in digests])

    def _write(self, keys: list[str], features: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.folder / f"{uuid.uuid4().hex}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys), features=features)


def cached_transform(transformer, images, memory) -> np.ndarray:
    """``transformer.transform(images)`` through the feature cache, when ``memory`` is set.

    For feature transformers whose output depends only on their parameters and on
    each image (HOG, LBP, ...): the extractor digest is their class and parameters.
    """
    location = resolve_memory(memory)
    digests = image_digests(images) if location is not None else None
    if digests is None:
        return transformer.transform(images)
    digest = joblib.hash((type(transformer).__qualname__, transformer.get_params()))
    return FeatureCache(location, digest).get_or_compute(
        digests, lambda indices: transformer.transform(images[indices])
    )
