"""Weights per image: fit(X, y, sample_weight=...) on every route, and bad weights."""

import numpy as np
import pytest
import sklearn
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import EpochScoring
from torch import nn

from sklimg import ImageClassifier
from sklimg._torch_data import ImageTensorDataset, WeightedTargets, images_to_tensor
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing import Resize

FAST = dict(backbone="test_cnn", max_epochs=3, lr=0.01, random_state=0)
# The classes of the digits the fixture holds are 0-9; images of 3 get weight 0 below.
IGNORED = 3


@pytest.fixture(scope="module")
def digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    return X_train[:600], y_train[:600], X_test, y_test


def _without(y, label=IGNORED):
    return np.where(y == label, 0.0, 1.0)


def test_images_of_weight_zero_are_not_learned(digits):
    X, y, X_test, y_test = digits
    plain = ImageClassifier(**FAST).fit(X, y)
    assert (plain.predict(X_test) == IGNORED).sum() > 0.5 * (y_test == IGNORED).sum()
    weighted = ImageClassifier(**FAST).fit(X, y, sample_weight=_without(y))
    assert (weighted.predict(X_test) == IGNORED).sum() == 0
    assert IGNORED in weighted.classes_  # still a class, never predicted
    # The other classes are learned as well as without the weights.
    others = y_test != IGNORED
    assert weighted.score(X_test[others], y_test[others]) > plain.score(X_test, y_test) - 0.05


def test_equal_weights_fit_the_unweighted_model(digits):
    """Weights are scaled to a mean of 1, so a constant weight of any size is no weight
    at all, with class weights too."""
    X, y, X_test, _ = digits
    for params in ({}, {"class_weight": "balanced"}):
        unweighted = ImageClassifier(**FAST, **params).fit(X, y).predict_proba(X_test)
        for constant in (1.0, 7.5):
            weighted = ImageClassifier(**FAST, **params).fit(
                X, y, sample_weight=np.full(len(y), constant)
            )
            np.testing.assert_allclose(weighted.predict_proba(X_test), unweighted, atol=1e-4)


def test_the_weighted_loss_is_the_criterion_s_mean_under_equal_weights():
    clf = ImageClassifier(**FAST, class_weight={0: 1.0, 1: 3.0, 2: 0.5})
    X = np.random.default_rng(0).random((30, 8, 8)).astype(np.float32)
    y = np.arange(30) % 3
    net = clf.fit(X, y).net_
    logits = torch.randn(6, 3)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    ones = WeightedTargets(labels, torch.ones(6))
    torch.testing.assert_close(net.get_loss(logits, ones), net.get_loss(logits, labels))
    # A weight of 2 counts an image's loss twice, relative to the others.
    double = torch.tensor([2.0, 1, 1, 1, 1, 1])
    losses = torch.nn.functional.cross_entropy(
        logits, labels, weight=net.criterion_.weight, reduction="none"
    )
    expected = (losses * double).sum() / net.criterion_.weight[labels].sum()
    torch.testing.assert_close(net.get_loss(logits, WeightedTargets(labels, double)), expected)


def test_callbacks_see_labels_while_the_validation_loss_is_weighted(digits):
    X, y, _, _ = digits
    # No BatchNorm, so the weights after the last epoch are the ones predicting.
    backbone = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    scoring = EpochScoring("accuracy", name="my_valid_acc", on_train=False)
    params = dict(FAST, backbone=backbone, validation_fraction=0.2, callbacks=[scoring])
    clf = ImageClassifier(**params).fit(X, y, sample_weight=_without(y))
    history = clf.history_
    assert history[:, "my_valid_acc"] == history[:, "valid_acc"]
    # Recompute the last validation loss on the split skorch made: the held-out
    # images of class 3 weigh nothing in it.
    net = clf.net_
    weight = torch.from_numpy((_without(y) / _without(y).mean()).astype(np.float32))
    labels = torch.from_numpy(np.searchsorted(clf.classes_, y))
    dataset = ImageTensorDataset(images_to_tensor(X[..., None]), labels, weight)
    _, valid = net.get_split_datasets(dataset, labels.numpy())
    logits = net.forward(valid)
    idx = torch.as_tensor(valid.indices)
    weighted = net.get_loss(logits, WeightedTargets(labels[idx], weight[idx]))
    unweighted = net.get_loss(logits, labels[idx])
    assert abs(float(weighted) - history[-1, "valid_loss"]) < 1e-4
    assert abs(float(unweighted) - history[-1, "valid_loss"]) > 1e-2


