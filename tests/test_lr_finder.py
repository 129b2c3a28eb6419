"""The learning-rate range test: find_lr and its plot."""

import matplotlib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sklimg import ImageClassifier
from sklimg.exceptions import ImageInputError
from sklimg.lr_finder import LRFinderResult, _valley, find_lr
from sklimg.plotting import plot_lr_finder
from sklimg.preprocessing import Resize

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FAST = dict(backbone="test_cnn", random_state=0)


@pytest.fixture(scope="module")
def digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    return X_train[:600], y_train[:600], X_test, y_test


def test_the_rate_grows_geometrically_until_the_loss_blows_up(digits):
    X, y, _, _ = digits
    clf = ImageClassifier(**FAST)
    params = clf.get_params()
    result = find_lr(clf, X, y, start_lr=1e-6, end_lr=1e3, num_iter=60)
    assert not hasattr(clf, "classes_") and clf.get_params() == params  # untouched
    ratios = result.lrs[1:] / result.lrs[:-1]
    np.testing.assert_allclose(ratios, (1e3 / 1e-6) ** (1 / 59), rtol=1e-9)
    assert result.lrs[0] == pytest.approx(1e-6)
    # Rates up to 1e3 make the loss diverge: the test stops before the last step.
    assert len(result.lrs) < 60
    assert result.losses[-1] > 5 * result.losses.min()
    assert np.isfinite(result.losses).all()
    for rate in (result.suggestion, result.minimum, result.valley, result.steep):
        assert result.lrs[0] <= rate <= result.lrs[-1]
    assert result.suggestion == result.minimum
    # As fastai, the rules read the curve without its first tenth and last 5 steps.
    kept_lrs, kept = result.lrs[6:-5], result.losses[6:-5]
    assert result.minimum == pytest.approx(kept_lrs[np.argmin(kept)] / 10)
    slopes = np.diff(kept) / np.diff(np.log(kept_lrs))
    assert result.steep == pytest.approx(kept_lrs[np.argmin(slopes)])
    # Repeatable with an int random_state.
    again = find_lr(clf, X, y, start_lr=1e-6, end_lr=1e3, num_iter=60)
    np.testing.assert_array_equal(again.losses, result.losses)


def test_the_suggestion_trains_better_than_rates_far_from_it(digits):
    X, y, X_test, y_test = digits
    suggestion = find_lr(ImageClassifier(**FAST), X, y).suggestion
    scores = {
        lr: ImageClassifier(**FAST, lr=lr, max_epochs=4).fit(X, y).score(X_test, y_test)
        for lr in (suggestion / 30, suggestion, suggestion * 30)
    }
    assert scores[suggestion] > max(scores[suggestion / 30], scores[suggestion * 30]) + 0.1


def test_valley_is_two_thirds_down_the_longest_descent():
    losses = np.r_[np.full(10, 2.0), np.linspace(2.0, 0.5, 31)[1:], np.linspace(0.5, 3.0, 10)]
    # The longest decreasing run: a 2.0 and indices 10-39, 31 points ending at 39;
    # fastai starts it at 39 - 31 = 8 and goes 1/3 + 1/6 of its length further.
    assert _valley(losses) == 8 + 10 + 5
    noisy = losses + np.random.default_rng(0).normal(0, 0.01, len(losses))
    assert 20 <= _valley(noisy) <= 30


