"""Saliency maps: a pointing game on images whose class is a small textured patch at a
random place, deletion against random masks, and maps on the user's pixel grid
through a pipeline's steps."""

import numpy as np
import pytest
from skimage.transform import resize
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from sklimg import ImageClassifier, deletion_scores, explain
from sklimg.preprocessing import CenterCrop, Resize

SIZE, PATCH = 32, 8


def patch_images(n, seed):
    """Noise with an 8x8 patch of one of three textures (the class) at a random place;
    the patches' top-left corners."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZE, SIZE, 1), dtype=np.float32) * 0.5
    y = rng.integers(0, 3, n)
    corners = rng.integers(0, SIZE - PATCH, (n, 2))
    r, c = np.meshgrid(np.arange(PATCH), np.arange(PATCH), indexing="ij")
    textures = [(r // 2) % 2, (c // 2) % 2, ((r + c) // 2) % 2]
    for i, (top, left) in enumerate(corners):
        X[i, top : top + PATCH, left : left + PATCH, 0] = textures[y[i]]
    return X, y, corners


@pytest.fixture(scope="module")
def pointing():
    X, y, _ = patch_images(600, seed=0)
    clf = ImageClassifier("cnn_small", max_epochs=4, random_state=0).fit(X, y)
    X_test, y_test, corners = patch_images(40, seed=1)
    assert clf.score(X_test, y_test) >= 0.95
    return clf, X_test, corners


def _peaks_inside(maps, corners, scale=(1.0, 1.0), offset=(0, 0)):
    peaks = np.array([np.unravel_index(np.argmax(m), m.shape) for m in maps], dtype=float)
    top = corners[:, 0] * scale[0] + offset[0]
    left = corners[:, 1] * scale[1] + offset[1]
    return np.mean(
        (peaks[:, 0] >= top)
        & (peaks[:, 0] < top + PATCH * scale[0])
        & (peaks[:, 1] >= left)
        & (peaks[:, 1] < left + PATCH * scale[1])
    )


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients", "occlusion"])
def test_the_peak_falls_on_the_patch_and_deleting_it_costs_most(pointing, method):
    clf, X, corners = pointing
    maps = explain(clf, X, method=method)
    assert maps.shape == X.shape[:3] and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert _peaks_inside(maps, corners) >= 0.9
    scores = deletion_scores(clf, X, maps)
    assert scores.salient.mean() > scores.random.mean() + 0.2
    assert scores.faithful.mean() >= 0.9


def test_random_maps_are_not_faithful(pointing):
    clf, X, _ = pointing
    noise = np.random.default_rng(0).random(X.shape[:3])
    assert deletion_scores(clf, X, noise).faithful.mean() < 0.7


def test_maps_come_back_on_the_pixels_given_through_a_pipeline(pointing):
    clf, X, corners = pointing
    # The same images at 100x60, as a user would pass them; the pipeline resizes.
    big = resize(X, (len(X), 100, 60, 1), order=0, anti_aliasing=False).astype(np.float32)
    pipeline = Pipeline([("resize", Resize((SIZE, SIZE))), ("clf", clf)])
    maps = explain(pipeline, big)
    assert maps.shape == (len(X), 100, 60)
    assert _peaks_inside(maps, corners, scale=(100 / SIZE, 60 / SIZE)) >= 0.9
    # A crop: 40x40 images whose centre 32x32 the classifier sees.
    padded = np.full((len(X), 40, 40, 1), 0.25, np.float32)
    padded[:, 4:36, 4:36] = X
    cropped = Pipeline([("crop", CenterCrop(SIZE)), ("clf", clf)])
    maps = explain(cropped, padded)
    assert maps.shape == (len(X), 40, 40)
    assert _peaks_inside(maps, corners, offset=(4, 4)) >= 0.9
    assert maps[:, :4].max() == 0  # outside what the classifier saw


def test_targets_choose_the_class_explained(pointing):
    clf, X, _ = pointing
    predicted = explain(clf, X[:4])
    np.testing.assert_array_equal(explain(clf, X[:4], target=clf.predict(X[:4])), predicted)
    other = explain(clf, X[:4], method="integrated_gradients", target=clf.classes_[0])
    assert other.shape == predicted.shape


def test_occlusion_explains_a_classical_backbone(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = ImageClassifier("hog", backbone_kwargs={"pixels_per_cell": 4}).fit(X_train, y_train)
    maps = explain(clf, X_test[:3], method="occlusion")
    assert maps.shape == (3, 8, 8) and maps.max() == 1
    with pytest.raises(ValueError, match="needs a network's gradients.*method='occlusion'"):
        explain(clf, X_test[:3])


@pytest.mark.parametrize(
    "backbone", ["test_cnn", "resnet18", "mobilenet_v3_small", "efficientnet_lite0"]
)
def test_backbones_explain_without_a_chosen_layer(backbone):
    """Every registered backbone, with random weights: benchmarks/explain.py runs them
    all; these are the quick ones."""
    X = np.random.default_rng(0).random((6, 32, 32, 3), dtype=np.float32)
    clf = ImageClassifier(backbone, max_epochs=1, batch_size=6, random_state=0)
    maps = explain(clf.fit(X, np.arange(6) % 2), X[:2])
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()


def test_bad_requests_say_what_to_choose(pointing):
    clf, X, _ = pointing
    with pytest.raises(NotFittedError):
        explain(ImageClassifier(), X[:1])
    with pytest.raises(ValueError, match=r"Unknown method 'lime'.*'gradcam'"):
        explain(clf, X[:1], method="lime")
    with pytest.raises(ValueError, match=r"no module 'backbone.99'.*backbone\."):
        explain(clf, X[:1], layer="backbone.99")
    with pytest.raises(ValueError, match=r"target \['7'\] is not among the classes.*\[0, 1, 2\]"):
        explain(clf, X[:1], target=7)
    with pytest.raises(ValueError, match="layer= chooses Grad-CAM's layer"):
        explain(clf, X[:1], method="occlusion", layer="backbone.2")
    with pytest.raises(TypeError, match="takes a fitted ImageClassifier"):
        explain(object(), X[:1])
