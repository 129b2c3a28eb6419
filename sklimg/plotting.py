"""Plots to watch and check a trained classifier: learning curves, confusion matrix, the
images it gets most confidently wrong, the learning-rate range test, how well its
probabilities are calibrated, and the suspects of a data audit.

matplotlib is imported inside each function, so ``import sklimg`` does not load it, and
no backend is chosen here: figures go wherever your matplotlib sends them (a notebook,
a window, or ``savefig``). Functions given an ``ax`` or ``fig`` draw into it and never
touch pyplot's state, which is how the ``sklimg`` command draws without a display.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from sklimg._lazy import LazyImages
from sklimg.lr_finder import LRFinderResult
from sklimg.metrics import expected_calibration_error, reliability_bins
from sklimg.utils.validation import as_images

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

__all__ = [
    "plot_confusion_matrix",
    "plot_explanations",
    "plot_history",
    "plot_label_issues",
    "plot_lr_finder",
    "plot_most_confused",
    "plot_reliability",
    "saliency_overlay",
]

# A metric name in plot_history draws these history keys in one panel, the ones present.
_METRIC_GROUPS = {
    "loss": ("train_loss", "valid_loss"),
    "acc": ("train_acc", "valid_acc"),
}
_METRIC_TITLES = {"loss": "Loss", "acc": "Accuracy"}


# ----------------------------------------------------------------------- history
def plot_history(
    clf, *, ax: Axes | Sequence[Axes] | None = None, metrics: str | Sequence[str] = ("loss", "acc")
) -> Figure:
    """Learning curves: training and validation loss, and validation accuracy, per epoch.

    Parameters
    ----------
    clf : ImageClassifier or skorch History
        A classifier fitted with a neural head (it has ``history_``), or a skorch
        ``History`` such as ``net.history``.
    ax : matplotlib Axes, sequence of Axes or None, default=None
        Where to draw, one Axes per metric. ``None``: a new figure (through pyplot)
        with one panel per metric, side by side.
    metrics : str or sequence of str, default=("loss", "acc")
        One panel each. ``"loss"`` draws ``train_loss`` and ``valid_loss``; ``"acc"``
        draws ``valid_acc`` (and ``train_acc`` if a callback records it); any other
        name is a key of the history, e.g. ``"dur"`` (seconds per epoch). Validation
        curves exist when the classifier was fitted with ``validation_fraction``; without
        them, the ``"acc"`` panel says so instead of staying blank.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the panels (``fig.axes``).

    Raises
    ------
    NotFittedError
        If ``clf`` is not fitted.
    ValueError
        If ``clf`` has no history (it was fitted with a scikit-learn ``head`` or a
        classical backbone, which train in one step, not in epochs), if a metric is
        not in the history, or if ``ax`` does not hold one Axes per metric.

    See Also
    --------
    plot_confusion_matrix : Which classes are mistaken for which.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.plotting import plot_history
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=2, validation_fraction=0.2, random_state=0)
    >>> fig = plot_history(clf.fit(X[:100], y[:100]))
    >>> [ax.get_title() for ax in fig.axes]
    ['Loss', 'Accuracy']
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['train loss', 'valid loss']
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    history = _history(clf)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError("metrics is empty; name at least one, e.g. metrics=('loss', 'acc').")
    recorded = sorted({key for row in history for key in row})
    for name in names:
        if name not in _METRIC_GROUPS and name not in recorded:
            raise ValueError(
                f"Metric {name!r} is not in the training history; use 'loss', 'acc', or "
                f"one of the recorded keys {recorded}."
            )
    axes = _axes_for(ax, len(names))
    for axis, name in zip(axes, names, strict=True):
        _draw_metric(axis, history, name)
    return axes[0].figure


