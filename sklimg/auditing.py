"""``sklimg.audit``: find the images of a data set whose label, copy or content is suspect.

Out-of-fold probabilities by cross-validation of the model given (each image predicted
by a model that did not train on it), label issues ranked by cleanlab's confident
learning on them, duplicates by :mod:`sklimg.duplicates`, and with ``groups`` or
``X_test``, the duplicates that cross a split. Needs ``pip install "sklimg[audit]"``
(cleanlab, imported when an audit runs).
"""

from __future__ import annotations

import contextlib
import tempfile
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import has_fit_parameter

from sklimg import duplicates
from sklimg._lazy import LazyImages, is_path_sequence
from sklimg.classifier import ImageClassifier
from sklimg.exceptions import ImageInputError
from sklimg.utils.validation import as_images, check_labels

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["audit"]


def audit(
    model,
    X,
    y,
    *,
    cv=5,
    groups=None,
    X_test=None,
    near_duplicate_threshold: float = 0.995,
    memory="auto",
    n_jobs=None,
    random_state=0,
    verbose: int = 0,
) -> pd.DataFrame:
    """Audit a labelled image set: suspect labels, duplicates, outliers and leakage.

    Each image's class probabilities come from a clone of ``model`` that did not train
    on it (``cv``-fold cross-validation, stratified, and grouped with ``groups``). On
    them, cleanlab's ``find_label_issues`` flags the images whose given label is
    probably wrong (confident learning, Northcutt et al. 2021: it estimates how many
    images of each given class belong to each true class, and flags that many of the
    least likely), and ``get_label_quality_scores`` scores every label (the
    probability the held-out model gives it). Duplicates are found without the model
    (:mod:`sklimg.duplicates`): identical decoded pixels, or thumbnails within a cosine
    similarity ``near_duplicate_threshold``.

    Parameters
    ----------
    model : classifier
        An unfitted (or fitted: it is cloned) scikit-learn classifier over images with
        ``predict_proba``: an :class:`~sklimg.ImageClassifier`, a ``Pipeline`` ending in
        one, or any other. A fast one is a frozen or classical backbone with a
        scikit-learn head, e.g. ``ImageClassifier("pixels")`` or
        ``ImageClassifier("resnet18", pretrained=True, head=LogisticRegression())``.
    X : array-like of shape (n_samples, H, W[, C]), list of arrays, or file paths
        The images, as :meth:`ImageClassifier.fit <sklimg.ImageClassifier.fit>` takes them.
    y : array-like of shape (n_samples,)
        Their labels.
    cv : int, default=5
        Folds of the cross-validation; every class needs at least ``cv`` images (and
        with ``groups``, at least ``cv`` groups).
    groups : array-like of shape (n_samples,) or None, default=None
        A group per image (a patient, a camera, a session): the folds keep each group
        on one side (``StratifiedGroupKFold``), and a model whose ``fit`` takes
        ``groups`` gets the training part's. An image with a duplicate in another group
        ``crosses_split``.
    X_test : array-like or None, default=None
        A test set: an image of ``X`` with a duplicate in it ``crosses_split`` (the test
        set leaks into training).
    near_duplicate_threshold : float, default=0.995
        The cosine similarity of thumbnails from which two images are near duplicates,
        in (0, 1]; 1 finds identical images only. See :mod:`sklimg.duplicates` for how
        the default was measured.
    memory : "auto", str, path-like or None, default="auto"
        The frozen-feature cache of an :class:`~sklimg.ImageClassifier` (its ``memory``
        parameter), so that the folds compute each image's frozen features once.
        ``"auto"``: a temporary folder for this audit, where the classifier has none;
        ``None``: the model as given.
    n_jobs : int or None, default=None
        Folds fitted in parallel (joblib; ``-1``: all cores).
    random_state : int, RandomState instance or None, default=0
        Shuffles the folds.
    verbose : int, default=0
        ``1``: a progress bar over the folds (on stderr).

    Returns
    -------
    audit : pandas.DataFrame
        One row per image of ``X``, with its index (``X``'s own index for a pandas
        ``X``; a ``path`` column when ``X`` holds paths) and the columns ``label``
        (given), ``suggested_label`` (the most likely class out of fold),
        ``label_quality`` (in [0, 1]; low: the label is doubtful), ``label_issue``
        (bool), ``duplicate_of`` (the index of the first earlier identical or
        near-identical image, else missing), ``outlier_score`` (the mean cosine
        distance of the image's thumbnail to its 10 nearest others: high, unusual) and,
        with ``groups`` or ``X_test``, ``crosses_split`` (bool). ``audit.attrs`` holds
        the summary: ``n_images``, ``n_label_issues``, ``label_issue_share`` (the
        estimated share of wrong labels), ``n_duplicates``, ``n_crosses_split``, ``cv``
        and ``accuracy`` (of the out-of-fold predictions on the given labels).

    Raises
    ------
    ImageInputError
        For images, labels, groups or ``cv`` that cannot be audited (mismatched
        lengths, a single class, a class with fewer than ``cv`` images), before any
        training.
    TypeError
        When ``model`` is not a classifier with ``predict_proba``.
    ImportError
        When cleanlab is missing.

    See Also
    --------
    sklimg.plot_label_issues : The worst suspects and the near-duplicate pairs.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklimg import ImageClassifier, audit
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X, y = X[:500], y[:500].copy()
    >>> y[:10] = (y[:10] + 1) % 10  # ten wrong labels
    >>> model = ImageClassifier("pixels", head=KNeighborsClassifier(10))
    >>> report = audit(model, X, y)
    >>> report.columns.tolist()
    ['label', 'suggested_label', 'label_quality', 'label_issue', 'duplicate_of', 'outlier_score']
    >>> int(report["label_issue"][:10].sum()), int(report["label_issue"][10:].sum())
    (9, 1)
    """
    cleanlab = _cleanlab()
    _check_model(model)
    images, y, groups, test = _checked_inputs(model, X, y, cv, groups, X_test)
    threshold = _checked_threshold(near_duplicate_threshold)
    classes, encoded = np.unique(y, return_inverse=True)
    with _feature_cache(model, memory) as cached:
        proba = _out_of_fold_proba(cached, X, y, classes, cv, groups, n_jobs, random_state, verbose)
    issues = cleanlab.filter.find_label_issues(encoded, proba)
    quality = cleanlab.rank.get_label_quality_scores(encoded, proba)

    digests = duplicates.exact_digests(images)
    embedding = duplicates.thumbnails(images)
    first = duplicates.first_duplicates(digests, embedding, threshold)
    crosses = None
    if groups is not None or test is not None:
        crosses = np.zeros(len(y), dtype=bool)
        if groups is not None:
            within = duplicates.matches_across(digests, embedding, digests, embedding, threshold)
            crosses |= np.array([np.any(groups[m] != groups[i]) for i, m in enumerate(within)])
        if test is not None:
            across = duplicates.matches_across(
                digests,
                embedding,
                duplicates.exact_digests(test),
                duplicates.thumbnails(test),
                threshold,
            )
            crosses |= np.array([len(m) > 0 for m in across])
    return _frame(
        X,
        y,
        classes,
        proba,
        quality,
        issues,
        first,
        duplicates.outlier_scores(embedding),
        crosses,
        cv=cv,
    )


