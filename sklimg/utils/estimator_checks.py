"""An estimator check suite for estimators whose input is images.

scikit-learn's ``check_estimator`` builds 2-D feature tables; for an estimator tagged
``two_d_array=False`` it silently runs only the clone check. This module runs
scikit-learn's data-free checks directly and image versions of the checks that need
data, the way imbalanced-learn extends scikit-learn's suite for its samplers.

Use :func:`parametrize_with_image_checks` in a test module, or
:func:`check_image_estimator` to run everything at once.
"""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Callable, Iterable, Iterator
from functools import partial

import joblib
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as skchecks
from sklearn.utils import get_tags
from sklearn.utils.validation import has_fit_parameter

from sklimg.exceptions import ImageInputError

__all__ = ["check_image_estimator", "make_image_data", "parametrize_with_image_checks"]


def make_image_data(
    n_samples: int = 48, size: int = 8, channels: int = 1, n_classes: int = 2, random_state=0
) -> tuple[np.ndarray, np.ndarray]:
    """A small, learnable image classification set for checks.

    Class ``k`` shows stripes at the angle ``k * 180 / n_classes`` degrees over noise, a
    pattern that convolutions find wherever it is, so any sensible image classifier
    separates the classes within a few steps.

    Parameters
    ----------
    n_samples : int, default=48
        Number of images.
    size : int, default=8
        Height and width.
    channels : int, default=1
        Channels (the same pattern in each).
    n_classes : int, default=2
        Number of classes (stripe angles).
    random_state : int, default=0
        Seed of the phases and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size, channels), float32 in [0, 1]
    y : ndarray of shape (n_samples,), int labels ``0 .. n_classes - 1``

    Examples
    --------
    >>> from sklimg.utils.estimator_checks import make_image_data
    >>> X, y = make_image_data(n_samples=6, size=8, n_classes=3)
    >>> X.shape, X.dtype
    ((6, 8, 8, 1), dtype('float32'))
    >>> y
    array([0, 1, 2, 0, 1, 2])
    """
    rng = np.random.RandomState(random_state)
    y = np.arange(n_samples) % n_classes
    rows, cols = np.mgrid[0:size, 0:size]
    angles = np.pi * y / n_classes
    phase = rng.uniform(0, 2 * np.pi, size=n_samples)
    waves = np.cos(
        2.0 * (np.cos(angles)[:, None, None] * rows + np.sin(angles)[:, None, None] * cols)
        + phase[:, None, None]
    )
    X = 0.5 + 0.35 * waves[..., None] + rng.normal(0, 0.05, size=(n_samples, size, size, channels))
    return X.clip(0, 1).astype(np.float32), y


def _outputs(estimator, X) -> np.ndarray:
    for method in ("predict_proba", "transform", "predict"):
        if hasattr(estimator, method):
            return np.asarray(getattr(estimator, method)(X))
    raise AssertionError(f"{type(estimator).__name__} has no predict_proba/transform/predict")


# ---------------------------------------------------------------- image checks
def check_fit_returns_self(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig)
    assert est.fit(X, y) is est, f"{name}.fit must return self"


def check_not_fitted(name, estimator_orig):
    if not get_tags(estimator_orig).requires_fit:
        return  # stateless steps work unfitted; scikit-learn skips them too
    X, _ = make_image_data()
    for method in ("predict", "predict_proba", "transform"):
        if hasattr(estimator_orig, method):
            est = clone(estimator_orig)
            try:
                getattr(est, method)(X)
            except NotFittedError:
                continue
            raise AssertionError(f"{name}.{method} before fit must raise NotFittedError")


def check_fit_idempotent(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig)
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    first = _outputs(est.fit(X, y), X)
    second = _outputs(clone(est).fit(X, y), X)
    third = _outputs(est.fit(X, y), X)
    assert_allclose(first, second, rtol=1e-5, atol=1e-6, err_msg=f"{name}: clone+fit differs")
    assert_allclose(first, third, rtol=1e-5, atol=1e-6, err_msg=f"{name}: refit differs")


def check_pickle_roundtrip(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig).fit(X, y)
    expected = _outputs(est, X)
    assert_array_equal(_outputs(pickle.loads(pickle.dumps(est)), X), expected)
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    assert_array_equal(_outputs(joblib.load(buffer), X), expected)


def check_params_unchanged_by_fit(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig)
    before = copy.deepcopy(est.get_params(deep=False))
    est.fit(X, y)
    after = est.get_params(deep=False)
    for key, value in before.items():
        assert joblib.hash(after[key]) == joblib.hash(value), f"{name}.fit changed {key}"