def plot_lr_finder(result, *, ax: Axes | None = None) -> Figure:
    """The learning-rate range test: smoothed training loss against the learning rate
    (log scale), with the suggested rate marked.

    Parameters
    ----------
    result : LRFinderResult
        What :func:`sklimg.lr_finder.find_lr` returned.
    ax : matplotlib Axes or None, default=None
        Where to draw. ``None``: a new figure, through pyplot.

    Returns
    -------
    fig : matplotlib Figure

    Raises
    ------
    TypeError
        If ``result`` is not an ``LRFinderResult``.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.lr_finder import find_lr
    >>> from sklimg.plotting import plot_lr_finder
    >>> X, y = load_digits_images(return_X_y=True)
    >>> result = find_lr(ImageClassifier("test_cnn", random_state=0), X[:300], y[:300], num_iter=30)
    >>> fig = plot_lr_finder(result)
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_xlabel()
    ('log', 'learning rate')
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    if not isinstance(result, LRFinderResult):
        raise TypeError(
            f"plot_lr_finder draws what sklimg.lr_finder.find_lr returns; got "
            f"{type(result).__name__}."
        )
    if ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None; got {ax!r}.")
    (axis,) = _axes_for(ax, 1)
    axis.plot(result.lrs, result.losses, label="training loss (smoothed)")
    at = int(np.argmin(np.abs(result.lrs - result.suggestion)))
    axis.plot(
        [result.suggestion],
        [result.losses[at]],
        "o",
        color="C3",
        label=f"suggestion: {result.suggestion:.2g}",
    )
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("loss")
    axis.set_title("Learning-rate range test")
    axis.legend()
    return axis.figure


def _history(clf) -> list[dict[str, Any]]:
    """The per-epoch records of ``clf`` (a fitted classifier or a skorch History)."""
    from skorch.history import History

    if isinstance(clf, History):
        return list(clf)
    check_is_fitted(clf)
    history = getattr(clf, "history_", None)
    if history is None:
        raise ValueError(
            f"This {type(clf).__name__} has no training history: it was fitted with a "
            f"scikit-learn head (head=... or a classical backbone such as 'hog'), which is "
            f"fitted in one step rather than in epochs. Learning curves exist with the "
            f"neural head (head=None and a deep backbone)."
        )
    return list(history)


def _axes_for(ax, n: int) -> list[Axes]:
    """``n`` Axes: the given ones, checked, or the panels of a new pyplot figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.5), squeeze=False, layout="constrained")
        return list(axes[0])
    from matplotlib.axes import Axes

    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(
            f"ax must hold one matplotlib Axes per metric ({n}); got {ax!r}. Pass ax=None "
            f"for a new figure, or e.g. fig.subplots(1, {n})."
        )
    return axes


def _draw_metric(ax: Axes, history: list[dict[str, Any]], name: str) -> None:
    from matplotlib.ticker import MaxNLocator

    keys = _METRIC_GROUPS.get(name, (name,))
    drawn = False
    for key in keys:
        # Rows lack a key when its epoch was cut short or had no validation step.
        points = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
        if not points:
            continue
        epochs, values = zip(*points, strict=True)
        ax.plot(epochs, values, marker="o" if len(points) <= 30 else None, label=_label(key))
        drawn = True
    ax.set_title(_METRIC_TITLES.get(name, name))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if drawn:
        ax.legend()
    else:
        ax.text(
            0.5,
            0.5,
            "no validation during training:\nfit with validation_fraction=0.1",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )


def _label(key: str) -> str:
    return key.replace("_", " ")


