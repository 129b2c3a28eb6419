"""Calibration and the unknown answer as a fit sets them up: the settings, checked
before training; the held-out split they are fitted on; and the fit itself, from the
features and logits a route computed (the routes call it: :mod:`sklimg._fit.neural`
after training, :mod:`sklimg._fit.head` with the head's held-out features).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

from sklimg._statements import Refusal
from sklimg._trust import DETECTORS, MAX_REFERENCE, Trust, fit_temperature, reference_indices

__all__ = [
    "AUTO_METHODS",
    "check_trust",
    "fit",
    "group_folds",
    "head_logits_method",
    "held_out",
    "method_of",
    "unknown_label_of",
    "wanted",
]

#: The detectors ``unknown="auto"`` uses, by head, from the measurements of
#: benchmarks/trust.py (Fashion-MNIST against digits, photographs and noise): a network's
#: features are best scored by their nearest training features (AUROC 0.996 to 1.000),
#: HOG features by the energy of the scikit-learn head's logits (0.85 to 0.97, where
#: k-NN missed noise entirely).
AUTO_METHODS = {"neural": "knn", "scikit-learn": "energy"}


def wanted(clf) -> bool:
    """Whether a fit of ``clf`` calibrates or sets up the unknown answer."""
    return clf.calibration is not None or clf.unknown is not None


def method_of(clf, head=None) -> str:
    """The detector's name: ``unknown``, with ``"auto"`` resolved for the scikit-learn
    ``head`` the route fits (``None`` for a neural head); a head without a decision
    function has no energy, and gets k-NN."""
    if clf.unknown != "auto":
        return clf.unknown
    if head is None:
        return AUTO_METHODS["neural"]
    if head_logits_method(head) != "decision_function":
        return AUTO_METHODS["neural"]
    return AUTO_METHODS["scikit-learn"]


def head_logits_method(head) -> str | None:
    """What gives a scikit-learn head's logits: its ``decision_function`` (logits of a
    linear model), else ``predict_log_proba``; ``None`` when it has neither."""
    for method in ("decision_function", "predict_log_proba"):
        if hasattr(head, method):
            return method
    return None


def unknown_label_of(clf, classes: np.ndarray):
    """The label ``predict`` gives unknown images: ``unknown_label``, or by default
    ``"unknown"`` for string labels and -1 for numbers."""
    if clf.unknown_label is not None:
        return clf.unknown_label
    return "unknown" if classes.dtype.kind in "UO" else classes.dtype.type(-1).item()


def check_trust(clf, route: str, head, classes: np.ndarray) -> None:
    """Refuse, before training, settings of calibration and the unknown answer that
    cannot work: a scikit-learn ``head`` (the one the route fits) without logits for a
    score or temperature that needs them, and an unknown label that is one of the
    ``classes`` or of another type.

    Raises
    ------
    Refusal
    """
    if not wanted(clf):
        return
    method = method_of(clf, head) if clf.unknown is not None else None
    needs_logits = clf.calibration is not None or (
        method is not None and DETECTORS[method].needs == "logits"
    )
    if route == "head" and needs_logits:
        logits = head_logits_method(head)
        if logits is None or (method == "energy" and logits != "decision_function"):
            what = (
                "unknown='energy' needs the head's logits (a decision_function)"
                if method == "energy"
                else "calibration and unknown='msp' need the head's logits or log-probabilities"
            )
            lacks = (
                "neither decision_function nor predict_log_proba"
                if logits is None
                else "no decision_function"
            )
            raise Refusal(
                f"{what}; the head {type(head).__name__} has {lacks}.",
                {},
                [{"unknown": "knn"}, {"unknown": "mahalanobis"}, {"head": None}],
            )
    if clf.unknown is None:
        return
    label = unknown_label_of(clf, classes)
    if np.isin(np.asarray([label], dtype=object), classes.astype(object)).any():
        raise Refusal(
            "{unknown_label} is one of the classes, so an unknown answer could not be "
            "told from that class; give unknown_label a value that is not a class.",
            {"unknown_label": label},
        )
    is_text = isinstance(label, str)
    if is_text != (classes.dtype.kind in "UO" and isinstance(classes[0], str)):
        raise Refusal(
            "{unknown_label} is not of the classes' type ("
            + ("strings" if classes.dtype.kind in "UO" else "numbers")
            + "): predict would mix types; give unknown_label a value of that type.",
            {"unknown_label": label},
        )


def held_out(
    y: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)`` indices: without ``groups``, the stratified split skorch's
    ``ValidSplit`` makes for a neural head's validation (so both routes hold out
    alike); with them, the first fold of ``StratifiedGroupKFold`` into ``1 / fraction``
    folds (at least 2), so each group is on one side and about ``fraction`` of the
    images, stratified as the groups allow, is held out (the split the neural head
    gives skorch)."""
    if groups is None:
        split = StratifiedShuffleSplit(test_size=fraction, random_state=seed)
        train, valid = next(split.split(np.zeros(len(y)), y))
        return train, valid
    folds = StratifiedGroupKFold(group_folds(fraction), shuffle=True, random_state=seed)
    train, valid = next(folds.split(np.zeros(len(y)), y, groups))
    return train, valid


def group_folds(fraction: float) -> int:
    """The folds a grouped hold-out of ``fraction`` is the first of."""
    return max(2, round(1 / fraction))


def fit(
    clf,
    classes: np.ndarray,
    seed: int,
    *,
    head=None,
    train_y: np.ndarray,
    train_features: Callable[[np.ndarray], np.ndarray],
    valid_y: np.ndarray,
    valid_features: np.ndarray,
    valid_logits: np.ndarray | None,
) -> Trust:
    """The temperature, detector and threshold of ``clf``'s settings.

    Parameters
    ----------
    clf : ImageClassifier
        Read for its settings.
    classes : ndarray
        The fitted classes; labels below are encoded as indices into it.
    seed : int
        Seeds the stratified sample of training images a feature detector keeps.
    head : estimator or None, default=None
        The fitted scikit-learn head, on that route (it decides ``unknown="auto"``).
    train_y : ndarray
        Encoded labels of the images trained on.
    train_features : callable
        ``train_features(indices)``: the features of those training images, computed
        only for a detector that keeps some.
    valid_y, valid_features, valid_logits
        Encoded labels, features and logits of the held-out images (logits ``None``
        where the route has none; then no setting needs them).

    Returns
    -------
    trust : Trust
    """
    temperature = None
    if clf.calibration == "temperature":
        temperature = fit_temperature(valid_logits, valid_y)
    detector = threshold = label = None
    if clf.unknown is not None:
        detector = DETECTORS[method_of(clf, head)]()
        if detector.needs == "features":
            reference = reference_indices(train_y, MAX_REFERENCE, seed)
            detector.fit(train_features(reference), train_y[reference])
        scores = detector.score(valid_features, valid_logits, temperature or 1.0)
        # Reject a fraction unknown_rate of the held-out images of known classes.
        threshold = float(np.quantile(scores, 1 - clf.unknown_rate))
        label = unknown_label_of(clf, classes)
    return Trust(
        temperature=temperature, detector=detector, threshold=threshold, unknown_label=label
    )
