"""The image-aware estimator check suite over every public sklimg estimator."""

import numpy as np
import pytest

from sklimg.utils._test_common import fast_instance
from sklimg.utils.discovery import all_estimators
from sklimg.utils.estimator_checks import (
    check_image_estimator,
    check_partial_fit,
    check_sample_weights_bad_shape,
    check_sample_weights_ones,
    make_image_data,
    parametrize_with_image_checks,
)

ESTIMATORS = [fast_instance(cls) for _, cls in all_estimators()]
# Calibration and the unknown answer change what fit holds out and what predict says.
ESTIMATORS.append(
    fast_instance(dict(all_estimators())["ImageClassifier"]).set_params(
        calibration="temperature", unknown="knn"
    )
)


def test_discovery_finds_the_classifier():
    assert "ImageClassifier" in dict(all_estimators())


@parametrize_with_image_checks(ESTIMATORS)
def test_image_estimator_checks(estimator, check):
    check(estimator)


def test_the_suite_catches_a_broken_estimator():
    """A check that cannot fail is no check: a classifier that ignores random_state and
    keeps fitted state from __init__ must be caught."""
    from sklimg import ImageClassifier

    class SetsStateInInit(ImageClassifier):
        def __init__(self, backbone="test_cnn", *, max_epochs=1):
            super().__init__(backbone, max_epochs=max_epochs)
            self.classes_ = None

    with pytest.raises(AssertionError):
        check_image_estimator(SetsStateInInit())


def test_the_suite_catches_mishandled_weights_and_parts():
    from sklimg import ImageClassifier

    class IgnoresWeights(ImageClassifier):
        def fit(self, X, y, sample_weight=None):
            return super().fit(X, y)

    class SkewsWeights(ImageClassifier):
        def fit(self, X, y, sample_weight=None):
            if sample_weight is not None:
                sample_weight = np.asarray(sample_weight) * (np.asarray(y) == y[0])
            return super().fit(X, y, sample_weight=sample_weight)

    params = dict(backbone="test_cnn", max_epochs=2, lr=0.01, random_state=0)
    with pytest.raises(AssertionError, match="accepted too few sample weights"):
        check_sample_weights_bad_shape("IgnoresWeights", IgnoresWeights(**params))
    with pytest.raises(AssertionError, match="unit weights differ"):
        check_sample_weights_ones("SkewsWeights", SkewsWeights(**params))

    class RefitsEachCall(ImageClassifier):
        def partial_fit(self, X, y, classes=None, sample_weight=None):
            return self.fit(X, y)

    with pytest.raises(AssertionError, match="accepted a first call without classes"):
        check_partial_fit("RefitsEachCall", RefitsEachCall(**params))


def test_make_image_data_is_learnable_and_balanced():
    X, y = make_image_data(n_samples=30, size=9, channels=3, n_classes=3)
    assert X.shape == (30, 9, 9, 3) and X.min() >= 0 and X.max() <= 1
    assert sorted(set(y)) == [0, 1, 2]
    # Class 0 has horizontal stripes: rows vary, columns do not.
    first = X[0, ..., 0]
    assert first.std(axis=1).mean() < 0.1 < first.std(axis=0).mean()