# ------------------------------------------------------------------ confusion matrix
def plot_confusion_matrix(
    clf,
    X,
    y,
    *,
    normalize: str | None = None,
    ax: Axes | None = None,
    cmap: str = "Blues",
) -> ConfusionMatrixDisplay:
    """The confusion matrix of ``clf`` on images ``X`` with true labels ``y``.

    Drawn by scikit-learn's :meth:`~sklearn.metrics.ConfusionMatrixDisplay.from_predictions`;
    rows are true labels, columns predicted ones, in the order of ``clf.classes_``
    (labels of ``y`` the classifier never saw come last, as rows with no correct column).

    Parameters
    ----------
    clf : fitted classifier
        An :class:`~sklimg.ImageClassifier`, or any fitted classifier with
        ``classes_`` (a Pipeline ending in one, for instance).
    X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths, or \
LazyImages
        Images, as ``clf.predict`` takes them.
    y : array-like of shape (n_samples,)
        True labels.
    normalize : {"true", "pred", "all"} or None, default=None
        Show fractions instead of counts: of each true class (rows sum to 1), of each
        predicted class (columns), or of all images.
    ax : matplotlib Axes or None, default=None
        Where to draw; ``None``: a new figure through pyplot.
    cmap : str, default="Blues"
        Colour map of the cells.

    Returns
    -------
    display : sklearn.metrics.ConfusionMatrixDisplay
        ``display.confusion_matrix``, ``display.ax_``, ``display.figure_``.

    See Also
    --------
    plot_most_confused : The misclassified images themselves.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.plotting import plot_confusion_matrix
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> display = plot_confusion_matrix(clf, X[100:200], y[100:200])
    >>> display.confusion_matrix.shape, int(display.confusion_matrix.sum())
    ((10, 10), 100)
    >>> import matplotlib.pyplot as plt
    >>> plt.close(display.figure_)
    """
    y = np.asarray(y)
    _check_lengths(X, y)
    return confusion_matrix_display(
        y, clf.predict(X), clf.classes_, normalize=normalize, ax=ax, cmap=cmap
    )


def confusion_matrix_display(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: np.ndarray,
    *,
    normalize: str | None = None,
    ax: Axes | None = None,
    cmap: str = "Blues",
) -> ConfusionMatrixDisplay:
    """Draw the confusion matrix of predictions already made.

    What :func:`plot_confusion_matrix` draws after predicting, and ``sklimg evaluate
    --confusion-matrix`` from the predictions it printed. Labels only ``y_true`` has
    (never predicted) come after ``classes``.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be 'true', 'pred', 'all' or None; got {normalize!r}.")
    labels = _labels(classes, y_true)
    long_names = len(labels) > 6 or max(len(str(label)) for label in labels) > 6
    return ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        display_labels=[str(label) for label in labels],
        normalize=normalize,
        ax=ax,
        cmap=cmap,
        xticks_rotation=45 if long_names else "horizontal",
    )


def _labels(classes: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """The classifier's classes, then labels only ``y_true`` has (never predicted)."""
    unseen = np.setdiff1d(np.unique(y_true), classes)
    return np.concatenate([np.asarray(classes), unseen]) if len(unseen) else np.asarray(classes)


# ------------------------------------------------------------------- worst errors
def plot_most_confused(
    clf,
    X,
    y,
    *,
    n: int = 16,
    ncols: int | None = None,
    explain: bool = False,
    method: str = "gradcam",
    fig: Figure | None = None,
) -> Figure:
    """A grid of the images ``clf`` gets wrong with the highest confidence.

    Each image is titled with its true label, the predicted label and the probability
    the classifier gave the prediction, most confident first. These are the images to
    look at first: wrong labels in the data, ambiguous images, or a class the model has
    not learnt.

    Parameters
    ----------
    clf : fitted classifier
        With ``predict_proba`` and ``classes_``, such as an
        :class:`~sklimg.ImageClassifier`.
    X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths, or \
LazyImages
        Images, as ``clf.predict_proba`` takes them. Files and ``LazyImages`` are
        decoded again only for the images shown.
    y : array-like of shape (n_samples,)
        True labels.
    n : int, default=16
        Most images shown.
    ncols : int or None, default=None
        Columns of the grid; ``None``: about as many as rows.
    explain : bool, default=False
        Overlay each image with its saliency map for the predicted (wrong) class:
        where the classifier looked when it made the error. ``clf`` is then an
        :class:`~sklimg.ImageClassifier` or a pipeline ending in one, and each image
        shown is explained alone, at its own size (see :func:`sklimg.explain`).
    method : {"gradcam", "integrated_gradients", "occlusion"}, default="gradcam"
        The saliency method, with ``explain=True``.
    fig : matplotlib Figure or None, default=None
        An empty figure to draw into; ``None``: a new one through pyplot.

    Returns
    -------
    fig : matplotlib Figure
        One Axes per image shown; a single Axes with a note when nothing is
        misclassified.

    Raises
    ------
    ValueError
        If ``n`` or ``ncols`` is not a positive int, or ``X`` and ``y`` differ in
        length.

    See Also
    --------
    plot_confusion_matrix : Counts of errors per pair of classes.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.plotting import plot_most_confused
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> fig = plot_most_confused(clf, X[100:200], y[100:200], n=4)
    >>> len(fig.axes)
    4
    >>> fig.axes[0].get_title()  # doctest: +SKIP
    'true: 8\\npred: 1 (0.62)'
    >>> fig_maps = plot_most_confused(clf, X[100:200], y[100:200], n=4, explain=True)
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    >>> plt.close(fig_maps)
    """
    y = np.asarray(y)
    _check_lengths(X, y)
    # The classifier takes X as given (a pipeline may resize or convert it); the images
    # are validated here for display only: any sizes, and RGBA too.
    proba = clf.predict_proba(X)
    images = as_images(
        X, image_shape=getattr(clf, "image_shape", None), channels=(1, 3, 4), ragged=True
    )
    saliency = error_saliency(clf, method) if explain else None
    return most_confused_grid(
        images, y, proba, clf.classes_, n=n, ncols=ncols, saliency=saliency, fig=fig
    )


