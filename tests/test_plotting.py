"""Plots of a trained classifier: learning curves, confusion matrix, worst errors."""

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from sklimg import ImageClassifier
from sklimg.exceptions import NotFittedError
from sklimg.plotting import (
    most_confused_grid,
    plot_confusion_matrix,
    plot_history,
    plot_most_confused,
)
from sklimg.preprocessing import LazyImages

matplotlib.use("Agg")  # no window; set before pyplot is first used
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted(small_digits):
    """A classifier trained 2 epochs with validation, and 100 digits it did not see."""
    X, y = small_digits
    clf = ImageClassifier(**FAST, validation_fraction=0.25).fit(X[:160], y[:160])
    return clf, X[200:], y[200:]


def test_importing_sklimg_plotting_and_cli_does_not_import_matplotlib():
    code = "import sys, sklimg.plotting, sklimg.cli; print('matplotlib' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------------ history
def test_history_draws_losses_and_accuracy_per_epoch(fitted):
    clf = fitted[0]
    fig = plot_history(clf)
    loss, acc = fig.axes
    assert [loss.get_title(), acc.get_title()] == ["Loss", "Accuracy"]
    assert [line.get_label() for line in loss.get_lines()] == ["train loss", "valid loss"]
    assert [line.get_label() for line in acc.get_lines()] == ["valid acc"]
    train_loss = loss.get_lines()[0]
    np.testing.assert_array_equal(train_loss.get_xdata(), [1, 2])
    np.testing.assert_allclose(train_loss.get_ydata(), clf.history_[:, "train_loss"])
    np.testing.assert_allclose(acc.get_lines()[0].get_ydata(), clf.history_[:, "valid_acc"])
    assert loss.get_xlabel() == "epoch"


def test_history_without_validation_says_how_to_get_it(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X[:64], y[:64])
    loss, acc = plot_history(clf).axes
    assert [line.get_label() for line in loss.get_lines()] == ["train loss"]
    assert acc.get_lines() == []
    assert "validation_fraction" in acc.texts[0].get_text()


def test_history_metrics_axes_and_skorch_history(fitted):
    clf = fitted[0]
    fig = plot_history(clf, metrics="dur")
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 1

    fig, axes = plt.subplots(1, 2)
    assert plot_history(clf.history_, ax=axes) is fig  # a skorch History works too
    assert all(len(ax.get_lines()) > 0 for ax in axes)
    fig, ax = plt.subplots()
    assert plot_history(clf, ax=ax, metrics=["loss"]) is fig

    with pytest.raises(ValueError, match="one matplotlib Axes per metric \\(2\\)"):
        plot_history(clf, ax=ax)
    with pytest.raises(ValueError, match="'f1' is not in the training history.*'valid_acc'"):
        plot_history(clf, metrics=("loss", "f1"))
    with pytest.raises(ValueError, match="metrics is empty"):
        plot_history(clf, metrics=())


def test_history_of_unfitted_or_scikit_learn_head_classifier_is_an_error(small_digits):
    with pytest.raises(NotFittedError):
        plot_history(ImageClassifier())
    X, y = small_digits
    classical = ImageClassifier("pixels").fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="no training history: it was fitted with a scikit"):
        plot_history(classical)


# --------------------------------------------------------------- confusion matrix
def test_confusion_matrix_counts_predictions(fitted):
    clf, X, y = fitted
    display = plot_confusion_matrix(clf, X, y)
    expected = np.zeros((10, 10), int)
    np.add.at(expected, (y, clf.predict(X)), 1)
    np.testing.assert_array_equal(display.confusion_matrix, expected)
    assert display.ax_.get_xlabel() == "Predicted label"
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == [str(d) for d in range(10)]
    assert display.text_.shape == (10, 10)  # a number in every cell


