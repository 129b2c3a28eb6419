import numpy as np
import pytest
from sklearn.exceptions import DataConversionWarning

from sklimg.exceptions import ImageDtypeError, ImageInputError
from sklimg.utils.validation import check_images, check_labels, check_same_shape


def test_grayscale_rgb_and_flat_shapes():
    assert check_images(np.zeros((4, 8, 6))).shape == (4, 8, 6, 1)
    assert check_images(np.zeros((4, 8, 6, 3))).shape == (4, 8, 6, 3)
    assert check_images(np.zeros((4, 8, 6, 1))).shape == (4, 8, 6, 1)
    assert check_images(np.zeros((4, 64))).shape == (4, 8, 8, 1)
    assert check_images(np.zeros((4, 48)), image_shape=(8, 6)).shape == (4, 8, 6, 1)
    assert check_images(np.zeros((4, 48)), image_shape=(4, 4, 3)).shape == (4, 4, 4, 3)


def test_dtypes():
    X8 = np.full((2, 4, 4), 255, dtype=np.uint8)
    assert check_images(X8).dtype == np.uint8  # kept compact, scaled on the fly
    X16 = np.full((2, 4, 4), 65535, dtype=np.uint16)
    out = check_images(X16)
    assert out.dtype == np.float32 and out.max() == 1.0
    assert check_images(np.ones((2, 4, 4), dtype=bool)).dtype == np.float32
    Xf = np.arange(32, dtype=np.float64).reshape(2, 4, 4)
    np.testing.assert_array_equal(check_images(Xf)[..., 0], Xf.astype(np.float32))


def test_list_of_arrays():
    imgs = [np.full((5, 5), i, dtype=np.float32) for i in range(3)]
    out = check_images(imgs)
    assert out.shape == (3, 5, 5, 1)
    np.testing.assert_array_equal(out[2], 2)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.zeros((3,)), ImageInputError, r"1 dimensions .* expected \(n_samples, height"),
        (np.zeros((2, 3, 4, 5, 6)), ImageInputError, "5 dimensions"),
        (np.zeros((0, 8, 8)), ImageInputError, "empty"),
        ([], ImageInputError, "empty"),
        (np.zeros((3, 0, 8)), ImageInputError, "0 pixels"),
        (
            np.zeros((2, 8, 8, 5)),
            ImageInputError,
            r"5 channels .* expected 1 or 3 \(1 grayscale, 3 RGB\)",
        ),
        (np.zeros((2, 8, 8, 4)), ImageInputError, r"Drop the alpha channel with X\[\.\.\., :3\]"),
        (np.zeros((2, 3, 8, 8)), ImageInputError, r"channels-first; use np.moveaxis\(X, 1, -1\)"),
        (np.zeros((2, 50)), ImageInputError, "not a square image; pass image_shape"),
        (np.array([["a", "b"]], dtype=object), ImageDtypeError, "numeric pixel values"),
        (np.zeros((2, 4, 4), dtype=complex), ImageDtypeError, "numeric pixel values"),
        ("not images", ImageDtypeError, "array or a list of arrays"),
        (None, ImageInputError, "X is None"),
        (
            [np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((6, 8))],
            ImageInputError,
            r"image 2 has shape \(6, 8\).*same size with sklimg.preprocessing steps.*Resize",
        ),
        (["a.png", "b.png"], ImageInputError, "file paths"),
    ],
)
def test_bad_images(X, error, match):
    with pytest.raises(error, match=match):
        check_images(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_pixels(bad):
    X = np.zeros((3, 4, 4), dtype=np.float32)
    X[1, 2, 2] = bad
    with pytest.raises(ImageInputError, match="NaN or infinite pixel values in 1 of 3 images"):
        check_images(X)


def test_image_shape_param():
    with pytest.raises(ImageInputError, match=r"image_shape=\(5, 5\) holds 25 values but X has 64"):
        check_images(np.zeros((2, 64)), image_shape=(5, 5))
    with pytest.raises(ImageInputError, match="positive integers"):
        check_images(np.zeros((2, 64)), image_shape=(8, -8))
    with pytest.raises(ImageInputError, match="positive integers"):
        check_images(np.zeros((2, 64)), image_shape=(64,))


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (None, "y is None"),
        (np.zeros((4, 2)), "1-D"),
        (np.array([0, 1, 0]), "X has 4 images but y has 3 labels"),
        (np.array([0, 1, np.nan, 1]), "NaN in 1 places"),
        (np.array([0.1, 0.2, 0.3, 0.4]), "not like class labels"),
        (np.array(["a", "a", "a", "a"]), "single class"),
        (np.array(["a", None, "b", "a"], dtype=object), "None"),
    ],
)
def test_bad_labels(y, match):
    with pytest.raises(ImageInputError, match=match):
        check_labels(y, 4)


def test_labels_ok():
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        assert list(check_labels([[1], [2], [1]], 3)) == [1, 2, 1]  # as scikit-learn does
    assert list(check_labels(["b", "a", "b"], 3)) == ["b", "a", "b"]


def test_check_same_shape():
    images = np.zeros((2, 8, 8, 3))
    check_same_shape(images, (8, 8, 3), "Clf")
    with pytest.raises(ImageInputError, match=r"fitted on images with 1 channel\(s\) but X has 3"):
        check_same_shape(images, (8, 8, 1), "Clf")
    with pytest.raises(
        ImageInputError, match=r"height x width \(16, 16\) but X has \(8, 8\).*Resize"
    ):
        check_same_shape(images, (16, 16, 3), "Clf")


def test_containers_of_images_are_taken_like_lists(tmp_path):
    """A pandas Series of arrays, an object array of equal-shaped images and a
    one-column DataFrame of paths are what they hold, as lists of them are."""
    pd = pytest.importorskip("pandas")
    from PIL import Image

    from sklimg.preprocessing import LazyImages
    from sklimg.utils.validation import as_images

    images = [np.full((4, 4), i, dtype=np.uint8) for i in range(3)]
    expected = check_images(images)
    objects = np.empty(3, dtype=object)
    objects[:] = images
    for X in (pd.Series(images), objects, pd.DataFrame({"image": images})):
        np.testing.assert_array_equal(as_images(X), expected)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    frame = pd.DataFrame({"path": paths, "label": [0, 1, 0]})
    lazy = as_images(frame[["path"]])
    assert isinstance(lazy, LazyImages) and list(lazy.source) == paths
    # A one-column table of numbers stays a table: one flattened image per row.
    assert as_images(pd.DataFrame({"pixel": [0.5, 0.25]})).shape == (2, 1, 1, 1)