def error_saliency(model, method: str) -> Callable[[np.ndarray, Any], np.ndarray]:
    """``saliency(image, label) -> map``: :func:`sklimg.explain` of one image (at its
    own size, as a grid of errors may hold images of several) for ``label``.

    Parameters
    ----------
    model : ImageClassifier or Pipeline ending in one
    method : str
        As for :func:`sklimg.explain`.

    Returns
    -------
    callable
    """
    from sklimg.saliency import METHODS, explain

    if method not in METHODS:  # before the grid's predictions, not after them
        raise ValueError(f"Unknown method {method!r}; choose one of {list(METHODS)}.")

    def saliency(image: np.ndarray, label) -> np.ndarray:
        return explain(model, np.asarray(image)[np.newaxis], method=method, target=[label])[0]

    return saliency


def plot_label_issues(
    audit,
    X,
    *,
    n: int = 16,
    n_pairs: int = 4,
    ncols: int | None = None,
    fig: Figure | None = None,
) -> Figure:
    """The worst suspects of a :func:`sklimg.audit`: label issues and near duplicates.

    A grid of the images flagged ``label_issue``, lowest ``label_quality`` first, each
    titled with its given and suggested labels and the quality; below it, up to
    ``n_pairs`` duplicate pairs side by side (the earlier image, then its copy, marked
    when the pair crosses the split).

    Parameters
    ----------
    audit : pandas.DataFrame
        What :func:`sklimg.audit` returned for ``X``.
    X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths, or \
LazyImages
        The images audited, in the same order. Files are decoded only for the images
        shown.
    n : int, default=16
        Most suspects shown.
    n_pairs : int, default=4
        Most duplicate pairs shown (0: none).
    ncols : int or None, default=None
        Columns of the suspects' grid; ``None``: about as many as rows.
    fig : matplotlib Figure or None, default=None
        An empty figure to draw into; ``None``: a new one through pyplot.

    Returns
    -------
    fig : matplotlib Figure
        One Axes per image shown; a single Axes with a note when there is nothing to
        show.

    Raises
    ------
    ValueError
        If ``audit`` is not an audit of ``X`` (other columns or length), or ``n``,
        ``n_pairs`` or ``ncols`` is not a positive int (``n_pairs`` may be 0).

    See Also
    --------
    sklimg.audit : The audit drawn.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklimg import ImageClassifier, audit, plot_label_issues
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X, y = X[:500].copy(), y[:500].copy()
    >>> y[:10] = (y[:10] + 1) % 10  # ten wrong labels
    >>> X[499] = X[20]  # a copy
    >>> report = audit(ImageClassifier("pixels", head=KNeighborsClassifier(10)), X, y)
    >>> fig = plot_label_issues(report, X, n=4)
    >>> len(fig.axes)  # four suspects, one pair
    6
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    missing = {"label", "suggested_label", "label_quality", "label_issue", "duplicate_of"}
    missing -= set(getattr(audit, "columns", ()))
    if missing:
        raise ValueError(
            f"audit must be what sklimg.audit returned; it lacks the columns {sorted(missing)}."
        )
    _check_lengths(X, audit["label"].to_numpy())
    for name, value, least in (("n", n, 1), ("n_pairs", n_pairs, 0), ("ncols", ncols, 1)):
        if value is not None and (
            not isinstance(value, Integral) or isinstance(value, bool) or value < least
        ):
            kind = "positive" if least else "non-negative"
            raise ValueError(f"{name} must be a {kind} int; got {value!r}.")
    images = as_images(X, channels=(1, 3, 4), ragged=True)
    issues = np.flatnonzero(audit["label_issue"].to_numpy())
    quality = audit["label_quality"].to_numpy()
    # Stable sort: among equal qualities, the first images come first.
    suspects = issues[np.argsort(quality[issues], kind="stable")][:n]
    copies = np.flatnonzero(audit["duplicate_of"].notna().to_numpy())[:n_pairs]
    originals = audit.index.get_indexer(audit["duplicate_of"].iloc[copies])
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(layout="constrained")
    if not len(suspects) and not len(copies):
        ax = fig.add_subplot()
        ax.text(
            0.5, 0.5, f"No label issues or duplicates among {len(audit)}.", ha="center",
            va="center",
        )  # fmt: skip
        ax.set_axis_off()
        return fig
    columns = max(
        min(len(suspects), ncols or math.ceil(math.sqrt(len(suspects)))) if len(suspects) else 0,
        2 if len(copies) else 0,
    )
    # Pairs fill rows of whole pairs.
    pairs_per_row = max(1, columns // 2)
    rows_suspects = math.ceil(len(suspects) / columns) if len(suspects) else 0
    rows_pairs = math.ceil(len(copies) / pairs_per_row)
    rows = rows_suspects + rows_pairs
    fig.set_size_inches(2.2 * columns, 2.5 * rows)
    paths = _source_paths(images)
    labels, suggested = audit["label"].to_numpy(), audit["suggested_label"].to_numpy()
    index = audit.index
    for k, i in enumerate(suspects):
        ax = fig.add_subplot(rows, columns, k + 1)
        _show_image(ax, images[int(i)])
        ax.set_title(
            f"given: {labels[i]} (quality {quality[i]:.2f})\nsuggested: {suggested[i]}",
            fontsize=9,
        )
        ax.set_xlabel(
            os.path.join(*Path(paths[i]).parts[-2:]) if paths is not None else f"#{index[i]}",
            fontsize=7,
        )
    crosses = audit["crosses_split"].to_numpy() if "crosses_split" in audit else None
    for k, (copy, original) in enumerate(zip(copies, originals, strict=True)):
        start = rows_suspects * columns + (k // pairs_per_row) * columns + 2 * (k % pairs_per_row)
        for offset, (i, title) in enumerate(
            ((original, f"#{index[original]}"), (copy, f"duplicate of #{index[original]}"))
        ):
            ax = fig.add_subplot(rows, columns, start + offset + 1)
            _show_image(ax, images[int(i)])
            leak = crosses is not None and bool(crosses[copy]) and offset == 1
            ax.set_title(title + ("\ncrosses the split" if leak else ""), fontsize=9)
            if paths is not None:
                ax.set_xlabel(os.path.join(*Path(paths[i]).parts[-2:]), fontsize=7)
    return fig


def most_confused_grid(
    images,
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: np.ndarray,
    *,
    n: int = 16,
    ncols: int | None = None,
    saliency: Callable[[np.ndarray, Any], np.ndarray] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw the most confident errors from probabilities already computed.

    ``images`` is indexable by position: an array ``(n, H, W, C)`` or ``LazyImages``
    (only the images shown are decoded). ``saliency(image, predicted_label) -> map``
    (:func:`error_saliency`), when given, overlays each image shown with its map.
    Used by :func:`plot_most_confused` and by ``sklimg evaluate --errors``.
    """
    for name, value in (("n", n), ("ncols", ncols)):
        if value is not None and (
            not isinstance(value, Integral) or isinstance(value, bool) or value < 1
        ):
            raise ValueError(f"{name} must be a positive int; got {value!r}.")
    predicted = np.argmax(proba, axis=1)
    confidence = proba[np.arange(len(proba)), predicted]
    wrong = np.flatnonzero(np.asarray(classes)[predicted] != y_true)
    # Stable sort: among equal confidences, the first images come first.
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(layout="constrained")
    if not len(shown):
        ax = fig.add_subplot()
        ax.text(
            0.5,
            0.5,
            f"No misclassified images among {len(y_true)}.",
            ha="center",
            va="center",
        )
        ax.set_axis_off()
        return fig
    columns = min(len(shown), ncols or math.ceil(math.sqrt(len(shown))))
    rows = math.ceil(len(shown) / columns)
    fig.set_size_inches(2.2 * columns, 2.5 * rows)
    paths = _source_paths(images)
    for k, i in enumerate(shown):
        ax = fig.add_subplot(rows, columns, k + 1)
        image = images[int(i)]
        if saliency is None:
            _show_image(ax, image)
        else:
            _show_image(ax, saliency_overlay(image, saliency(image, classes[predicted[i]])))
        ax.set_title(
            f"true: {y_true[i]}\npred: {classes[predicted[i]]} ({confidence[i]:.2f})",
            fontsize=9,
        )
        if paths is not None:
            # The class folder and file name: enough to find the file, short enough to fit.
            ax.set_xlabel(os.path.join(*Path(paths[i]).parts[-2:]), fontsize=7)
    return fig


