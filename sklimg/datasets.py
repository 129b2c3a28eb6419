"""Datasets as images: shipped digits, Fashion-MNIST files, synthetic shapes, folders."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import urllib.request
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch, check_random_state

from sklimg.exceptions import ImageInputError
from sklimg.utils._sklearn_compat import Interval, StrOptions, validate_params

__all__ = [
    "FASHION_MNIST_CLASSES",
    "IMAGE_EXTENSIONS",
    "SHAPES",
    "DatasetNotFoundError",
    "load_digits_images",
    "load_fashion_mnist",
    "load_image_folder",
    "make_shapes",
]


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


# -------------------------------------------------------------------- Fashion-MNIST
class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are neither on disk nor downloadable; the message lists the
    places searched and how to provide the files."""


FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FASHION_APT_PACKAGE = "dataset-fashion-mnist"
_FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of the official .gz files (from the dataset's README), checked after download.
# Packaged copies are recompressed and differ, so files found on disk are checked
# by their IDX headers instead.
_FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_DOWNLOAD_TIMEOUT_S = 30


def _data_home(data_home) -> Path:
    """Where downloads go: ``data_home``, else ``$SKLIMG_DATA``, else ``~/sklimg_data``."""
    if data_home is not None:
        return Path(data_home).expanduser()
    if os.environ.get("SKLIMG_DATA"):
        return Path(os.environ["SKLIMG_DATA"]).expanduser()
    return Path.home() / "sklimg_data"


def _fashion_search_dirs(data_home) -> list[Path]:
    """Folders searched in order; a data home is tried as it is and with fashion-mnist/."""
    homes = [data_home] if data_home is not None else []
    if os.environ.get("SKLIMG_DATA"):
        homes.append(os.environ["SKLIMG_DATA"])
    dirs = [d for home in homes for d in (Path(home), Path(home) / "fashion-mnist")]
    dirs += [_FASHION_SYSTEM_DIR, Path.home() / "sklimg_data" / "fashion-mnist"]
    return list(dict.fromkeys(d.expanduser() for d in dirs))


def _find_idx(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format, gzipped or not) as a uint8 array."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"Could not read {str(path)!r}: {exc}. Delete the file so that it is "
            f"downloaded again, or reinstall it."
        ) from exc
    # Header: two zero bytes, the type code (0x08: unsigned byte), the number of
    # dimensions, then each dimension as a big-endian uint32.
    ndim = data[3] if len(data) >= 4 else 0
    offset = 4 + 4 * ndim
    if len(data) < offset or data[:3] != b"\x00\x00\x08" or ndim == 0:
        raise ValueError(
            f"{str(path)!r} is not an IDX file of unsigned bytes (bad header); delete "
            f"or replace it with the original from {_FASHION_URL}."
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - offset != math.prod(shape):
        raise ValueError(
            f"{str(path)!r} is truncated or corrupt: its header announces shape {shape} "
            f"({math.prod(shape)} bytes) but it holds {len(data) - offset}. Delete or "
            f"replace it with the original from {_FASHION_URL}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape).copy()


def _download(name: str, directory: Path) -> Path:
    """Fetch ``name``.gz from the official mirror into ``directory``, checking its MD5."""
    url = f"{_FASHION_URL}{name}.gz"
    target = directory / f"{name}.gz"
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".gz.part")
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        partial.write_bytes(response.read())
    digest = hashlib.md5(partial.read_bytes(), usedforsecurity=False).hexdigest()
    if digest != _FASHION_MD5[target.name]:
        partial.unlink()
        raise OSError(f"{url} gave a file with MD5 {digest}, not {_FASHION_MD5[target.name]}")
    partial.replace(target)
    return target


def _fashion_files(split: str, data_home, download: bool) -> tuple[Path, Path]:
    names = _FASHION_FILES[split]
    dirs = _fashion_search_dirs(data_home)
    for directory in dirs:
        found = [_find_idx(directory, name) for name in names]
        if all(found):
            return found[0], found[1]
    problem = "download=False"
    if download:
        target = _data_home(data_home) / "fashion-mnist"
        try:
            return _download(names[0], target), _download(names[1], target)
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
            problem = f"downloading them from {_FASHION_URL} into {str(target)!r} failed: {exc}"
    looked = "\n  ".join(str(d) for d in dirs)
    raise DatasetNotFoundError(
        f"Fashion-MNIST {split} files ({names[0]}[.gz] and {names[1]}[.gz]) were not "
        f"found in any of:\n  {looked}\nand {problem}. Provide them in one of these "
        f"ways:\n"
        f"  - on Debian or Ubuntu: sudo apt-get install {_FASHION_APT_PACKAGE} (installs "
        f"them in {_FASHION_SYSTEM_DIR});\n"
        f"  - download the four .gz files from {_FASHION_URL} into "
        f"{Path.home() / 'sklimg_data' / 'fashion-mnist'};\n"
        f"  - or put them in a folder of your choice and pass data_home=<folder> or set "
        f"the SKLIMG_DATA environment variable to it."
    )


@validate_params(
    {
        "data_home": [str, os.PathLike, None],
        "subset": [StrOptions({"train", "test", "all"})],
        "return_X_y": ["boolean"],
        "download": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_fashion_mnist(
    data_home: str | os.PathLike | None = None,
    *,
    subset: str = "train",
    return_X_y: bool = False,
    download: bool = True,
):
    """Zalando's Fashion-MNIST: 28x28 grayscale images of 10 kinds of clothing.

    60,000 training and 10,000 test images (Xiao, Rasul and Vollgraf, 2017), read from
    the standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped or not).
    The first folder that holds the files of the subset is used, searched in order:

    1. ``data_home`` and ``data_home/fashion-mnist``, when given;
    2. ``$SKLIMG_DATA`` and ``$SKLIMG_DATA/fashion-mnist``, when set;
    3. ``/usr/share/datasets/fashion-mnist`` (the Debian/Ubuntu package
       ``dataset-fashion-mnist``);
    4. ``~/sklimg_data/fashion-mnist``.

    When none has them and ``download`` is true, they are downloaded from the
    official mirror into ``fashion-mnist/`` under ``data_home``, ``$SKLIMG_DATA``
    or ``~/sklimg_data`` (the first given), and their checksums verified.

    Parameters
    ----------
    data_home : str or path-like, default=None
        A folder holding the files, or a data folder with a ``fashion-mnist``
        subfolder.
    subset : {"train", "test", "all"}, default="train"
        The official training set, test set, or both (training images first).
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.
    download : bool, default=True
        Download the files when they are not found.

    Returns
    -------
    data : Bunch
        ``images``: ndarray of shape (n, 28, 28), ``uint8`` (0-255, white clothes on
        black); ``target``: ndarray of shape (n,), ``int64`` labels 0-9;
        ``target_names``: the class names (``"T-shirt/top"``, ``"Trouser"``, ...);
        ``filenames``: the files read; ``DESCR``.
    (images, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DatasetNotFoundError
        If the files are not found and cannot be downloaded; a
        ``FileNotFoundError`` whose message lists the folders searched and the ways
        to provide the files.
    ValueError
        If a file is corrupt or truncated.

    Examples
    --------
    >>> from sklimg.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:3]  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'), array([9, 2, 1]))
    """
    splits = ("train", "test") if subset == "all" else (subset,)
    images, targets, filenames = [], [], []
    for split in splits:
        images_path, labels_path = _fashion_files(split, data_home, download)
        split_images, labels = _read_idx(images_path), _read_idx(labels_path)
        if split_images.ndim != 3 or labels.ndim != 1 or len(split_images) != len(labels):
            raise ValueError(
                f"{str(images_path)!r} (shape {split_images.shape}) and {str(labels_path)!r} "
                f"(shape {labels.shape}) are not a matching pair of Fashion-MNIST image and "
                f"label files."
            )
        images.append(split_images)
        targets.append(labels.astype(np.int64))
        filenames += [str(images_path), str(labels_path)]
    images, target = np.concatenate(images), np.concatenate(targets)
    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        target=target,
        target_names=np.array(FASHION_MNIST_CLASSES),
        filenames=filenames,
        DESCR=(
            f"Fashion-MNIST ({subset}): {len(images)} grayscale 28x28 images of Zalando "
            f"articles in 10 classes. Xiao, Rasul and Vollgraf (2017), arXiv:1708.07747; "
            f"MIT licence. Read from {', '.join(filenames)}."
        ),
    )


# ------------------------------------------------------------------ synthetic shapes
SHAPES = ("circle", "square", "triangle")


def _polygon_vertices(centre, radius: float, n_vertices: int) -> np.ndarray:
    """Vertices (row, col) of an upright regular polygon: a triangle pointing up, an
    axis-aligned square."""
    start = np.pi / 2 if n_vertices % 2 else np.pi / n_vertices
    angles = start + 2 * np.pi * np.arange(n_vertices) / n_vertices
    return np.stack([centre[0] - radius * np.sin(angles), centre[1] + radius * np.cos(angles)])


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "size": [Interval(Integral, 8, None, closed="left")],
        "n_classes": [Interval(Integral, 2, len(SHAPES), closed="both")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_shapes(
    n_samples: int = 600,
    size: int = 32,
    *,
    n_classes: int = 3,
    noise: float = 0.1,
    random_state=None,
    return_X_y: bool = False,
):
    """Synthetic RGB images of circles, squares and triangles, to classify by shape.

    Each image shows one filled shape of random size (circumradius from 15% to 35%
    of the image), position and colour on a background of another random
    colour, plus Gaussian pixel noise. Only the shape tells the classes apart, and it
    can be anywhere: with 500 training and 500 held-out images, logistic regression
    on the raw pixels stays at chance (0.33), HOG + SVC reaches 0.92
    (``tests/test_datasets.py`` checks both) and the default
    :class:`~sklimg.ImageClassifier` (a small CNN, 15 epochs) 0.98.

    Parameters
    ----------
    n_samples : int, default=600
        Number of images; class counts differ by at most one.
    size : int, default=32
        Height and width of the images, at least 8.
    n_classes : {2, 3}, default=3
        Use the first ``n_classes`` of ``("circle", "square", "triangle")``.
    noise : float, default=0.1
        Standard deviation of the pixel noise, on the [0, 1] scale.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible images.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``images``: ndarray of shape (n_samples, size, size, 3), ``uint8`` like
        decoded image files (sklimg scales them to [0, 1]); ``target``: int labels
        indexing ``target_names``; ``DESCR``.
    (images, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from sklimg.datasets import make_shapes
    >>> X, y = make_shapes(n_samples=6, size=16, random_state=0, return_X_y=True)
    >>> X.shape, X.dtype, sorted(y.tolist())
    ((6, 16, 16, 3), dtype('uint8'), [0, 0, 1, 1, 2, 2])
    """
    from skimage.draw import disk, polygon

    rng = check_random_state(random_state)
    target = rng.permutation(np.arange(n_samples) % n_classes)
    images = np.empty((n_samples, size, size, 3), dtype=np.float32)
    for i, label in enumerate(target):
        background = rng.uniform(0, 1, size=3)
        # A colour far enough from the background that the shape is visible.
        colour = rng.uniform(0, 1, size=3)
        while np.abs(colour - background).max() < 0.4:
            colour = rng.uniform(0, 1, size=3)
        radius = rng.uniform(0.15, 0.35) * size
        centre = rng.uniform(radius, size - radius, size=2)
        if SHAPES[label] == "circle":
            rows, cols = disk(tuple(centre), radius, shape=(size, size))
        else:
            vertices = _polygon_vertices(centre, radius, 4 if label == 1 else 3)
            rows, cols = polygon(vertices[0], vertices[1], shape=(size, size))
        images[i] = background
        images[i, rows, cols] = colour
    images += rng.normal(0, noise, size=images.shape).astype(np.float32)
    images = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        target=target,
        target_names=np.array(SHAPES[:n_classes]),
        DESCR=(
            f"Synthetic shapes: {n_samples} RGB {size}x{size} images of "
            f"{', '.join(SHAPES[:n_classes])} of random size, position and "
            f"colour on random backgrounds with pixel noise (std {noise})."
        ),
    )


# --------------------------------------------------------------------- image folders
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _visible(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".")


@validate_params(
    {"root": [str, os.PathLike], "extensions": ["array-like", str]},
    prefer_skip_nested_validation=True,
)
def load_image_folder(
    root: str | os.PathLike, *, extensions=IMAGE_EXTENSIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Image paths and labels from a folder with one subfolder per class.

    The layout of torchvision's ``ImageFolder`` and Keras'
    ``image_dataset_from_directory``::

        root/cat/001.jpg
        root/cat/more/002.png     (nested folders belong to their class folder)
        root/dog/001.jpg

    Nothing is decoded: pass the paths straight to sklimg estimators, which read
    them lazily, or to :class:`sklimg.preprocessing.LoadImages`.

    Parameters
    ----------
    root : str or path-like
        The folder holding the class folders.
    extensions : tuple of str, default=IMAGE_EXTENSIONS
        File extensions counted as images, compared case-insensitively
        (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff``,
        ``.webp``). Hidden files and folders (names starting with ``.``) are skipped.

    Returns
    -------
    paths : ndarray of str, shape (n_images,)
        Image paths (``root`` joined with the relative path), sorted by class, then
        by path, so the order is the same on every machine.
    labels : ndarray of str, shape (n_images,)
        The name of each image's class folder.

    Raises
    ------
    ImageInputError
        If ``root`` does not exist or is not a folder, holds no class folders (empty,
        or images directly in it), holds images beside the class folders, if a class
        folder holds no images, or if ``root`` is one level above the class folders:
        it holds dataset splits (``train/``, ``val/``, ``test/``, ...) that hold
        class folders, or a single folder that holds them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sklimg.datasets import load_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for label in ("cat", "dog"):
    ...     (root / label).mkdir()
    ...     Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / label / "a.png")
    >>> paths, labels = load_image_folder(root)
    >>> [pathlib.Path(p).relative_to(root).as_posix() for p in paths], labels.tolist()
    (['cat/a.png', 'dog/a.png'], ['cat', 'dog'])
    """
    extensions = (extensions,) if isinstance(extensions, str) else tuple(extensions)
    suffixes = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    root_path = Path(root)
    if not root_path.is_dir():
        what = "is a file, not a folder" if root_path.exists() else "does not exist"
        raise ImageInputError(
            f"Image folder {str(root)!r} {what}. Pass the folder that holds one "
            f"subfolder per class (root/<class>/<image>)."
        )

    def is_image(name: str) -> bool:
        return name.lower().endswith(suffixes)

    with os.scandir(root_path) as entries:
        entries = sorted(filter(_visible, entries), key=lambda e: e.name)
    class_dirs = [e for e in entries if e.is_dir()]
    loose = [e.name for e in entries if e.is_file() and is_image(e.name)]
    layout = (
        "Expected one subfolder per class with the images inside, e.g. root/cat/1.jpg "
        "and root/dog/2.jpg"
    )
    if not class_dirs:
        found = f"{len(loose)} images directly in it" if loose else "no class folders"
        raise ImageInputError(
            f"Image folder {str(root)!r} has {found}. {layout}; move each image into "
            f"the folder of its class."
        )
    if loose:
        raise ImageInputError(
            f"Image folder {str(root)!r} holds {len(loose)} images directly in it (e.g. "
            f"{loose[0]!r}) beside the class folders; their class is unknown. {layout}: "
            f"move them into their class folders, or elsewhere."
        )

    _check_not_one_level_up(root, class_dirs, is_image)

    paths, labels, empty = [], [], []
    for class_dir in class_dirs:
        found = []
        for folder, subdirs, files in os.walk(class_dir.path, followlinks=True):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            found += [
                os.path.join(folder, f) for f in files if not f.startswith(".") and is_image(f)
            ]
        if not found:
            empty.append(class_dir.name)
        paths += sorted(found)
        labels += [class_dir.name] * len(found)
    if empty:
        raise ImageInputError(
            f"Class folders without images (extensions {', '.join(suffixes)}) in "
            f"{str(root)!r}: {', '.join(map(repr, empty))}. Add images, remove those "
            f"folders, or pass extensions=... to count other files."
        )
    return np.array(paths, dtype=str), np.array(labels, dtype=str)


# Folder names of dataset splits (train/, val/, test/ ...), compared in lower case.
_SPLIT_NAMES = frozenset(
    {"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval"}
)


def _check_not_one_level_up(root, class_dirs: list, is_image) -> None:
    """Refuse a folder one level above the class folders, whose subfolder names would
    become the classes: a dataset split into train/ and test/ (classes 'test' and
    'train'), or the class folders wrapped in one more folder (a single class)."""

    def subfolders(entry) -> list[str]:
        with os.scandir(entry.path) as inside:
            return sorted(e.name for e in inside if _visible(e) and e.is_dir())

    def holds_images(entry) -> bool:
        with os.scandir(entry.path) as inside:
            return any(e.is_file() and is_image(e.name) for e in inside if _visible(e))

    names = [entry.name for entry in class_dirs]
    if all(name.lower() in _SPLIT_NAMES for name in names):
        nested = {entry.name: subfolders(entry) for entry in class_dirs}
        if all(nested.values()):
            first = next((n for n in names if n.lower() in ("train", "training")), names[0])
            raise ImageInputError(
                f"Image folder {str(root)!r} holds the splits {names} of a dataset, each "
                f"with class folders (e.g. {first}/{nested[first][0]}), so the classes "
                f"would be the split names. Pass one split's folder, e.g. "
                f"{os.path.join(str(root), first)!r}, and keep the others for evaluation."
            )
    if len(class_dirs) == 1 and not holds_images(class_dirs[0]):
        inner = subfolders(class_dirs[0])
        if len(inner) >= 2:
            deeper = os.path.join(str(root), names[0])
            shown = ", ".join(map(repr, inner[:5])) + (", ..." if len(inner) > 5 else "")
            raise ImageInputError(
                f"Image folder {str(root)!r} holds a single folder, {names[0]!r}, whose "
                f"subfolders ({shown}) look like the classes. Pass {deeper!r} instead."
            )
