"""Preprocessing steps: results checked against Pillow, torchvision, scikit-image and
NumPy; lazy and eager routes agree; parameters work with clone, pipelines and search."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from skimage.color import rgb2gray
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torchvision.transforms.v2 import functional as TF

from sklimg.backbones import get_backbone
from sklimg.exceptions import ImageInputError, UnknownBackboneError
from sklimg.io import read_image
from sklimg.preprocessing import (
    CenterCrop,
    Grayscale,
    LazyImages,
    LoadImages,
    Normalize,
    Resize,
    ToRGB,
    _transforms,
)
from sklimg.utils._sklearn_compat import InvalidParameterError

RNG = np.random.default_rng(0)


def _flatten(X):
    return np.asarray(X).reshape(len(X), -1)


def _write(folder, arrays, suffix="png"):
    paths = []
    for i, array in enumerate(arrays):
        path = folder / f"{i}.{suffix}"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------ Resize
@pytest.mark.parametrize(
    ("interpolation", "pil_filter"),
    [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC), ("nearest", Image.NEAREST)],
)
@pytest.mark.parametrize("size", [(6, 8), (29, 31)])
def test_resize_matches_pillow(interpolation, pil_filter, size):
    """Pillow antialiases when downsampling; so must Resize (up and down)."""
    image = RNG.random((13, 17)).astype(np.float32)
    ours = Resize(size, interpolation=interpolation).fit_transform(image[np.newaxis])
    expected = np.asarray(Image.fromarray(image, mode="F").resize(size[::-1], pil_filter))
    assert ours.shape == (1, *size, 1) and ours.dtype == np.float32
    assert_allclose(ours[0, ..., 0], expected, atol=1e-5)


def test_resize_uint8_stays_uint8_rounded_like_pillow():
    images = RNG.integers(0, 256, (2, 13, 17, 3), dtype=np.uint8)
    ours = Resize((6, 8)).fit_transform(images)
    assert ours.dtype == np.uint8
    for image, out in zip(images, ours, strict=True):
        expected = np.asarray(Image.fromarray(image).resize((8, 6), Image.BILINEAR))
        assert np.abs(out.astype(int) - expected).max() <= 1  # Pillow: fixed point


def test_resize_bicubic_overshoot_is_clipped_for_uint8_only():
    edge = np.zeros((1, 4, 8), np.uint8)
    edge[..., 4:] = 255
    out = Resize((4, 16), interpolation="bicubic").fit_transform(edge)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    out_float = Resize((4, 16), interpolation="bicubic").fit_transform(edge / 255.0)
    assert out_float.dtype == np.float32 and (out_float.max() > 1 or out_float.min() < 0)


def test_resize_nearest_upsampling_repeats_pixels():
    image = np.array([[1, 2], [3, 4]], dtype=np.float32)
    out = Resize(4, interpolation="nearest").fit_transform(image[np.newaxis])
    assert_array_equal(out[0, ..., 0], np.kron(image, np.ones((2, 2))))


def test_resize_int_size_is_a_square_and_equals_the_pair():
    images = RNG.random((3, 5, 7))
    assert_array_equal(Resize(4).fit_transform(images), Resize((4, 4)).fit_transform(images))


def test_resize_list_of_different_sizes_gives_one_array():
    images = [RNG.random((5, 9, 3)), RNG.random((12, 4, 3)), RNG.random((6, 6, 3))]
    out = Resize((4, 5)).fit_transform(images)
    assert isinstance(out, np.ndarray) and out.shape == (3, 4, 5, 3) and out.dtype == np.float32
    for image, resized in zip(images, out, strict=True):
        assert_array_equal(resized, Resize((4, 5)).fit_transform(image[np.newaxis])[0])


def test_resize_pad_letterboxes_a_wide_and_a_tall_image():
    wide = np.ones((1, 10, 20), np.float32)
    out = Resize(8, mode="pad", pad_value=0.5).fit_transform(wide)[0, ..., 0]
    # scale 0.4: 4 x 8, centred in 8 x 8: two padded rows above and two below.
    assert_allclose(out[2:6], 1.0, rtol=1e-6)
    assert_array_equal(out[[0, 1, 6, 7]], 0.5)
    tall = np.full((1, 9, 3), 200, np.uint8)
    out = Resize((6, 6), mode="pad").fit_transform(tall)[0, ..., 0]
    # scale 2/3: 6 x 2, columns 2 and 3 hold the image.
    assert out.dtype == np.uint8
    assert_array_equal(out[:, 2:4], 200)
    assert_array_equal(out[:, [0, 1, 4, 5]], 0)


def test_resize_crop_covers_then_crops_the_centre():
    columns = np.tile(np.arange(20, dtype=np.float32), (10, 1))  # pixel value = column
    out = Resize(8, mode="crop", interpolation="nearest").fit_transform(columns[np.newaxis])
    # scale 0.8: 8 x 16, nearest source column of output column j is (j + 0.5) * 20 / 16;
    # the crop keeps columns 4..11 of the 16.
    expected_columns = np.floor((np.arange(4, 12) + 0.5) * 20 / 16)
    assert out.shape == (1, 8, 8, 1)
    assert_array_equal(out[0, ..., 0], np.tile(expected_columns, (8, 1)))


def test_resize_same_size_returns_a_copy():
    images = RNG.random((2, 4, 4, 1)).astype(np.float32)
    out = Resize(4).fit_transform(images)
    assert_array_equal(out, images)
    assert not np.shares_memory(out, images)


def test_resize_chunks_large_batches_identically(monkeypatch):
    images = RNG.integers(0, 256, (7, 9, 11, 3), dtype=np.uint8)
    whole = Resize((5, 6)).fit_transform(images)
    monkeypatch.setattr(_transforms, "_CHUNK_VALUES", 1)  # one image per chunk
    assert_array_equal(Resize((5, 6)).fit_transform(images), whole)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"size": 0}, "'size' parameter of Resize must be"),
        ({"size": (0, 3)}, r"'size' parameter of Resize must be .* Got \(0, 3\)"),
        ({"size": (2, 2, 2)}, "'size' parameter of Resize must be"),
        ({"size": "big"}, "'size' parameter of Resize must be"),
        ({"mode": "fit"}, "'mode' parameter of Resize must be a str among"),
        ({"interpolation": "lanczos"}, "'interpolation' parameter of Resize must be"),
        ({"pad_value": "white"}, "'pad_value' parameter of Resize must be"),
    ],
)
def test_resize_invalid_parameters(params, match):
    images = np.zeros((1, 4, 4))
    with pytest.raises(InvalidParameterError, match=match):
        Resize(**params).fit(images)
    with pytest.raises(InvalidParameterError, match=match):
        Resize(**params).transform(images)  # stateless: usable without fit, still checked


@pytest.mark.parametrize("step", [Resize(4), CenterCrop(2), ToRGB(), Grayscale(), Normalize()])
def test_bad_images_raise(step):
    with pytest.raises(ImageInputError, match="X has 2 channels"):
        step.fit(np.zeros((2, 4, 4, 2)))
    with pytest.raises(ImageInputError, match="X has 5 dimensions"):
        step.fit(np.zeros((2, 4, 4, 3, 1)))
    with pytest.raises(ImageInputError, match="NaN"):
        step.fit(np.full((2, 4, 4), np.nan))
    with pytest.raises(ImageInputError, match="does not exist"):
        step.fit(["missing.png"])


# ------------------------------------------------------------------ CenterCrop
def test_center_crop_takes_the_middle():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    assert_array_equal(CenterCrop(3).fit_transform(image)[0, ..., 0], image[0, 1:4, 1:4])
    # Odd difference: the extra row and column are cropped at the bottom and right.
    assert_array_equal(CenterCrop(4).fit_transform(image)[0, ..., 0], image[0, :4, :4])
    assert_array_equal(CenterCrop((1, 5)).fit_transform(image)[0, ..., 0], image[0, 2:3])


@pytest.mark.parametrize(("size", "crop"), [((4, 6), (2, 2)), ((8, 8), (4, 2)), ((4, 4), (8, 6))])
def test_center_crop_matches_torchvision_for_even_differences(size, crop):
    images = RNG.integers(0, 256, (2, *size, 3), dtype=np.uint8)
    ours = CenterCrop(crop).fit_transform(images)
    expected = TF.center_crop(torch.from_numpy(images).permute(0, 3, 1, 2), list(crop))
    assert ours.dtype == np.uint8
    assert_array_equal(ours, expected.permute(0, 2, 3, 1).numpy())


def test_center_crop_pads_smaller_images_with_pad_value():
    image = np.ones((1, 2, 2), np.uint8)
    out = CenterCrop(3, pad_value=9).fit_transform(image)[0, ..., 0]
    assert_array_equal(out, [[1, 1, 9], [1, 1, 9], [9, 9, 9]])  # extra at bottom and right


# ------------------------------------------------------------------ ToRGB, Grayscale
def test_to_rgb():
    gray = RNG.random((2, 4, 5))
    out = ToRGB().fit_transform(gray)
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.float32
    assert_allclose(out, np.repeat(gray[..., np.newaxis], 3, axis=-1), rtol=1e-6)
    rgba = RNG.integers(0, 256, (2, 4, 5, 4), dtype=np.uint8)
    assert_array_equal(ToRGB().fit_transform(rgba), rgba[..., :3])
    rgb = rgba[..., :3].copy()
    out = ToRGB().fit_transform(rgb)
    assert_array_equal(out, rgb) and not np.shares_memory(out, rgb)


def test_grayscale_bt601_matches_pillow():
    rgb = RNG.integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    out = Grayscale().fit_transform(rgb)
    assert out.shape == (3, 6, 7, 1) and out.dtype == np.uint8
    for image, gray in zip(rgb, out, strict=True):
        expected = np.asarray(Image.fromarray(image).convert("L"))
        assert np.abs(gray[..., 0].astype(int) - expected).max() <= 1  # Pillow: fixed point


def test_grayscale_bt709_matches_scikit_image():
    rgb = RNG.random((3, 6, 7, 3))
    out = Grayscale(weights="bt709").fit_transform(rgb)
    assert out.dtype == np.float32
    assert_allclose(out[..., 0], rgb2gray(rgb), atol=1e-6)


def test_grayscale_keeps_gray_and_ignores_alpha():
    gray = RNG.integers(0, 256, (2, 3, 3, 1), dtype=np.uint8)
    assert_array_equal(Grayscale().fit_transform(gray), gray)
    rgba = RNG.integers(0, 256, (2, 3, 3, 4), dtype=np.uint8)
    assert_array_equal(Grayscale().fit_transform(rgba), Grayscale().fit_transform(rgba[..., :3]))
    with pytest.raises(InvalidParameterError, match="'weights' parameter of Grayscale"):
        Grayscale(weights="luma").fit(gray)


# ------------------------------------------------------------------ Normalize
def test_normalize_fit_learns_numpy_statistics():
    X = RNG.integers(0, 256, (10, 5, 6, 3), dtype=np.uint8)
    norm = Normalize().fit(X)
    # Pixels are scaled to [0, 1] in float32, as transform scales them.
    assert_allclose(norm.mean_, (X / 255).mean(axis=(0, 1, 2)), rtol=1e-6)
    assert_allclose(norm.std_, (X / 255).std(axis=(0, 1, 2)), rtol=1e-6)
    out = norm.transform(X)
    assert out.dtype == np.float32
    assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-5)


def test_normalize_fit_weighs_every_pixel_of_images_of_different_sizes():
    images = [RNG.random((4, 5, 1)), RNG.random((9, 2, 1)) * 3, RNG.random((1, 1, 1))]
    pixels = np.concatenate([image.reshape(-1) for image in images]).astype(np.float32)
    norm = Normalize().fit(images)
    assert_allclose(norm.mean_, [pixels.mean()], rtol=1e-6)
    assert_allclose(norm.std_, [pixels.std()], rtol=1e-6)


def test_normalize_fit_in_chunks_merges_exactly(monkeypatch):
    X = RNG.normal(1000, 1, (9, 4, 4, 3))  # a large mean makes naive sums lose the variance
    expected = Normalize().fit(X)
    monkeypatch.setattr(_transforms, "_CHUNK_VALUES", 1)  # one image per chunk
    chunked = Normalize().fit(X)
    assert_allclose(chunked.mean_, expected.mean_, rtol=1e-12)
    assert_allclose(chunked.std_, expected.std_, rtol=1e-6)
    assert_allclose(chunked.std_, X.astype(np.float32).std(axis=(0, 1, 2)), rtol=1e-4)


def test_normalize_constant_channel_gets_unit_std():
    X = np.zeros((3, 2, 2, 3), np.uint8)
    X[..., 1] = [0, 255]
    norm = Normalize().fit(X)
    assert_allclose(norm.std_, [1.0, 0.5, 1.0])
    assert np.isfinite(norm.transform(X)).all()


def test_normalize_imagenet_and_backbone_statistics():
    X = RNG.integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    imagenet = Normalize("imagenet").fit(X)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    assert_allclose(imagenet.transform(X), (X / 255 - mean) / std, rtol=1e-5)
    spec = get_backbone("resnet18")
    auto = Normalize("auto", backbone="resnet18").fit(X)
    assert_allclose(auto.mean_, spec.mean) and assert_allclose(auto.std_, spec.std)
    assert_allclose(Normalize("auto", backbone=spec).fit(X).mean_, spec.mean)


def test_normalize_explicit_statistics():
    X = RNG.random((2, 3, 3, 3)).astype(np.float32)
    out = Normalize(0.5, 0.25).fit_transform(X)
    assert_allclose(out, (X - 0.5) / 0.25, rtol=1e-6)
    out = Normalize([0.1, 0.2, 0.3], [1, 2, 4]).fit_transform(X)
    assert_allclose(out, (X - [0.1, 0.2, 0.3]) / [1, 2, 4], rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"mean": "auto"}, ValueError, "backbone=None"),
        ({"mean": "auto", "backbone": "cnn_small"}, ValueError, "'cnn_small' has no normal"),
        ({"mean": "auto", "backbone": "resnet81"}, UnknownBackboneError, "Did you mean"),
        ({"mean": "fit", "std": 0.5}, ValueError, "std=0.5 with mean='fit'"),
        ({"mean": 0.5}, ValueError, "without std"),
        ({"mean": 0.5, "std": 0}, InvalidParameterError, "'std' parameter .* must be positive"),
        ({"mean": [np.nan], "std": 1}, InvalidParameterError, "'mean' parameter .* finite"),
        ({"mean": [0.1, 0.2], "std": [1, 2, 3]}, ValueError, "2 mean values but 3 std"),
        ({"mean": "median"}, InvalidParameterError, "'mean' parameter of Normalize must be"),
        ({"backbone": 18}, InvalidParameterError, "'backbone' parameter of Normalize must"),
    ],
)
def test_normalize_invalid_parameters(params, error, match):
    with pytest.raises(error, match=match):
        Normalize(**params).fit(np.zeros((1, 2, 2, 3)))


def test_normalize_needs_fit_and_matching_channels():
    with pytest.raises(NotFittedError):
        Normalize("imagenet").transform(np.zeros((1, 2, 2, 3)))
    norm = Normalize("imagenet").fit(np.zeros((1, 2, 2, 3)))
    with pytest.raises(ImageInputError, match="statistics for 3 channels but .* have 1.*ToRGB"):
        norm.transform(np.zeros((1, 2, 2)))
    assert Normalize().__sklearn_tags__().requires_fit
    assert not Resize().__sklearn_tags__().requires_fit


# ------------------------------------------------------------------ files and lazy route
def test_load_images_lazy_and_eager(tmp_path):
    arrays = [RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8) for _ in range(3)]
    paths = _write(tmp_path, arrays)
    lazy = LoadImages().fit_transform(paths)
    assert isinstance(lazy, LazyImages) and len(lazy) == 3
    assert_array_equal(np.asarray(list(lazy)), arrays)
    eager = LoadImages(lazy=False).fit(paths).transform([str(p) for p in paths])
    assert isinstance(eager, np.ndarray) and eager.dtype == np.uint8
    assert_array_equal(eager, arrays)
    assert_array_equal(LoadImages(lazy=False).fit_transform(lazy), arrays)


def test_load_images_of_different_sizes_eagerly_gives_a_list(tmp_path):
    paths = _write(tmp_path, [np.zeros((4, 6), np.uint8), np.zeros((3, 3), np.uint8)])
    images = LoadImages(lazy=False).fit_transform(paths)
    assert isinstance(images, list) and [i.shape for i in images] == [(4, 6, 1), (3, 3, 1)]


def test_load_images_promotes_grayscale_files_among_colour_ones(tmp_path):
    gray = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    paths = _write(tmp_path, [gray, np.zeros((3, 3, 3), np.uint8)])
    images = LoadImages(lazy=False).fit_transform(paths)
    assert [i.shape for i in images] == [(4, 6, 3), (3, 3, 3)]
    assert_array_equal(images[0], np.repeat(gray[..., None], 3, axis=2))


def test_load_images_passes_arrays_and_lazy_images_through():
    X = RNG.random((2, 4, 4))
    assert LoadImages().fit_transform(X) is X
    assert LoadImages(lazy=False).fit(X).transform(X) is X
    lazy = LazyImages([np.zeros((2, 2, 1))])
    assert LoadImages().fit_transform(lazy) is lazy
    with pytest.raises(ImageInputError, match="NaN"):
        LoadImages().fit(np.full((2, 4, 4), np.nan))


def test_load_images_reports_every_bad_file(tmp_path):
    good = _write(tmp_path, [np.zeros((4, 4), np.uint8)])
    (tmp_path / "notes.txt").write_text("hello")
    paths = [*good, tmp_path / "missing.png", tmp_path / "notes.txt"]
    for method in ("fit", "transform", "fit_transform"):
        with pytest.raises(ImageInputError, match=r"2 of 3 image files(?s:.*)missing(?s:.*)notes"):
            getattr(LoadImages(), method)(paths)
    with pytest.raises(InvalidParameterError, match="'lazy' parameter of LoadImages"):
        LoadImages(lazy="yes").fit(good)


def _mixed_files(tmp_path):
    """Files of different sizes and modes: gray, RGB, RGBA."""
    arrays = [
        RNG.integers(0, 256, (12, 20), dtype=np.uint8),
        RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8),
        RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8),
    ]
    return _write(tmp_path, arrays)


@pytest.mark.parametrize("mode", ["stretch", "pad", "crop"])
def test_lazy_pipeline_equals_eager_pipeline(tmp_path, mode):
    paths = _mixed_files(tmp_path)

    def pipeline(lazy):
        return make_pipeline(
            LoadImages(lazy=lazy),
            ToRGB(),
            Resize((8, 10), mode=mode),
            CenterCrop(7),
            Normalize(),
        )

    lazy_pipe = pipeline(True)
    lazy = lazy_pipe.fit_transform(paths)
    eager_pipe = pipeline(False)
    eager = eager_pipe.fit_transform(paths)
    assert isinstance(lazy, LazyImages) and isinstance(eager, np.ndarray)
    assert eager.shape == (3, 7, 7, 3) and eager.dtype == np.float32
    assert_allclose(lazy_pipe[-1].mean_, eager_pipe[-1].mean_, rtol=1e-10)
    assert_allclose(np.asarray(list(lazy)), eager, rtol=1e-6, atol=1e-6)
    # And both equal the same steps on the decoded images, done by hand.
    decoded = [read_image(p) for p in paths]
    by_hand = Resize((8, 10), mode=mode).fit_transform(ToRGB().fit_transform(decoded))
    by_hand = Normalize().fit_transform(CenterCrop(7).fit_transform(by_hand))
    assert_allclose(eager, by_hand, rtol=1e-6, atol=1e-6)


def test_lazy_batch_route_equals_vectorised_route():
    """Same-size arrays take the vectorised path; LazyImages one image at a time."""
    X = RNG.random((5, 9, 11, 3))
    steps = [Resize((6, 5), mode="pad", interpolation="bicubic"), Grayscale(), Normalize()]
    eager, lazy = X, LazyImages(list(X))
    for step in steps:
        eager = step.fit_transform(eager)
        lazy = step.fit_transform(lazy)
    assert_allclose(np.asarray(list(lazy)), eager, rtol=1e-6, atol=1e-6)


def test_normalize_fits_lazy_grayscale_and_colour_files_as_colour(tmp_path):
    paths = _mixed_files(tmp_path)[:2]  # gray then RGB
    normalize = Normalize().fit(LoadImages().fit_transform(paths))
    assert normalize.mean_.shape == (3,)


# ------------------------------------------------------------------ scikit-learn API
def test_clone_get_params_and_pickle():
    step = Resize((3, 4), mode="crop", interpolation="nearest", pad_value=7)
    assert clone(step).get_params() == step.get_params()
    assert clone(step).get_params()["size"] == (3, 4)
    X = RNG.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    norm = Normalize().fit(X)
    restored = pickle.loads(pickle.dumps(norm))
    assert_array_equal(restored.transform(X), norm.transform(X))


def test_lazy_result_pickles(tmp_path):
    paths = _mixed_files(tmp_path)
    pipe = make_pipeline(LoadImages(), ToRGB(), Resize(5), Normalize())
    lazy = pipe.fit_transform(paths)
    assert_array_equal(np.asarray(list(pickle.loads(pickle.dumps(lazy)))), np.asarray(list(lazy)))
    restored = pickle.loads(pickle.dumps(pipe))
    assert_array_equal(np.asarray(list(restored.transform(paths))), np.asarray(list(lazy)))


def test_grid_search_over_step_parameters(small_digits):
    X, y = small_digits
    pipe = make_pipeline(
        Resize(8), Normalize(), FunctionTransformer(_flatten), LogisticRegression(max_iter=200)
    )
    grid = {"resize__size": [4, (6, 6)], "resize__mode": ["stretch", "pad"]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["resize__size"] in (4, (6, 6))
    assert search.best_estimator_[0].size == search.best_params_["resize__size"]
    assert search.best_score_ > 0.8
