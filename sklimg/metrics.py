"""How far predicted probabilities are from the frequencies they claim.

The top-label reliability of a classifier: group images by the probability of the
class it predicts (its confidence), and compare each group's mean confidence with its
accuracy. :func:`expected_calibration_error` is the gap averaged over groups, weighted
by their size (Guo et al. 2017, with 15 equal-width bins); :func:`reliability_bins` gives
the groups themselves, which :func:`sklimg.plot_reliability` draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReliabilityBins", "expected_calibration_error", "reliability_bins"]


@dataclass(frozen=True)
class ReliabilityBins:
    """Images grouped by confidence: per bin, its edges, how many images fell in it,
    their mean confidence and their accuracy (NaN for empty bins)."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


def reliability_bins(y_true, proba, classes, *, n_bins: int = 15) -> ReliabilityBins:
    """Group images by the probability of their predicted class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,)
        The labels of the columns (``clf.classes_``).
    n_bins : int, default=15
        Equal-width bins over [0, 1].

    Returns
    -------
    bins : ReliabilityBins
    """
    y_true, proba, classes = np.asarray(y_true), np.asarray(proba, float), np.asarray(classes)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(classes)):
        raise ValueError(
            f"proba must have one row per label and one column per class, "
            f"{(len(y_true), len(classes))}; got shape {proba.shape}."
        )
    if not (isinstance(n_bins, int) and n_bins >= 1):
        raise ValueError(f"n_bins must be a positive int; got {n_bins!r}.")
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (low, high], the first one [0, high]: a confidence of exactly 1 counts.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, n_bins) / counts
        accuracy = np.bincount(which, correct.astype(float), n_bins) / counts
    return ReliabilityBins(edges, counts, mean_confidence, accuracy)


def expected_calibration_error(y_true, proba, classes, *, n_bins: int = 15) -> float:
    """The expected calibration error of predicted probabilities (top label).

    Parameters
    ----------
    y_true, proba, classes, n_bins
        As for :func:`reliability_bins`.

    Returns
    -------
    ece : float
        In [0, 1]: 0 when every group's accuracy equals its mean confidence.

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.metrics import expected_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(expected_calibration_error([0, 1, 1, 1], proba, [0, 1]), 3)
    0.4
    """
    bins = reliability_bins(y_true, proba, classes, n_bins=n_bins)
    filled = bins.counts > 0
    gaps = np.abs(bins.accuracy[filled] - bins.confidence[filled])
    return float(np.sum(gaps * bins.counts[filled]) / bins.counts.sum())
