"""fit(X, y, groups=...): the images a fit holds out are whole groups, on every route,
through Pipelines and metadata routing; bad groups are refused before training."""

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from sklimg import ImageClassifier
from sklimg._fit.trust import held_out
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing import Resize


class RecordSplit(Callback):
    """Records the training and validation indices skorch trains and validates on."""

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.train = np.asarray(dataset_train.indices)
        self.valid = np.asarray(dataset_valid.indices)


class RefuseTraining(Callback):
    def on_train_begin(self, net, **kwargs):
        raise AssertionError("training started")


def _split(clf) -> RecordSplit:
    return next(cb for _, cb in clf.net_.callbacks_ if isinstance(cb, RecordSplit))


def _neural(**params):
    return ImageClassifier(
        "test_cnn", max_epochs=1, random_state=0, callbacks=[RecordSplit()], **params
    )


@pytest.fixture(scope="module")
def grouped(small_digits):
    X, y = small_digits
    # 30 groups of 10 consecutive images (of mixed classes).
    return X, y, np.arange(len(y)) // 10


def _assert_groups_apart(split, groups):
    assert len(split.train) + len(split.valid) == len(groups)
    assert not np.intersect1d(groups[split.train], groups[split.valid]).size


def test_no_group_is_on_both_sides_of_the_validation_split(grouped):
    X, y, groups = grouped
    for params in ({"validation_fraction": 0.2}, {"early_stopping": True}):
        clf = _neural(**params).fit(X, y, groups=groups)
        split = _split(clf)
        _assert_groups_apart(split, groups)
        fraction = params.get("validation_fraction", 0.1)
        assert abs(len(split.valid) / len(y) - fraction) < 0.05
    # Without groups, skorch's own stratified split of images, as before.
    plain = _neural(validation_fraction=0.2).fit(X, y)
    assert plain.net_.train_split.cv == 0.2
    assert np.intersect1d(groups[_split(plain).train], groups[_split(plain).valid]).size


def test_calibration_is_fitted_on_the_groups_skorch_validated_on(grouped):
    X, y, groups = grouped
    clf = _neural(calibration="temperature").fit(X, y, groups=groups)
    split = _split(clf)
    _assert_groups_apart(split, groups)
    # The one function both routes hold out with gives skorch's validation images.
    _, valid = held_out(np.searchsorted(clf.classes_, y), 0.1, clf.random_state, groups)
    np.testing.assert_array_equal(np.sort(valid), np.sort(split.valid))
    train, valid = held_out(y, 0.1, 0, groups)
    assert not np.intersect1d(groups[train], groups[valid]).size
    # A scikit-learn head with calibration holds out whole groups too.
    head = ImageClassifier("pixels", calibration="temperature", random_state=0)
    assert hasattr(head.fit(X, y, groups=groups), "temperature_")


def test_groups_through_a_pipeline_and_metadata_routing(grouped):
    X, y, groups = grouped
    pipe = make_pipeline(Resize(8), _neural(validation_fraction=0.2))
    pipe.fit(X, y, imageclassifier__groups=groups)
    _assert_groups_apart(_split(pipe[-1]), groups)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = _neural(validation_fraction=0.2).set_fit_request(groups=True)
        search = GridSearchCV(clf, {"lr": [0.01]}, cv=GroupKFold(2)).fit(X, y, groups=groups)
    # The refit on every image holds out whole groups.
    _assert_groups_apart(_split(search.best_estimator_), groups)


def test_bad_groups_are_refused_before_training(grouped):
    X, y, groups = grouped
    refusing = ImageClassifier(
        "test_cnn", max_epochs=1, validation_fraction=0.2, callbacks=[RefuseTraining()]
    )
    with pytest.raises(ImageInputError, match="X has 300 images but groups has 299"):
        refusing.fit(X, y, groups=groups[:-1])
    with pytest.raises(ImageInputError, match="groups has 3 missing values"):
        refusing.fit(X, y, groups=np.where(np.arange(300) < 3, np.nan, groups))
    # 0.2 is one of 5 folds of whole groups: 3 groups are too few.
    with pytest.raises(ImageInputError, match="groups holds 3 groups.*5 folds"):
        refusing.fit(X, y, groups=np.arange(300) % 3)
    head = ImageClassifier("pixels", head=LogisticRegression(), calibration="temperature")
    with pytest.raises(ImageInputError, match="groups holds 3 groups.*10 folds"):
        head.fit(X, y, groups=np.arange(300) % 3)
