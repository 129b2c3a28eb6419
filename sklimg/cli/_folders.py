"""The images of a class folder as the commands that train on them read them: one size
(``--image-size`` when they differ) and one channel count."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from sklimg.cli._commands import CommandError
from sklimg.preprocessing import LazyImages, Resize

__all__ = ["folder_images"]


def folder_images(paths: np.ndarray, root: str, image_size: tuple[int, int] | None):
    """The images of a folder as LazyImages of one size and channel count (resized to
    ``image_size`` when given).

    Reads each file's header (size, colour mode, EXIF orientation), nothing more.

    Returns
    -------
    images : LazyImages
    size : tuple of int
        ``(height, width)`` of every image after resizing.
    channels : int
        1 if every file is grayscale, else 3 (grayscale files are repeated to RGB,
        by the validation of the images, as everywhere in sklimg).
    """
    images = LazyImages(paths)
    images.check_files()  # every bad file reported at once, before anything else
    # (height, width, grayscale) each file decodes to, from the headers just read.
    headers = [(int(h), int(w), c == 1) for h, w, c in images.file_shapes]
    first_of_size: dict[tuple[int, int], str] = {}
    for path, (height, width, _) in zip(paths, headers, strict=True):
        first_of_size.setdefault((height, width), path)
    if image_size is None:
        if len(first_of_size) > 1:
            counts = Counter((height, width) for height, width, _ in headers)
            (common, _), (other, _) = counts.most_common(2)
            raise CommandError(
                f"The images in {root!r} differ in size ({len(counts)} sizes among "
                f"{len(paths)} images): {_relative(first_of_size[common], root)!r} is "
                f"{common[0]}x{common[1]} and {_relative(first_of_size[other], root)!r} is "
                f"{other[0]}x{other[1]} (height x width). Pass --image-size to resize them "
                f"all, e.g. --image-size {common[0]}x{common[1]}."
            )
        size = next(iter(first_of_size))
    else:
        size = image_size
        if set(first_of_size) != {size}:
            images = Resize(size).fit_transform(images)
    # A folder mixing grayscale and colour files trains on RGB, as in Python.
    channels = 1 if all(gray for _, _, gray in headers) else 3
    return images, size, channels


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root)