def check_input_not_modified(name, estimator_orig):
    X, y = make_image_data()
    X_copy, y_copy = X.copy(), y.copy()
    est = clone(estimator_orig).fit(X, y)
    _outputs(est, X)
    assert_array_equal(X, X_copy, err_msg=f"{name} modified X")
    assert_array_equal(y, y_copy, err_msg=f"{name} modified y")


def _fitted_state(est) -> str:
    # A skorch net is hashed through its module's weights and buffers (BatchNorm
    # statistics included), the state prediction could wrongly change.
    state = {k: v for k, v in vars(est).items() if k != "net_"}
    if hasattr(est, "net_"):
        state["net_"] = {k: v.cpu().numpy() for k, v in est.net_.module_.state_dict().items()}
    return joblib.hash(state)


def check_predict_keeps_state(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig).fit(X, y)
    before = _fitted_state(est)
    _outputs(est, X)
    assert _fitted_state(est) == before, f"{name}: predicting changed the fitted state"


def check_uint8_matches_float(name, estimator_orig):
    X, y = make_image_data()
    X8 = np.round(X * 255).astype(np.uint8)
    est = clone(estimator_orig)
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    a = _outputs(clone(est).fit(X8, y), X8)
    b = _outputs(clone(est).fit(X8 / np.float32(255), y), X8 / np.float32(255))
    assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"{name}: uint8 not scaled to [0, 1]")


def check_list_input(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig)
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    a = _outputs(clone(est).fit(X, y), X)
    b = _outputs(clone(est).fit(list(X), list(y)), list(X))
    assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name}: list input differs")


def check_bad_images_raise(name, estimator_orig):
    X, y = make_image_data()
    bad = {
        "NaN": np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X),
        "empty": X[:0],
        "5-D": X[..., None],
        "5 channels": np.repeat(X, 5, axis=-1),
        "strings": np.full(X.shape[:1], "a"),
    }
    for label, X_bad in bad.items():
        est = clone(estimator_orig)
        try:
            est.fit(X_bad, y[: len(X_bad)])
        except ImageInputError:
            continue
        raise AssertionError(f"{name}.fit accepted {label} images instead of ImageInputError")


def check_classifier_labels(name, estimator_orig):
    """String and non-contiguous integer labels come back unchanged from predict (or,
    from a classifier with an unknown answer, its fitted ``unknown_label_``)."""
    X, y = make_image_data(n_classes=3, n_samples=60)
    for labels in (np.array(["cat", "dog", "owl"]), np.array([-5, 7, 100])):
        est = clone(estimator_orig).fit(X, labels[y])
        assert_array_equal(est.classes_, np.sort(labels))
        pred = est.predict(X)
        known = np.isin(pred, labels)
        unknown = getattr(est, "unknown_label_", None)
        assert known.all() or (unknown is not None and (pred[~known] == unknown).all()), (
            f"{name} predicted labels outside classes_"
        )
        proba = est.predict_proba(X)
        assert proba.shape == (len(X), 3)
        assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert_array_equal(pred[known], est.classes_[proba.argmax(axis=1)][known])


def check_classifier_one_label(name, estimator_orig):
    X, y = make_image_data()
    try:
        clone(estimator_orig).fit(X, np.zeros_like(y))
    except ImageInputError as exc:
        assert "class" in str(exc), str(exc)
        return
    raise AssertionError(f"{name}.fit accepted a single class")


def check_classifier_learns(name, estimator_orig):
    X, y = make_image_data(n_samples=64)
    est = clone(estimator_orig).fit(X, y)
    assert est.score(X, y) >= 0.8, f"{name} did not learn an easy image task"


def check_sample_weights_ones(name, estimator_orig):
    """Weights of 1 for every image fit the same model as no weights (or are refused
    with an error that names sample_weight, by a configuration that cannot use them)."""
    X, y = make_image_data()
    est = clone(estimator_orig)
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    try:
        weighted = _outputs(clone(est).fit(X, y, sample_weight=np.ones(len(y))), X)
    except (ImageInputError, ValueError) as exc:
        assert "sample_weight" in str(exc), f"{name}: the error does not name sample_weight"
        return
    unweighted = _outputs(clone(est).fit(X, y), X)
    assert_allclose(
        weighted, unweighted, rtol=1e-4, atol=1e-5, err_msg=f"{name}: unit weights differ"
    )


def check_sample_weights_bad_shape(name, estimator_orig):
    """Weights of the wrong length or shape are refused."""
    X, y = make_image_data()
    for label, weights in (("too few", np.ones(len(y) - 1)), ("2-D", np.ones((len(y), 2)))):
        try:
            clone(estimator_orig).fit(X, y, sample_weight=weights)
        except (ImageInputError, ValueError) as exc:
            assert "sample_weight" in str(exc), f"{name}: the error does not name sample_weight"
            continue
        raise AssertionError(f"{name}.fit accepted {label} sample weights")