def test_confusion_matrix_normalized_on_given_axes_with_unseen_labels(fitted):
    clf, X, y = fitted
    _, ax = plt.subplots()
    display = plot_confusion_matrix(clf, X, y, normalize="true", ax=ax)
    assert display.ax_ is ax
    np.testing.assert_allclose(display.confusion_matrix.sum(axis=1), 1)

    y_unseen = y.copy()
    y_unseen[:5] = 42  # a label the classifier never saw: a last row, no correct column
    display = plot_confusion_matrix(clf, X, y_unseen)
    assert display.confusion_matrix.shape == (11, 11)
    assert display.confusion_matrix[10].sum() == 5 and display.confusion_matrix[:, 10].sum() == 0
    with pytest.raises(ValueError, match="normalize must be"):
        plot_confusion_matrix(clf, X, y, normalize="rows")
    with pytest.raises(ValueError, match="X holds 100 images but y holds 99 labels"):
        plot_confusion_matrix(clf, X, y[:99])


# ------------------------------------------------------------------ worst errors
def test_most_confused_shows_the_most_confident_errors_first(fitted):
    clf, X, y = fitted
    proba = clf.predict_proba(X)
    wrong = clf.predict(X) != y
    assert wrong.sum() > 4  # 2 epochs: some errors to show
    fig = plot_most_confused(clf, X, y, n=4)
    assert len(fig.axes) == 4
    assert all(len(ax.images) == 1 for ax in fig.axes)
    shown = []
    for ax in fig.axes:
        true, predicted = ax.get_title().split("\n")
        label = int(true.removeprefix("true: "))
        guess, confidence = predicted.removeprefix("pred: ").split()
        assert label != int(guess)
        shown.append(float(confidence.strip("()")))
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == pytest.approx(proba[wrong].max(), abs=0.005)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (8, 8)  # grayscale digits drawn as they are


def test_most_confused_grid_layout_and_no_errors(fitted):
    clf, X, y = fitted
    fig = plot_most_confused(clf, X, y, n=5, ncols=5)
    assert len(fig.axes) == 5
    assert {ax.get_subplotspec().rowspan.start for ax in fig.axes} == {0}  # one row

    fig = plot_most_confused(clf, X, clf.predict(X))  # labels = predictions: no error
    assert len(fig.axes) == 1
    assert fig.axes[0].texts[0].get_text() == "No misclassified images among 100."
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive int"):
            plot_most_confused(clf, X, y, n=bad)


def test_most_confused_files_decodes_only_the_images_shown(fitted, tmp_path):
    clf, X, y = fitted
    paths = []
    for i, image in enumerate(np.round(X[:30] * 255).astype(np.uint8)):
        (tmp_path / str(y[i])).mkdir(exist_ok=True)
        paths.append(str(tmp_path / str(y[i]) / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])

    fig = plot_most_confused(clf, paths, y[:30], n=3)
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert len(labels) == 3 and all(label.endswith(".png") and "/" in label for label in labels)

    decoded = []

    def counting(image):
        decoded.append(image.shape)
        return image

    lazy = LazyImages(paths, ops=[counting])
    proba = clf.predict_proba(np.round(X[:30] * 255).astype(np.uint8))
    fig = plt.figure()
    assert most_confused_grid(lazy, y[:30], proba, clf.classes_, n=2, fig=fig) is fig
    assert len(decoded) == 2 and len(fig.axes) == 2


def test_most_confused_takes_what_a_pipeline_takes(small_digits):
    # Images of other sizes, RGBA: the pipeline's steps make them fit the classifier.
    from sklearn.pipeline import make_pipeline

    from sklimg.preprocessing import Resize, ToRGB

    X, y = small_digits
    rgba = np.concatenate([np.repeat(X[..., None], 3, axis=-1), np.ones((*X.shape, 1))], -1)
    images = [
        np.kron(image, np.ones((k, k, 1))) for image, k in zip(rgba, [1, 2] * 150, strict=True)
    ]
    model = make_pipeline(ToRGB(), Resize(8), ImageClassifier(**FAST)).fit(images[:200], y[:200])
    fig = plot_most_confused(model, images[200:], y[200:], n=4)
    assert len(fig.axes) == 4
    shapes = {fig_ax.images[0].get_array().shape for fig_ax in fig.axes}
    assert shapes <= {(8, 8, 4), (16, 16, 4)}  # drawn as given, not as the model saw them