def _source_paths(images) -> np.ndarray | None:
    """The file of each image when ``images`` are files, to name them under the plots."""
    if isinstance(images, LazyImages) and images.are_paths:
        return images.source
    return None


def _show_image(ax: Axes, image: np.ndarray) -> None:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        low, high = float(image.min()), float(image.max())
        if low < 0 or high > 1:
            # Standardised or 0-255 float pixels: stretched to [0, 1] for display only,
            # since matplotlib clips float colours outside [0, 1] (with a warning).
            image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    top = 255 if image.dtype == np.uint8 else 1
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=top)
    ax.set_xticks([])
    ax.set_yticks([])


def _check_lengths(X, y: np.ndarray) -> None:
    n_images = len(X)
    if n_images != len(y):
        raise ValueError(
            f"X holds {n_images} images but y holds {len(y)} labels; pass one label per image."
        )


def plot_reliability(clf, X, y, *, n_bins: int = 15, ax: Axes | None = None) -> Axes:
    """The reliability diagram of ``clf`` on images ``X`` with true labels ``y``.

    Bars: the accuracy of the images in each confidence bin (confidence: the
    probability of the predicted class); the diagonal: a calibrated classifier. Bars
    below it are overconfident. The title gives the expected calibration error.

    Parameters
    ----------
    clf : fitted classifier
        With ``predict_proba`` and ``classes_`` (an :class:`~sklimg.ImageClassifier`,
        a Pipeline ending in one, ...).
    X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths, or \
LazyImages
        Images, as ``clf.predict_proba`` takes them.
    y : array-like of shape (n_samples,)
        True labels.
    n_bins : int, default=15
        Equal-width confidence bins.
    ax : matplotlib Axes or None, default=None
        Where to draw; ``None``: a new figure through pyplot.

    Returns
    -------
    ax : matplotlib Axes

    See Also
    --------
    sklimg.metrics.expected_calibration_error : The number in the title.

    Examples
    --------
    >>> from sklimg import ImageClassifier, plot_reliability
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> ax = plot_reliability(clf, X[100:300], y[100:300])
    >>> ax.get_title().startswith("ECE")
    True
    >>> import matplotlib.pyplot as plt
    >>> plt.close(ax.figure)
    """
    y = np.asarray(y)
    _check_lengths(X, y)
    return reliability_diagram(y, clf.predict_proba(X), clf.classes_, n_bins=n_bins, ax=ax)


