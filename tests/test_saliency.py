"""Saliency maps: a pointing game on images whose class is a small textured patch at a
random place, deletion against random masks, and maps on the user's pixel grid
through a pipeline's steps."""

import numpy as np
import pytest
from skimage.transform import resize
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

from sklimg import ImageClassifier, deletion_scores, explain
from sklimg.backbones import BackboneSpec
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


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients"])
def test_maps_with_tta_average_the_views_as_the_predictions_do(pointing, method):
    """With tta="flip" the classifier answers the same for an image and its mirror, and
    so do its maps (mirrored back); one view's maps differ."""
    clf, X, corners = pointing
    mirrored = np.ascontiguousarray(X[:8, :, ::-1])
    one_view = explain(clf, X[:8], method=method)
    assert not np.allclose(one_view, explain(clf, mirrored, method=method)[:, :, ::-1], atol=0.05)
    try:
        clf.set_params(tta="flip")
        maps = explain(clf, X[:8], method=method)
        np.testing.assert_allclose(
            maps, explain(clf, mirrored, method=method)[:, :, ::-1], atol=1e-4
        )
        clf.set_params(tta="flip_translate")
        assert _peaks_inside(explain(clf, X[:20], method=method), corners[:20]) >= 0.9
    finally:
        clf.set_params(tta=None)


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
    with pytest.raises(ValueError, match="needs gradients.*head is a.*method='occlusion'"):
        explain(clf, X_test[:3])


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients", "occlusion"])
def test_a_linear_scikit_learn_head_on_deep_features_is_explained_by_gradients(method):
    """A frozen (random) deep backbone with a logistic regression: the gradients run
    through the regression's linear maps in torch."""
    X, y, _ = patch_images(600, seed=0)
    X_test, _, corners = patch_images(40, seed=1)
    head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf = ImageClassifier("test_cnn", head=head, random_state=0).fit(X, y)
    maps = explain(clf, X_test, method=method)
    assert _peaks_inside(maps, corners) >= (0.9 if method == "integrated_gradients" else 0.6)
    scores = deletion_scores(clf, X_test, maps)
    assert scores.salient.mean() > scores.random.mean() + 0.1


def test_gradients_are_refused_for_heads_that_are_not_linear_maps():
    X, y, _ = patch_images(60, seed=0)
    # A linear SVC has coef_, one row per pair of classes (3 for 3 classes): a map of
    # the right shape that does not give its decision function, which the check finds.
    for head in (SVC(kernel="linear"), KNeighborsClassifier()):
        clf = ImageClassifier("test_cnn", head=head, random_state=0).fit(X, y)
        with pytest.raises(ValueError, match=f"head is a {type(head).__name__} on DeepFeat"):
            explain(clf, X[:2], method="integrated_gradients", target=0)


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


def _sequential_spec(feature_maps):
    def build(*, in_chans, small_input, state_dict=None):
        return nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)
        )

    return BackboneSpec("sequential", build, input_size=None, feature_dim=8, in_chans=None,
                        feature_maps=feature_maps)  # fmt: skip


def test_gradcam_reads_the_feature_maps_the_spec_records(digits_split):
    """A spec's feature_maps decide the layer: here its first convolution, which the
    search for a user's module (activations and blocks) would not pick."""
    X_train, X_test, y_train, _ = digits_split
    clf = ImageClassifier(_sequential_spec(("0",)), max_epochs=1, random_state=0)
    clf.fit(X_train, y_train)
    maps = explain(clf, X_test[:4])
    np.testing.assert_array_equal(maps, explain(clf, X_test[:4], layer="backbone.0"))
    assert not np.array_equal(maps, explain(clf, X_test[:4], layer="backbone.1"))
    clf.backbone = clf.backbone_spec_ = _sequential_spec(("0", "7"))
    with pytest.raises(ValueError, match=r"names feature maps its network lacks: \['backbone.7'\]"):
        explain(clf, X_test[:4])


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