def test_most_confused_with_explain_overlays_the_map_of_the_wrong_class(fitted):
    from sklimg import explain
    from sklimg.plotting import saliency_overlay

    clf, X, y = fitted
    fig = plot_most_confused(clf, X, y, n=3, explain=True, method="integrated_gradients")
    proba = clf.predict_proba(X)
    confidence = proba.max(axis=1)
    wrong = np.flatnonzero(clf.predict(X) != y)
    first = wrong[np.argmax(confidence[wrong])]
    drawn = fig.axes[0].images[0].get_array()
    guess = clf.classes_[proba[first].argmax()]
    maps = explain(clf, X[first : first + 1], method="integrated_gradients", target=guess)
    np.testing.assert_array_equal(drawn, saliency_overlay(X[first], maps[0]))
    assert drawn.shape == (8, 8, 3)
    with pytest.raises(ValueError, match=r"Unknown method 'lime'.*'gradcam'"):
        plot_most_confused(clf, X, y, explain=True, method="lime")


def test_most_confused_explains_each_image_at_its_own_size_through_a_pipeline(small_digits):
    from sklearn.pipeline import make_pipeline

    from sklimg.preprocessing import Resize

    X, y = small_digits
    images = [np.kron(image, np.ones((k, k))) for image, k in zip(X, [1, 2] * 150, strict=True)]
    model = make_pipeline(Resize(8), ImageClassifier(**FAST)).fit(images[:200], y[:200])
    fig = plot_most_confused(model, images[200:], y[200:], n=6, explain=True)
    shapes = {ax.images[0].get_array().shape for ax in fig.axes}
    assert shapes == {(8, 8, 3), (16, 16, 3)}  # the overlays on the images as given


def test_label_issues_show_suspects_worst_first_and_duplicate_pairs(small_digits):
    from sklearn.neighbors import KNeighborsClassifier

    from sklimg import audit, plot_label_issues

    X, y = small_digits
    X, y = X.copy(), y.copy()
    y[:6] = (y[:6] + 1) % 10
    X[299], X[298] = X[10], X[11]
    groups = np.arange(300) % 5
    groups[299] = (groups[10] + 1) % 5  # this copy crosses the split
    groups[298] = groups[11]
    report = audit(ImageClassifier("pixels", head=KNeighborsClassifier(10)), X, y, groups=groups)
    assert report.loc[[298, 299], "duplicate_of"].tolist() == [11, 10]
    fig = plot_label_issues(report, X, n=3, n_pairs=10)
    suspects = report[report["label_issue"]].sort_values("label_quality", kind="stable")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(suspects) >= 3
    for title, (_, row) in zip(titles, suspects.head(3).iterrows(), strict=False):
        assert title.startswith(f"given: {row['label']} (quality {row['label_quality']:.2f})")
        assert title.endswith(f"suggested: {row['suggested_label']}")
    # Then each pair, in the order of the copies: the earlier image, then its copy.
    pairs = report[report["duplicate_of"].notna()]
    expected = []
    for _, row in pairs.iterrows():
        leak = "\ncrosses the split" if row["crosses_split"] else ""
        expected += [f"#{row['duplicate_of']}", f"duplicate of #{row['duplicate_of']}{leak}"]
    assert titles[3:] == expected
    assert expected[-4:] == [
        "#11",
        "duplicate of #11",
        "#10",
        "duplicate of #10\ncrosses the split",
    ]
    with pytest.raises(ValueError, match="lacks the columns"):
        plot_label_issues(report.drop(columns="label_quality"), X)
    with pytest.raises(ValueError, match="n_pairs must be a non-negative int"):
        plot_label_issues(report, X, n_pairs=-1)
    with pytest.raises(ValueError, match="X holds 299 images but y holds 300"):
        plot_label_issues(report, X[:-1])