def test_weights_reach_a_frozen_backbone_s_cached_features(digits):
    X, y, X_test, _ = digits
    params = dict(FAST, finetune="head", max_epochs=5, lr=0.05)
    clf = ImageClassifier(**params).fit(X, y, sample_weight=_without(y))
    assert (clf.predict(X_test) == IGNORED).sum() == 0


def test_weights_follow_files_and_augmentation(digits, tmp_path):
    X, y, X_test, _ = digits
    paths = []
    for i, image in enumerate(np.round(X[:300] * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    y = y[:300]
    for fit_X, params in ((np.array(paths), {}), (X[:300], {"augment": "light"})):
        clf = ImageClassifier(**FAST, **params, num_workers=0).fit(
            fit_X, y, sample_weight=_without(y)
        )
        assert (clf.predict(X_test) == IGNORED).sum() == 0, params


def test_scikit_learn_head_integer_weights_repeat_images(digits):
    """For the default head (standardisation and logistic regression), a weight of k
    is k copies of the image, and a weight of 0 none."""
    X, y, X_test, _ = digits
    X, y = X[:200], y[:200]
    counts = np.random.default_rng(0).integers(0, 4, size=len(y))
    weighted = ImageClassifier("pixels").fit(X, y, sample_weight=counts)
    repeated = ImageClassifier("pixels").fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(
        weighted.predict_proba(X_test), repeated.predict_proba(X_test), atol=2e-3
    )
    assert (
        np.abs(
            weighted.predict_proba(X_test)
            - ImageClassifier("pixels").fit(X, y).predict_proba(X_test)
        ).max()
        > 0.05
    )


def test_scikit_learn_heads_take_weights_or_refuse_them(digits):
    X, y, X_test, _ = digits
    # Each step of a pipeline head that takes weights gets them.
    pipeline_head = make_pipeline(StandardScaler(), LogisticRegression(C=0.1))
    clf = ImageClassifier("pixels", head=pipeline_head).fit(X, y, sample_weight=_without(y))
    assert (clf.predict(X_test) == IGNORED).sum() == 0
    features = clf.feature_extractor_.transform(X)
    weighted_mean = np.average(features, axis=0, weights=_without(y))
    np.testing.assert_allclose(clf.head_[0].mean_, weighted_mean, atol=1e-6)
    assert np.abs(features.mean(axis=0) - weighted_mean).max() > 0.01
    with pytest.raises(ValueError, match="needs a head whose fit takes sample_weight.*KNeigh"):
        ImageClassifier("pixels", head=KNeighborsClassifier()).fit(X, y, sample_weight=_without(y))
    # Without weights, any head is fine.
    ImageClassifier("pixels", head=KNeighborsClassifier()).fit(X, y)


def test_weights_through_pipelines_search_and_metadata_routing(digits):
    X, y, X_test, _ = digits
    weights = _without(y)
    pipe = make_pipeline(Resize(8), ImageClassifier(**FAST))
    pipe.fit(X, y, imageclassifier__sample_weight=weights)
    assert (pipe.predict(X_test) == IGNORED).sum() == 0
    # GridSearchCV gives each fold its share of the weights.
    search = GridSearchCV(ImageClassifier(**FAST), {"lr": [0.01]}, cv=2).fit(
        X, y, sample_weight=weights
    )
    assert (search.predict(X_test) == IGNORED).sum() == 0
    with sklearn.config_context(enable_metadata_routing=True):
        clf = (
            ImageClassifier(**FAST)
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False)
        )
        result = cross_validate(
            clf, X, y, cv=2, params={"sample_weight": weights}, return_estimator=True
        )
    for fitted in result["estimator"]:
        assert (fitted.predict(X_test) == IGNORED).sum() == 0


def test_warm_start_trains_on_with_new_weights(digits):
    X, y, X_test, _ = digits
    clf = ImageClassifier(**FAST, warm_start=True).fit(X, y)
    before = (clf.predict(X_test) == IGNORED).sum()
    clf.set_params(max_epochs=10).fit(X, y, sample_weight=_without(y))
    assert len(clf.history_) == 13
    assert (clf.predict(X_test) == IGNORED).sum() < 0.2 * before


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.ones(10), "X has 600 images but sample_weight has 10 weights"),
        (np.ones((600, 1)), r"must be 1-D with one weight per image; got shape \(600, 1\)"),
        (np.r_[np.nan, np.ones(599)], "must be finite; got 1 NaN or infinite"),
        (np.r_[np.inf, np.ones(599)], "must be finite"),
        (np.r_[-1.0, np.ones(599)], "must be non-negative; got 1 negative weight.*-1"),
        (np.zeros(600), "zero for every image"),
        (np.array(["1"] * 600), "must hold numbers; got dtype <U1"),
        (np.ones(600, dtype=bool), "must hold numbers; got dtype bool"),
    ],
)
@pytest.mark.parametrize("backbone", ["test_cnn", "pixels"])
def test_bad_weights_fail_before_training(digits, weights, match, backbone):
    X, y, _, _ = digits
    clf = ImageClassifier(backbone, max_epochs=1)
    with pytest.raises(ImageInputError, match=match):
        clf.fit(X, y, sample_weight=weights)
    assert not hasattr(clf, "classes_")