def reliability_diagram(y, proba, classes, *, n_bins: int = 15, ax: Axes | None = None) -> Axes:
    """:func:`plot_reliability` from probabilities already computed (the command line
    draws with it)."""
    bins = reliability_bins(y, proba, classes, n_bins=n_bins)
    ece = expected_calibration_error(y, proba, classes, n_bins=n_bins)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5))
    width = np.diff(bins.edges)
    filled = bins.counts > 0
    ax.bar(
        bins.edges[:-1][filled],
        bins.accuracy[filled],
        width=width[filled],
        align="edge",
        edgecolor="black",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    ax.set_title(f"ECE {ece:.3f} ({len(y)} images, {n_bins} bins)")
    ax.legend(loc="upper left")
    return ax


def saliency_overlay(image, saliency, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """An image with a saliency map blended over it, as an RGB ``uint8`` array.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C)
        ``uint8`` or floats in [0, 1].
    saliency : ndarray of shape (h, w)
        Values in [0, 1] (from :func:`sklimg.explain`); resized to ``(H, W)``.
    alpha : float, default=0.5
        Weight of the map's colours, scaled by the map itself (pixels that did not
        matter keep the image).
    cmap : str, default="jet"
        matplotlib colour map of the saliency.

    Returns
    -------
    overlay : ndarray of shape (H, W, 3), uint8
    """
    from matplotlib import colormaps
    from skimage.transform import resize

    image = np.asarray(image)
    image = image / 255.0 if image.dtype == np.uint8 else np.clip(image, 0, 1)
    image = image[..., None] if image.ndim == 2 else image
    rgb = np.repeat(image[..., :1], 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    saliency = resize(np.asarray(saliency, float), rgb.shape[:2], order=1, anti_aliasing=False)
    colours = colormaps[cmap](np.clip(saliency, 0, 1))[..., :3]
    weight = alpha * np.clip(saliency, 0, 1)[..., None]
    return np.rint(255 * ((1 - weight) * rgb + weight * colours)).astype(np.uint8)


def plot_explanations(
    model,
    X,
    y=None,
    *,
    method: str = "gradcam",
    target=None,
    n_cols: int = 4,
    fig: Figure | None = None,
) -> Figure:
    """Images with their saliency maps overlaid, titled with the predicted label and
    its probability (and the true label, given ``y``).

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        Fitted; see :func:`sklimg.explain`.
    X : array-like of shape (n_samples, H, W[, C]), list of arrays or file paths
        A few images of one size.
    y : array-like of shape (n_samples,) or None, default=None
        True labels, shown when given.
    method, target
        As for :func:`sklimg.explain`.
    n_cols : int, default=4
        Images per row.
    fig : matplotlib Figure or None, default=None
        Where to draw; ``None``: a new figure through pyplot.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> from sklimg import ImageClassifier, plot_explanations
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=2, random_state=0).fit(X[:300], y[:300])
    >>> fig = plot_explanations(clf, X[300:304], y[300:304])
    >>> len(fig.axes)
    4
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    from sklimg.saliency import explain

    proba = model.predict_proba(X)
    classes = model.classes_
    if target is None:  # the predicted classes: explain then predicts no second time
        target = np.asarray(classes)[np.argmax(proba, axis=1)]
    maps = explain(model, X, method=method, target=target)
    images = as_images(X)
    images = list(images) if isinstance(images, LazyImages) else images
    if y is not None:
        y = np.asarray(y)
        _check_lengths(X, y)
    n = len(maps)
    n_rows = math.ceil(n / n_cols)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(2.2 * min(n, n_cols), 2.4 * n_rows))
    for i in range(n):
        ax = fig.add_subplot(n_rows, min(n, n_cols), i + 1)
        ax.imshow(saliency_overlay(images[i], maps[i]))
        best = int(np.argmax(proba[i]))
        title = f"{classes[best]} ({proba[i, best]:.2f})"
        if y is not None:
            title += f"\ntrue: {y[i]}"
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig
