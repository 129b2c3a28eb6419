"""Trust after training: temperature scaling, and scores of how unlike the training
images an image is, with the threshold above which the classifier answers "unknown".

Everything here works on what a fitted route gives for a batch of images: their
features (the head's input) and their logits (a neural head's outputs, or a
scikit-learn head's log-probabilities or decision function). Fit on held-out images
of known classes: the temperature that minimises their negative log-likelihood (Guo et
al. 2017), and the score threshold that rejects a fraction ``unknown_rate`` of them.
The detectors are a registry, by name, each with the state it keeps as plain arrays
(what the safe model format stores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

__all__ = [
    "DETECTORS",
    "MAX_REFERENCE",
    "Detector",
    "Trust",
    "fit_temperature",
    "reference_indices",
    "scaled_proba",
]

#: Training images whose features the k-NN detector keeps at most (a stratified sample).
MAX_REFERENCE = 5000
# log T is searched in this interval: T from 0.02 to 50.
_LOG_T_BOUNDS = (-4.0, 4.0)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimising the mean negative log-likelihood of the
    encoded labels ``y`` under ``softmax(logits / T)``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = 2 * rng.normal(size=(20000, 3))
    >>> proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    >>> y = (rng.random((20000, 1)) > proba.cumsum(axis=1)).sum(axis=1)  # drawn from proba
    >>> round(fit_temperature(4 * logits, y), 1)  # overconfident by a factor of 4
    4.0
    """
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return -float(log_softmax(logits / np.exp(log_t), axis=1)[rows, y].mean())

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def scaled_proba(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` in float64."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1))


def reference_indices(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` indices of ``y``, sampled in proportion to each class (every
    class keeps at least one), sorted."""
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        count = max(1, round(limit * len(members) / len(y)))
        chosen.append(rng.choice(members, size=min(count, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def _unit(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


class Detector:
    """A score of how unlike the training images each image is (higher: less like).

    Subclasses set ``name`` and ``needs`` (``"logits"`` or ``"features"``), fit on the
    training features and labels, and keep their state as named arrays.
    """

    name: str = ""
    needs: str = "logits"

    def fit(self, features: np.ndarray, y: np.ndarray) -> Detector:
        """Learn from training features and encoded labels (logit scores learn nothing)."""
        return self

    def score(self, features: np.ndarray, logits: np.ndarray, temperature: float) -> np.ndarray:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The state, as arrays (empty for logit scores)."""
        return {}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_features: int) -> Detector:
        """The detector with saved state; a ValueError if the arrays do not fit."""
        if arrays:
            raise ValueError(f"the {cls.name!r} detector keeps no arrays; got {sorted(arrays)}")
        return cls()


class MaxSoftmax(Detector):
    """1 - the largest (temperature-scaled) softmax probability: the baseline."""

    name = "msp"

    def score(self, features, logits, temperature):
        return 1.0 - scaled_proba(logits, temperature).max(axis=1)


class Energy(Detector):
    """The energy ``-logsumexp(logits)`` (Liu et al. 2020): low for images like the
    training images, whose logits are large."""

    name = "energy"

    def score(self, features, logits, temperature):
        return -logsumexp(np.asarray(logits, dtype=np.float64), axis=1)