# 20 steps say little about the rate: this test is about what trains, not the curve.
@pytest.mark.filterwarnings("ignore:The loss was still falling", "ignore:The loss did not fall")
def test_pipelines_frozen_backbones_and_weights(digits):
    X, y, _, _ = digits
    pipe = make_pipeline(Resize(12), ImageClassifier(**FAST))
    assert isinstance(find_lr(pipe, X, y, num_iter=20), LRFinderResult)
    alone = find_lr(make_pipeline(ImageClassifier(**FAST)), X, y, num_iter=20)
    np.testing.assert_array_equal(
        alone.losses, find_lr(ImageClassifier(**FAST), X, y, num_iter=20).losses
    )
    with pytest.raises(TypeError, match="ending in one; got LogisticRegression"):
        find_lr(make_pipeline(Resize(12), LogisticRegression()), X, y)
    # Gradual unfreezing with no frozen epochs trains everything from the start.
    gradual = find_lr(
        ImageClassifier(**FAST, finetune="gradual", freeze_epochs=0), X, y, num_iter=20
    )
    full = find_lr(ImageClassifier(**FAST, finetune="full"), X, y, num_iter=20)
    np.testing.assert_allclose(gradual.losses, full.losses, rtol=1e-5)
    # A frozen backbone trains its head on features computed once.
    head_only = find_lr(ImageClassifier(**FAST, finetune="head"), X, y, num_iter=20)
    full = find_lr(ImageClassifier(**FAST), X, y, num_iter=20)
    assert not np.array_equal(head_only.losses, full.losses)
    weighted = find_lr(ImageClassifier(**FAST), X, y, sample_weight=(y != 3) * 1.0, num_iter=20)
    assert not np.array_equal(weighted.losses, full.losses)


@pytest.mark.parametrize(
    ("estimator", "kwargs", "error", "match"),
    [
        (ImageClassifier("hog"), {}, ValueError, "scikit-learn head on fixed features"),
        (
            ImageClassifier("test_cnn", head=LogisticRegression()),
            {},
            ValueError,
            "scikit-learn head",
        ),
        (LogisticRegression(), {}, TypeError, "needs an ImageClassifier.*LogisticRegression"),
        (ImageClassifier(**FAST), {"start_lr": 0}, ValueError, "start_lr must be a positive"),
        (ImageClassifier(**FAST), {"end_lr": np.inf}, ValueError, "end_lr must be a positive, fin"),
        (ImageClassifier(**FAST), {"end_lr": 1e-8}, ValueError, "start_lr must be below end_lr"),
        (ImageClassifier(**FAST), {"num_iter": 1}, ValueError, "num_iter must be an int of"),
        (ImageClassifier(**FAST), {"smooth_f": 0}, ValueError, r"smooth_f must be in \(0, 1\]"),
        (ImageClassifier(**FAST), {"diverge_th": 1}, ValueError, "diverge_th must be a number"),
    ],
)
def test_bad_calls_are_refused(digits, estimator, kwargs, error, match):
    X, y, _, _ = digits
    with pytest.raises(error, match=match):
        find_lr(clone(estimator), X, y, **kwargs)


def test_curves_that_say_nothing_are_flagged(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match=r"diverged after \d+ of 100 steps.*lower start_lr"):
        find_lr(ImageClassifier(**FAST), X, y, start_lr=1e4, end_lr=1e6)
    with pytest.warns(UserWarning, match="still falling at the highest rate tested"):
        find_lr(ImageClassifier(**FAST), X, y, start_lr=1e-4, end_lr=1e-2, num_iter=60)
    with pytest.warns(UserWarning, match=r"did not fall \(by 1% or more\) over the rates"):
        find_lr(ImageClassifier(**FAST), X, y, start_lr=1e-12, end_lr=1e-10, num_iter=60)


def test_bad_data_is_refused(digits):
    X, y, _, _ = digits
    with pytest.raises(ImageInputError, match="600 images but y has 10 labels"):
        find_lr(ImageClassifier(**FAST), X, y[:10])


def test_plot_marks_the_suggestion(digits):
    X, y, _, _ = digits
    result = find_lr(ImageClassifier(**FAST), X, y, num_iter=30)
    fig, ax = plt.subplots()
    assert plot_lr_finder(result, ax=ax) is fig
    curve, marker = ax.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), result.lrs)
    assert marker.get_xdata()[0] == result.suggestion
    assert ax.get_xscale() == "log" and "suggestion" in ax.get_legend().get_texts()[1].get_text()
    with pytest.raises(TypeError, match="draws what sklimg.lr_finder.find_lr returns"):
        plot_lr_finder({"lrs": [1]})
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_lr_finder(result, ax=[ax, ax])
    plt.close("all")