def _cleanlab():
    """cleanlab's modules, or an ImportError saying how to install them."""
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError:
        raise ImportError('sklimg.audit needs cleanlab: pip install "sklimg[audit]".') from None
    return cleanlab


def _check_model(model) -> None:
    if not is_classifier(model) or not hasattr(model, "fit"):
        raise TypeError(
            f"audit needs a scikit-learn classifier over images (e.g. ImageClassifier(), or "
            f"a Pipeline ending in one); got {model!r}."
        )
    # hasattr, as scikit-learn's meta-estimators ask: an ImageClassifier or Pipeline
    # whose head has no predict_proba does not have it.
    if not hasattr(model, "predict_proba"):
        raise TypeError(
            f"audit needs class probabilities, and {model!r} has no predict_proba. Use a "
            f"classifier that has one, e.g. ImageClassifier(head=LogisticRegression()) or "
            f"CalibratedClassifierCV(SVC())."
        )


def _image_shape(model):
    """The ``image_shape`` of the model's ImageClassifier (itself, or a step of a
    Pipeline), which reads flattened rows as images."""
    for value in (model, *model.get_params(deep=True).values()):
        if isinstance(value, ImageClassifier):
            return value.image_shape
    return None


def _checked_inputs(model, X, y, cv, groups, X_test):
    """Validated images, labels, groups and test images; the folds checked possible."""
    if isinstance(X, (list, tuple)):  # arrays of several sizes, for a Resize step
        images = as_images(X, ragged=True)
    else:
        images = as_images(X, image_shape=_image_shape(model))
    y = check_labels(y, len(images))
    if not isinstance(cv, Integral) or isinstance(cv, bool) or cv < 2:
        raise ImageInputError(
            f"cv must be an integer of at least 2 (the number of folds); got {cv!r}."
        )
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < cv:
        smallest = classes[np.argmin(counts)]
        raise ImageInputError(
            f"Class {smallest!r} has {counts.min()} images, fewer than cv={cv} folds: every "
            f"fold must train on every class. Use a smaller cv (at most {counts.min()}), or "
            f"add images of that class."
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(y):
            raise ImageInputError(
                f"groups must give one group per image: X has {len(y)} images, groups has "
                f"shape {groups.shape}."
            )
        n_groups = len(np.unique(groups))
        if n_groups < cv:
            raise ImageInputError(
                f"groups holds {n_groups} groups, fewer than cv={cv} folds: each fold "
                f"needs a group of its own. Use a smaller cv, or more groups."
            )
    test = None if X_test is None else as_images(X_test, ragged=True)
    return images, y, groups, test


def _checked_threshold(threshold) -> float:
    if not isinstance(threshold, Real) or not 0 < threshold <= 1:
        raise ValueError(
            f"near_duplicate_threshold must be a cosine similarity in (0, 1]; got "
            f"{threshold!r}. 0.995 is the measured default; 1 finds identical images only."
        )
    return float(threshold)


@contextlib.contextmanager
def _feature_cache(model, memory):
    """The model with a frozen-feature cache for the audit (see ``memory``)."""
    if memory is None:
        yield model
        return
    names = [
        name
        for name, value in [("", model), *model.get_params(deep=True).items()]
        if isinstance(value, ImageClassifier) and value.memory is None
    ]
    if not names:
        yield model
        return
    with contextlib.ExitStack() as stack:
        folder = memory
        if memory == "auto":
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="sklimg-audit-"))
        params = {(f"{name}__memory" if name else "memory"): folder for name in names}
        yield clone(model).set_params(**params)


