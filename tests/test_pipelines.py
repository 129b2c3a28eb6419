"""Whole pipelines from files to predictions, searched with GridSearchCV."""

import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklimg import ImageClassifier
from sklimg.datasets import load_image_folder, make_shapes
from sklimg.preprocessing import Augment, Normalize, Resize, ToRGB

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
