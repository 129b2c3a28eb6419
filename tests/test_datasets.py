import gzip
import hashlib
import io
import os
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

import sklimg.datasets as datasets
from sklimg.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetNotFoundError,
    load_fashion_mnist,
    load_image_folder,
    make_shapes,
)
from sklimg.exceptions import ImageInputError
from sklimg.features import HOG, PixelFeatures
from sklimg.utils._sklearn_compat import InvalidParameterError


# ------------------------------------------------------------------ Fashion-MNIST
def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fashion(folder: Path, split: str, n: int, *, gz: bool = True, seed: int = 0):
    """IDX files like the real ones, with ``n`` random images; returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = _idx_bytes(array)
        name = f"{prefix}-{kind}-ubyte"
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


@pytest.fixture
def no_installed_fashion(tmp_path, monkeypatch):
    """Hide the system copy and the user's data, so only the test's folders count."""
    monkeypatch.setattr(datasets, "_FASHION_SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKLIMG_DATA", raising=False)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_reads_idx_files_from_data_home(no_installed_fashion, gz):
    folder = no_installed_fashion / "data"
    images, labels = _write_fashion(folder, "train", 7, gz=gz)
    bunch = load_fashion_mnist(folder, download=False)
    assert_array_equal(bunch.images, images)
    assert bunch.images.dtype == np.uint8 and bunch.images.flags.writeable
    assert_array_equal(bunch.target, labels)
    assert bunch.target.dtype == np.int64
    assert bunch.target_names.tolist() == list(FASHION_MNIST_CLASSES)
    assert bunch.target_names[0] == "T-shirt/top" and bunch.target_names[9] == "Ankle boot"
    assert len(bunch.filenames) == 2 and "Fashion-MNIST" in bunch.DESCR


def test_fashion_search_order_subsets_and_env(no_installed_fashion, monkeypatch):
    root = no_installed_fashion
    train, _ = _write_fashion(root / "env" / "fashion-mnist", "train", 5, seed=1)
    test, _ = _write_fashion(root / "env" / "fashion-mnist", "test", 3, seed=2)
    monkeypatch.setenv("SKLIMG_DATA", str(root / "env"))
    X, _ = load_fashion_mnist(subset="test", download=False, return_X_y=True)
    assert_array_equal(X, test)
    X, _ = load_fashion_mnist(subset="all", download=False, return_X_y=True)
    assert_array_equal(X, np.concatenate([train, test]))
    # data_home comes before $SKLIMG_DATA.
    mine, _ = _write_fashion(root / "mine", "train", 4, seed=3)
    assert_array_equal(load_fashion_mnist(root / "mine", download=False).images, mine)


def test_fashion_missing_files_say_where_and_how(no_installed_fashion):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(no_installed_fashion / "nowhere", download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for expected in (
        "train-images-idx3-ubyte[.gz]",
        str(no_installed_fashion / "nowhere" / "fashion-mnist"),
        str(no_installed_fashion / "system"),
        "download=False",
        "apt-get install dataset-fashion-mnist",
        "SKLIMG_DATA",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ):
        assert expected in message, expected


def test_fashion_download_failure_is_reported(no_installed_fashion, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match="downloading them from .* no route to host"):
        load_fashion_mnist(no_installed_fashion / "home", subset="test")


def test_fashion_download_checks_md5_and_caches(no_installed_fashion, monkeypatch):
    source = no_installed_fashion / "mirror"
    images, labels = _write_fashion(source, "test", 3)
    fetched = []

    def serve(url, timeout):
        fetched.append(url)
        return io.BytesIO((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(datasets.urllib.request, "urlopen", serve)
    with pytest.raises(DatasetNotFoundError, match="MD5"):
        load_fashion_mnist(subset="test")  # our files are not the official ones
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in source.iterdir()}
    monkeypatch.setattr(datasets, "_FASHION_MD5", md5)
    X, y = load_fashion_mnist(subset="test", return_X_y=True)
    assert_array_equal(X, images) and assert_array_equal(y, labels)
    cache = no_installed_fashion / "home" / "sklimg_data" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(md5)
    n_fetched = len(fetched)
    load_fashion_mnist(subset="test")  # found in the cache now
    assert len(fetched) == n_fetched


def test_fashion_corrupt_files(no_installed_fashion):
    folder = no_installed_fashion / "data"
    _write_fashion(folder, "train", 4, gz=False)
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt.*announces shape"):
        load_fashion_mnist(folder, download=False)
    images.write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_fashion_mnist(folder, download=False)
    images.write_bytes(_idx_bytes(np.zeros((3, 28, 28))))  # 3 images, 4 labels
    with pytest.raises(ValueError, match="not a matching pair"):
        load_fashion_mnist(folder, download=False)


def test_fashion_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="'subset' parameter"):
        load_fashion_mnist(subset="validation")


def test_real_fashion_mnist_test_set():
    try:
        bunch = load_fashion_mnist(subset="test", download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST files not installed: {str(exc).splitlines()[0]}")
    assert bunch.images.shape == (10000, 28, 28) and bunch.images.dtype == np.uint8
    assert_array_equal(np.bincount(bunch.target), np.full(10, 1000))


# ---------------------------------------------------------------------- shapes
def test_make_shapes_is_reproducible_and_balanced():
    bunch = make_shapes(n_samples=10, size=20, random_state=0)
    X, y = make_shapes(n_samples=10, size=20, random_state=0, return_X_y=True)
    assert_array_equal(bunch.images, X)
    assert X.shape == (10, 20, 20, 3) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == [4, 3, 3]
    assert bunch.target_names.tolist() == ["circle", "square", "triangle"]
    other, _ = make_shapes(n_samples=10, size=20, random_state=1, return_X_y=True)
    assert not np.array_equal(X, other)
    _, y2 = make_shapes(n_samples=9, n_classes=2, random_state=0, return_X_y=True)
    assert set(y2) == {0, 1}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(n_classes=4), "'n_classes' parameter"),
        (dict(size=4), "'size' parameter"),
        (dict(noise=-1.0), "'noise' parameter"),
        (dict(n_samples=0), "'n_samples' parameter"),
    ],
)
def test_make_shapes_invalid_parameters(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        make_shapes(**params)


def test_shapes_defeat_a_linear_model_on_pixels_but_not_hog():
    """Held-out accuracy with 500 training images: logistic regression on the pixels
    stays near chance (0.33 here; 0.35-0.40 without regularisation, which takes 8 s to
    converge), HOG + SVC reaches about 0.9."""
    X, y = make_shapes(n_samples=1000, random_state=0, return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, random_state=0, stratify=y
    )
    linear = make_pipeline(PixelFeatures(), LogisticRegression(C=1e-3, max_iter=1000))
    assert linear.fit(X_train, y_train).score(X_test, y_test) < 0.6
    edges = make_pipeline(HOG(cells_per_block=3), SVC(C=10))
    assert edges.fit(X_train, y_train).score(X_test, y_test) >= 0.85


# --------------------------------------------------------------- image folders
def _image(path: Path, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(size, dtype=np.uint8)).save(path)


def test_image_folder_lists_images_by_class(tmp_path):
    _image(tmp_path / "dog" / "b.png")
    _image(tmp_path / "dog" / "A.JPG")
    _image(tmp_path / "cat" / "nested" / "c.png")
    _image(tmp_path / "cat" / "a.PNG")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    _image(tmp_path / "cat" / ".hidden.png")
    _image(tmp_path / ".cache" / "x.png")
    paths, labels = load_image_folder(tmp_path)
    relative = [Path(p).relative_to(tmp_path).as_posix() for p in paths]
    assert relative == ["cat/a.PNG", "cat/nested/c.png", "dog/A.JPG", "dog/b.png"]
    assert labels.tolist() == ["cat", "cat", "dog", "dog"]
    assert paths.dtype.kind == "U" and labels.dtype.kind == "U"
    paths, labels = load_image_folder(str(tmp_path), extensions=("png",))
    assert labels.tolist() == ["cat", "cat", "dog"]
    features = HOG(pixels_per_cell=2, cells_per_block=1).fit_transform(paths)
    assert features.shape == (3, 3 * 2 * 9)  # 6x5 images: 3x2 cells of 9 orientations


def test_image_folder_errors(tmp_path):
    with pytest.raises(ImageInputError, match="'.*missing' does not exist.*one subfolder"):
        load_image_folder(tmp_path / "missing")
    _image(tmp_path / "file.png")
    with pytest.raises(ImageInputError, match="is a file, not a folder"):
        load_image_folder(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageInputError, match="has no class folders.*root/cat/1.jpg"):
        load_image_folder(tmp_path / "empty")
    for name in ("a.png", "b.jpg"):
        _image(tmp_path / "flat" / name)
    with pytest.raises(ImageInputError, match="has 2 images directly in it.*move each image"):
        load_image_folder(tmp_path / "flat")
    _image(tmp_path / "flat" / "cat" / "c.png")
    with pytest.raises(ImageInputError, match="2 images directly in it .*'a.png'.*beside"):
        load_image_folder(tmp_path / "flat")
    _image(tmp_path / "classes" / "cat" / "a.png")
    (tmp_path / "classes" / "dog").mkdir()
    (tmp_path / "classes" / "dog" / "readme.txt").write_text("")
    with pytest.raises(ImageInputError, match="Class folders without images.*'dog'"):
        load_image_folder(tmp_path / "classes")
    with pytest.raises(InvalidParameterError, match="'root' parameter"):
        load_image_folder(3)


def test_image_folder_order_does_not_depend_on_creation_order(tmp_path):
    for name in ("z.png", "a.png", "m.png"):
        _image(tmp_path / "b" / name)
        _image(tmp_path / "a" / name)
    paths, _ = load_image_folder(tmp_path)
    assert [os.path.basename(p) for p in paths] == ["a.png", "m.png", "z.png"] * 2