def _out_of_fold_proba(model, X, y, classes, cv, groups, n_jobs, random_state, verbose):
    """Each image's probabilities from a clone of ``model`` fitted on the other folds
    (of ``X`` as given, so a model takes the images as it would in a fit).

    What ``cross_val_predict(method="predict_proba")`` computes, with its splitters;
    the folds run here so that a progress bar counts them as they finish.
    """
    if groups is None:
        splitter = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    else:
        splitter = StratifiedGroupKFold(cv, shuffle=True, random_state=random_state)
    folds = list(splitter.split(np.zeros(len(y)), y, groups))
    takes_groups = groups is not None and has_fit_parameter(model, "groups")
    jobs = (
        delayed(_fit_predict)(
            clone(model),
            _take(X, train),
            y[train],
            _take(X, test),
            test,
            {"groups": groups[train]} if takes_groups else {},
        )
        for train, test in folds
    )
    proba = np.zeros((len(y), len(classes)))
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)
    with _progress(len(folds), verbose) as bar:
        for test, fold_classes, fold_proba in results:
            columns = np.searchsorted(classes, fold_classes)
            proba[np.ix_(test, columns)] = fold_proba
            bar.update(1)
    return proba


def _fit_predict(model, X_train, y_train, X_test, test, fit_params):
    model.fit(X_train, y_train, **fit_params)
    return test, np.asarray(model.classes_), np.asarray(model.predict_proba(X_test))