class KNearest(Detector):
    """The distance to the k-th nearest training feature, features L2-normalised (Sun
    et al. 2022), over a stratified sample of at most :data:`MAX_REFERENCE` images."""

    name = "knn"
    needs = "features"

    def fit(self, features, y):
        reference = _unit(features)
        # Sun et al. use k=50 for 50,000 CIFAR images; fewer references, a smaller k.
        self.k = int(min(50, max(1, len(reference) // 100)))
        self.reference = reference
        self._index = NearestNeighbors(n_neighbors=self.k).fit(reference)
        return self

    def score(self, features, logits, temperature):
        distances, _ = self._index.kneighbors(_unit(features))
        return distances[:, -1].astype(np.float64)

    def arrays(self):
        return {"reference": self.reference, "k": np.array([self.k])}

    @classmethod
    def from_arrays(cls, arrays, n_features):
        reference, k = arrays["reference"], int(np.asarray(arrays["k"]).ravel()[0])
        if set(arrays) != {"reference", "k"} or reference.ndim != 2:
            raise ValueError("the 'knn' detector's arrays are not a reference matrix and k")
        if reference.shape[1] != n_features or not 1 <= k <= len(reference):
            raise ValueError(
                f"the 'knn' detector holds {reference.shape} features and k={k}, for a model "
                f"with {n_features} features"
            )
        if not np.isfinite(reference).all():
            raise ValueError("the 'knn' detector's reference features are not finite")
        detector = cls()
        detector.k, detector.reference = k, reference.astype(np.float32)
        detector._index = NearestNeighbors(n_neighbors=k).fit(detector.reference)
        return detector


class Mahalanobis(Detector):
    """The smallest Mahalanobis distance to a class mean, with one covariance shared by
    the classes (Lee et al. 2018), estimated with Ledoit-Wolf shrinkage."""

    name = "mahalanobis"
    needs = "features"

    def fit(self, features, y):
        features = np.asarray(features, dtype=np.float64)
        labels = np.unique(y)
        self.means = np.stack([features[y == label].mean(axis=0) for label in labels])
        centred = features - self.means[np.searchsorted(labels, y)]
        self.precision = LedoitWolf().fit(centred).precision_
        self._factor = np.linalg.cholesky(self.precision)
        return self

    def score(self, features, logits, temperature):
        # With precision = L L^T, the distance is Euclidean after mapping by L: one
        # (n, d) x (d, d) product, then (n, classes) distances.
        mapped = np.asarray(features, dtype=np.float64) @ self._factor
        centres = self.means @ self._factor
        squared = (
            (mapped**2).sum(axis=1, keepdims=True)
            - 2 * mapped @ centres.T
            + (centres**2).sum(axis=1)
        )
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

    def arrays(self):
        return {"means": self.means, "precision": self.precision}

    @classmethod
    def from_arrays(cls, arrays, n_features):
        means, precision = arrays["means"], arrays["precision"]
        if set(arrays) != {"means", "precision"} or means.ndim != 2:
            raise ValueError("the 'mahalanobis' detector's arrays are not means and a precision")
        if means.shape[1] != n_features or precision.shape != (n_features, n_features):
            raise ValueError(
                f"the 'mahalanobis' detector holds means {means.shape} and precision "
                f"{precision.shape}, for a model with {n_features} features"
            )
        if not (np.isfinite(means).all() and np.isfinite(precision).all()):
            raise ValueError("the 'mahalanobis' detector's arrays are not finite")
        detector = cls()
        detector.means = means.astype(np.float64)
        detector.precision = precision.astype(np.float64)
        try:
            detector._factor = np.linalg.cholesky(detector.precision)
        except np.linalg.LinAlgError:
            raise ValueError(
                "the 'mahalanobis' detector's precision is not positive definite"
            ) from None
        return detector


#: The unknown-image scores, by name.
DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls for cls in (MaxSoftmax, Energy, KNearest, Mahalanobis)
}


@dataclass(frozen=True)
class Trust:
    """What a fit learned for calibrated probabilities and the unknown answer."""

    temperature: float | None
    detector: Detector | None
    threshold: float | None
    unknown_label: object

    def attributes(self) -> dict:
        """The classifier's fitted attributes, by name (those that apply)."""
        attributes = {}
        if self.temperature is not None:
            attributes["temperature_"] = self.temperature
        if self.detector is not None:
            attributes.update(
                unknown_detector_=self.detector,
                unknown_threshold_=self.threshold,
                unknown_label_=self.unknown_label,
            )
        return attributes
