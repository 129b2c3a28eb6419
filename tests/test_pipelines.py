"""Whole pipelines from files to predictions, searched with GridSearchCV."""

import numpy as np
import pytest
from PIL import Image
from sklearn import config_context
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images, load_image_folder, make_shapes
from sklimg.features import HOG, PixelFeatures
from sklimg.preprocessing import (
    Augment,
    CenterCrop,
    Grayscale,
    LazyImages,
    LoadImages,
    Normalize,
    Resize,
    ToRGB,
)

GRID = {"resize__size": [16, 24], "aug__policy": ["light", "none"]}


def _pipeline():
    return Pipeline(
        [
            ("rgb", ToRGB()),  # the folder mixes grayscale, RGB and RGBA files
            ("resize", Resize(16)),
            ("norm", Normalize("fit")),
            ("aug", Augment("light")),
            ("clf", ImageClassifier("test_cnn", max_epochs=2, random_state=0, num_workers=0)),
        ]
    )


@pytest.fixture(scope="module")
def shape_folder(tmp_path_factory):
    """Shapes of mixed sizes and modes written as PNG/JPEG files, one folder per class."""
    root = tmp_path_factory.mktemp("shapes")
    X, y = make_shapes(90, size=20, random_state=0, return_X_y=True)
    rng = np.random.default_rng(0)
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        size = int(rng.integers(18, 30))
        picture = Image.fromarray(image).resize((size, size))
        if i % 3 == 0:
            picture.convert("L").save(folder / f"{i}.png")
        elif i % 3 == 1:
            picture.save(folder / f"{i}.jpg", quality=95)
        else:
            picture.convert("RGBA").save(folder / f"{i}.png")
    return root


def test_grid_search_over_a_folder_of_files(shape_folder):
    paths, labels = load_image_folder(shape_folder)
    assert len(paths) == 90 and set(labels) == {str(k) for k in set(labels)}
    search = GridSearchCV(_pipeline(), GRID, cv=3).fit(paths, labels)
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.predict(paths[:5]).shape == (5,)
    assert search.best_estimator_[-1].input_shape_[:2] == (search.best_params_["resize__size"],) * 2


def test_grid_search_over_arrays():
    X, y = make_shapes(90, size=20, random_state=1, return_X_y=True)
    search = GridSearchCV(_pipeline(), GRID, cv=3).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.score(X, y) > 0.3


IMAGE_STEPS = [
    Resize(8),
    CenterCrop(6),
    ToRGB(),
    Grayscale(),
    Normalize(),
    Augment("light"),
    LoadImages(),
]


def _digits(n=20):
    X, _ = load_digits_images(return_X_y=True)
    return X[:n]


@pytest.mark.parametrize("step", IMAGE_STEPS, ids=repr)
def test_image_steps_accept_set_output_and_pass_feature_names(step):
    X = _digits()
    for transform in ("pandas", "polars", "default", None):
        assert step.set_output(transform=transform) is step
    with pytest.raises(ValueError, match="set_output got transform='arrow'; expected one of"):
        step.set_output(transform="arrow")
    assert step.get_feature_names_out() is None
    names = np.array(["a", "b"], dtype=object)
    assert step.get_feature_names_out(names) is names
    # Images stay arrays (or LazyImages), even when scikit-learn asks for DataFrames.
    with config_context(transform_output="pandas"):
        out = step.set_output(transform="pandas").fit_transform(X)
        assert isinstance(out, (np.ndarray, LazyImages))
        assert isinstance(step.transform(X), np.ndarray)


def test_pipeline_set_output_through_image_steps():
    X = _digits()
    hog = HOG(pixels_per_cell=4, cells_per_block=1)
    steps = (Resize(8), ToRGB(), Grayscale(), Normalize(), Augment("light"), hog)
    pipe = make_pipeline(*steps, StandardScaler()).set_output(transform="default")
    out = pipe.fit_transform(X)
    names = pipe[-2].get_feature_names_out()
    assert isinstance(out, np.ndarray) and out.shape == (len(X), len(names))
    np.testing.assert_array_equal(pipe.get_feature_names_out(), names)

    pd = pytest.importorskip("pandas")
    pipe = make_pipeline(Resize(8), hog, StandardScaler()).set_output(transform="pandas")
    frame = pipe.fit_transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (len(X), len(names))
    assert list(frame.columns) == list(names)


def test_pipeline_feature_names_out_through_image_steps():
    X = _digits()
    expected = PixelFeatures().fit(X).get_feature_names_out()
    pipe = make_pipeline(Normalize(), PixelFeatures()).fit(X)
    np.testing.assert_array_equal(pipe.get_feature_names_out(), expected)
    pipe = make_pipeline(LoadImages(), CenterCrop(8), Augment("light"), PixelFeatures())
    np.testing.assert_array_equal(pipe.fit(X).get_feature_names_out(), expected)