def _take(X, indices):
    """The rows ``indices`` of ``X``: an array, LazyImages, pandas object or list."""
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in indices]
    return X[indices]


@contextlib.contextmanager
def _progress(total: int, verbose: int):
    if not verbose:
        yield _NoBar()
        return
    from tqdm.auto import tqdm  # skorch's progress bar library

    with tqdm(total=total, desc="audit folds", unit="fold") as bar:
        yield bar


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _frame(X, y, classes, proba, quality, issues, first, outliers, crosses, *, cv) -> pd.DataFrame:
    """The audit's DataFrame and its summary."""
    import pandas as pd

    index = X.index if isinstance(X, (pd.Series, pd.DataFrame)) else pd.RangeIndex(len(y))
    duplicate_of = pd.Series([index[j] if j >= 0 else None for j in first], dtype=object)
    if pd.api.types.is_integer_dtype(index):
        duplicate_of = duplicate_of.astype("Int64")  # an index, with missing values
    columns = {
        "label": y,
        "suggested_label": classes[np.argmax(proba, axis=1)],
        "label_quality": np.asarray(quality, dtype=np.float64),
        "label_issue": np.asarray(issues, dtype=bool),
        "duplicate_of": duplicate_of.array,
        "outlier_score": outliers,
    }
    if crosses is not None:
        columns["crosses_split"] = crosses
    frame = pd.DataFrame(columns, index=index)
    paths = _paths(X)
    if paths is not None:
        frame.insert(0, "path", paths)
    n = len(frame)
    frame.attrs = {
        "n_images": n,
        "n_label_issues": int(frame["label_issue"].sum()),
        "label_issue_share": float(frame["label_issue"].mean()) if n else 0.0,
        "n_duplicates": int(frame["duplicate_of"].notna().sum()),
        "n_crosses_split": int(crosses.sum()) if crosses is not None else 0,
        "cv": int(cv),
        "accuracy": float(np.mean(frame["suggested_label"].to_numpy() == y)),
    }
    return frame


def _paths(X):
    """The paths of ``X`` as strings, when it holds paths (LazyImages of files too)."""
    if isinstance(X, LazyImages):
        return [str(p) for p in X.source] if X.are_paths else None
    values = X.to_numpy() if hasattr(X, "to_numpy") and getattr(X, "ndim", 0) == 1 else X
    if hasattr(X, "columns") and getattr(X, "ndim", 0) == 2 and X.shape[1] == 1:
        values = X.iloc[:, 0].to_numpy()
    if is_path_sequence(values):
        return [str(p) for p in values]
    return None


def summary_lines(frame: pd.DataFrame) -> list[str]:
    """The summary of an audit, in words (what ``sklimg audit`` prints)."""
    attrs = frame.attrs
    lines = [
        f"{attrs['n_images']} images, {attrs['cv']}-fold out-of-fold accuracy "
        f"{attrs['accuracy']:.3f}",
        f"label issues: {attrs['n_label_issues']} "
        f"(estimated {100 * attrs['label_issue_share']:.1f}% of the labels are wrong)",
        f"duplicates of an earlier image: {attrs['n_duplicates']}",
    ]
    if "crosses_split" in frame:
        lines.append(f"duplicates across the split: {attrs['n_crosses_split']}")
    return lines
