"""Image features for scikit-learn pipelines: classical (scikit-image) and deep.

Each transformer turns images ``(n_samples, height, width[, channels])`` (or lists of
arrays, file paths, :class:`~sklimg.preprocessing.LazyImages`) into a feature matrix
``(n_samples, n_features)`` for any scikit-learn model::

    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import SVC
    from sklimg.features import HOG, LBP, ColorHistogram, PixelFeatures

    model = make_pipeline(HOG(), SVC())

To combine several kinds of features, concatenate them with scikit-learn's
:func:`~sklearn.pipeline.make_union` (a ``FeatureUnion``); their feature names stay
apart (``hog__...``, ``lbp__...``)::

    model = make_pipeline(
        make_union(HOG(pixels_per_cell=4), LBP(grid=(4, 4)), ColorHistogram()),
        StandardScaler(),
        LinearSVC(),
    )
"""

from sklimg.features import _backbones  # noqa: F401  (registers hog, lbp, ...)
from sklimg.features._classical import HOG, LBP, ColorHistogram, PixelFeatures
from sklimg.features._deep import DeepFeatures, extract_features

__all__ = [
    "HOG",
    "LBP",
    "ColorHistogram",
    "DeepFeatures",
    "PixelFeatures",
    "extract_features",
]
