"""Fast configurations of each estimator for the common checks (as imbalanced-learn's
``instance_generator``): tiny backbones and one or two epochs, so every check takes a
second."""

from __future__ import annotations

from sklearn.base import BaseEstimator


def fast_instance(estimator_class: type[BaseEstimator]) -> BaseEstimator:
    """An instance of ``estimator_class`` configured to fit in about a second."""
    from sklimg import ImageClassifier
    from sklimg.features import HOG, DeepFeatures

    fast = {
        ImageClassifier: dict(
            backbone="test_cnn", max_epochs=3, batch_size=16, lr=0.01, random_state=0
        ),
        # The checks' images are 8x8; the default 8x8 cells need at least 16x16.
        HOG: dict(pixels_per_cell=4),
        # Pretrained weights would need a download; a random tiny network is enough.
        DeepFeatures: dict(backbone="test_cnn", pretrained=False, random_state=0),
    }
    return estimator_class(**fast.get(estimator_class, {}))
