"""ImageClassifier inside scikit-learn's tools: clone, Pipeline, search, CV, joblib."""

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags

from sklimg import ImageClassifier

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


def test_clone_and_params():
    clf = ImageClassifier(
        backbone="resnet18", lr=0.01, backbone_kwargs={"zero_init_residual": True}
    )
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    assert twin.backbone_kwargs is not clf.backbone_kwargs  # deep-copied
    assert clf.set_params(lr=0.5, backbone="cnn_small") is clf
    assert clf.get_params()["lr"] == 0.5


def test_set_params_then_refit_changes_the_model(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    assert clf.backbone_spec_.name == "test_cnn"
    clf.set_params(backbone="cnn_small", lr=0.005).fit(X, y)
    assert clf.backbone_spec_.name == "cnn_small"
    assert clf.net_.optimizer_.param_groups[0]["initial_lr"] == 0.005
    fitted_clone = clone(clf)
    assert not hasattr(fitted_clone, "net_") and not hasattr(fitted_clone, "classes_")


def test_in_a_pipeline_after_image_steps(small_digits):
    X, y = small_digits
    clf = ImageClassifier(max_epochs=4, random_state=0, device="cpu")  # exact repeats: CPU
    pipe = Pipeline([("invert", FunctionTransformer(np.negative)), ("clf", clf)]).fit(X, y)
    direct = clone(clf).fit(-X, y)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(-X))
    assert pipe.score(X, y) > 0.8


def test_grid_search_over_lr_and_backbone_in_parallel(digits_split):
    X_train, _, y_train, _ = digits_split
    search = GridSearchCV(
        ImageClassifier(max_epochs=2, random_state=0),
        {"lr": [1e-3, 1e-2], "backbone": ["test_cnn", "cnn_small"]},
        cv=3,
        n_jobs=2,
    ).fit(X_train[:600], y_train[:600])
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.best_params_["backbone"] in ("test_cnn", "cnn_small")
    assert search.best_score_ > 0.5
    assert search.best_estimator_.predict(X_train[:3]).shape == (3,)


def test_cross_val_score_on_held_out_folds(digits_split):
    X_train, _, y_train, _ = digits_split
    scores = cross_val_score(
        ImageClassifier(max_epochs=3, random_state=0), X_train[:600], y_train[:600], cv=3
    )
    assert scores.shape == (3,) and scores.min() > 0.7


def test_joblib_round_trip_gives_identical_probabilities(small_digits, tmp_path):
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.input_shape_ == clf.input_shape_


def test_model_saved_from_cuda_loads_on_cpu(small_digits, tmp_path):
    """A net whose device was CUDA loads on a machine without CUDA (skorch maps it)."""
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    clf.net_.device = "cuda"  # as recorded by a fit on a GPU machine
    path = tmp_path / "gpu_model.joblib"
    joblib.dump(clf, path)
    from skorch.exceptions import DeviceWarning

    with pytest.warns(
        DeviceWarning, match=r"no CUDA devices are available|device \(cuda\) is not available"
    ):
        loaded = joblib.load(path)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-6)


def test_tags_describe_image_input():
    tags = get_tags(ImageClassifier())
    assert tags.estimator_type == "classifier"
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert not tags.classifier_tags.multi_label


@pytest.mark.cuda
def test_frozen_features_fitted_on_cuda_pickle_from_the_cpu(small_digits):
    """A scikit-learn head's DeepFeatures holds a plain torch module, which skorch does
    not remap: it must be pickled from the CPU to load on a machine without CUDA."""
    import pickle

    from sklimg.features import DeepFeatures

    X, _ = small_digits
    features = DeepFeatures("test_cnn", pretrained=False, device="cuda", random_state=0).fit(X)
    state = pickle.loads(pickle.dumps(features)).network_.state_dict()
    assert all(t.device.type == "cpu" for t in state.values())
    assert all(t.device.type == "cuda" for t in features.network_.state_dict().values())


def test_probabilities_sum_to_one_in_float64_for_log_loss(small_digits):
    import warnings

    from sklearn.metrics import log_loss

    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "y_prob values do not sum to one"
        log_loss(y, proba)