def check_partial_fit(name, estimator_orig):
    """A classifier's partial_fit needs the classes on its first call, takes one class
    per call, and learns an easy task over a few calls in parts."""
    X, y = make_image_data(n_samples=64)
    est = clone(estimator_orig)
    try:
        est.partial_fit(X, y)
    except ValueError as exc:
        assert "classes" in str(exc), f"{name}: the error does not name classes"
    else:
        raise AssertionError(f"{name}.partial_fit accepted a first call without classes")
    first = y == y[0]
    est.partial_fit(X[first], y[first], classes=np.unique(y))
    assert_array_equal(est.classes_, np.unique(y))
    for _ in range(4):
        for part in np.array_split(np.arange(len(y)), 2):
            est.partial_fit(X[part], y[part])
    assert est.score(X, y) >= 0.8, f"{name} did not learn an easy image task in parts"


def check_set_params_then_fit(name, estimator_orig):
    X, y = make_image_data()
    est = clone(estimator_orig).fit(X, y)
    params = est.get_params(deep=False)
    est.set_params(**params).fit(X, y)
    assert clone(est).get_params(deep=False).keys() == params.keys()
    fresh = clone(est)
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(fresh)), (
        f"clone of a fitted {name} kept fitted attributes"
    )


# scikit-learn checks that build no data, and so apply to image estimators as they are.
_SKLEARN_DATA_FREE = (
    skchecks.check_estimator_cloneable,
    skchecks.check_estimator_repr,
    skchecks.check_estimator_tags_renamed,
    skchecks.check_valid_tag_types,
    skchecks.check_no_attributes_set_in_init,
    skchecks.check_parameters_default_constructible,
    skchecks.check_get_params_invariance,
    skchecks.check_set_params,
    skchecks.check_mixin_order,
    skchecks.check_do_not_raise_errors_in_init_or_set_params,
    skchecks.check_param_validation,
)

_IMAGE_CHECKS = (
    check_fit_returns_self,
    check_not_fitted,
    check_fit_idempotent,
    check_pickle_roundtrip,
    check_params_unchanged_by_fit,
    check_input_not_modified,
    check_predict_keeps_state,
    check_list_input,
    check_bad_images_raise,
    check_set_params_then_fit,
)

_CLASSIFIER_CHECKS = (
    check_uint8_matches_float,
    check_classifier_labels,
    check_classifier_one_label,
    check_classifier_learns,
)


_SAMPLE_WEIGHT_CHECKS = (
    check_sample_weights_ones,
    check_sample_weights_bad_shape,
)


def _yield_checks(estimator) -> Iterator[Callable]:
    yield from _SKLEARN_DATA_FREE
    yield from _IMAGE_CHECKS
    if is_classifier(estimator):
        yield from _CLASSIFIER_CHECKS
    if has_fit_parameter(estimator, "sample_weight"):
        yield from _SAMPLE_WEIGHT_CHECKS
    if is_classifier(estimator) and hasattr(estimator, "partial_fit"):
        yield check_partial_fit


def _check_name(check) -> str:
    return getattr(check, "__name__", None) or check.func.__name__


def parametrize_with_image_checks(estimators: Iterable):
    """A ``pytest.mark.parametrize`` decorator over every (estimator, check) pair.

    Parameters
    ----------
    estimators : iterable of estimator instances
        Configure them to fit in a second (tiny backbones, one or two epochs).

    Returns
    -------
    decorator
        Parametrizes the test's ``estimator`` and ``check`` arguments.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.utils.estimator_checks import parametrize_with_image_checks
    >>> @parametrize_with_image_checks([ImageClassifier(backbone="test_cnn")])
    ... def test_sklimg_compatible(estimator, check):
    ...     check(estimator)
    """
    import pytest

    cases = [
        (est, partial(check, type(est).__name__))
        for est in estimators
        for check in _yield_checks(est)
    ]
    ids = [f"{type(est).__name__}-{_check_name(check)}" for est, check in cases]
    return pytest.mark.parametrize(("estimator", "check"), cases, ids=ids)


def check_image_estimator(estimator) -> None:
    """Run every check on one estimator, raising on the first failure.

    Parameters
    ----------
    estimator : estimator instance

    Raises
    ------
    AssertionError
        From the first check the estimator fails, naming the estimator.

    Examples
    --------
    >>> from sklimg.preprocessing import Resize
    >>> from sklimg.utils.estimator_checks import check_image_estimator
    >>> check_image_estimator(Resize(size=8))  # passes: nothing raised
    """
    name = type(estimator).__name__
    for check in _yield_checks(estimator):
        check(name, estimator)