def test_a_number_weighs_every_image_alike(digits):
    X, y, X_test, _ = digits
    unweighted = ImageClassifier(**FAST).fit(X, y).predict_proba(X_test)
    weighted = ImageClassifier(**FAST).fit(X, y, sample_weight=3).predict_proba(X_test)
    np.testing.assert_allclose(weighted, unweighted, atol=1e-4)


def test_score_weighs_images(digits):
    X, y, X_test, y_test = digits
    clf = ImageClassifier(**FAST).fit(X, y)
    right = clf.predict(X_test) == y_test
    weights = np.where(right, 0.0, 1.0)  # only the mistakes count
    assert clf.score(X_test, y_test, sample_weight=weights) == 0.0


def test_pipeline_heads_take_weights_with_metadata_routing_on(digits):
    X, y, X_test, _ = digits
    weights = _without(y)
    with sklearn.config_context(enable_metadata_routing=True):
        for head in (None, make_pipeline(StandardScaler(), LogisticRegression(C=0.1))):
            clf = ImageClassifier("pixels", head=head).fit(X, y, sample_weight=weights)
            assert (clf.predict(X_test) == IGNORED).sum() == 0
        search = (
            ImageClassifier("pixels")
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False)
        )
        result = cross_validate(
            search, X, y, cv=2, params={"sample_weight": weights}, return_estimator=True
        )
    assert all((e.predict(X_test) == IGNORED).sum() == 0 for e in result["estimator"])


def test_meta_estimator_heads_pass_weights_on(digits):
    X, y, X_test, _ = digits
    head = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=2)
    clf = ImageClassifier("pixels", head=head).fit(X, y, sample_weight=_without(y))
    assert (clf.predict(X_test) == IGNORED).sum() == 0


def test_huge_and_object_weights(digits):
    X, y, X_test, _ = digits
    unweighted = ImageClassifier(**FAST).fit(X, y).predict_proba(X_test)
    huge = ImageClassifier(**FAST).fit(X, y, sample_weight=np.full(len(y), 1e308))
    np.testing.assert_allclose(huge.predict_proba(X_test), unweighted, atol=1e-4)
    objects = np.array([1.0] * len(y), dtype=object)
    ImageClassifier(**FAST).fit(X, y, sample_weight=objects)
    ImageClassifier(**FAST).fit(X, y, sample_weight=np.array(2.0))  # 0-d: a number


def test_the_check_suite_accepts_heads_that_refuse_weights():
    from sklimg.utils.estimator_checks import check_sample_weights_ones

    check_sample_weights_ones("knn", ImageClassifier("pixels", head=KNeighborsClassifier()))
