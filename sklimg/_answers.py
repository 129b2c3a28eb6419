"""What a fitted model answers for images: its probabilities and, where it has an
unknown answer, the unknown scores of the same pass (``sklimg predict``, ``sklimg
serve``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sklimg._json import plain

__all__ = ["Answers", "answers"]


@dataclass(frozen=True)
class Answers:
    """The probabilities of a batch of images (columns in ``classes_`` order) and, for a
    model with an unknown answer, each image's score, the threshold above which it is
    answered ``label``, and that label; else ``None`` for those three."""

    proba: np.ndarray
    unknown_score: np.ndarray | None = None
    threshold: float | None = None
    label: object = None

    @property
    def unknown(self) -> np.ndarray | None:
        """Whether each image is answered ``label``; None without an unknown answer."""
        return None if self.unknown_score is None else self.unknown_score > self.threshold


def answers(model, images) -> Answers:
    """``predict_proba`` of a fitted classifier (or a pipeline ending in one) and, when
    it has an unknown answer, its unknown scores, from one pass over ``images``.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg._answers import answers
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", unknown="msp", max_epochs=1, random_state=0)
    >>> result = answers(clf.fit(X[:300], y[:300]), X[300:304])
    >>> result.proba.shape, result.unknown.shape, result.label  # -1: the labels are numbers
    ((4, 10), (4,), -1)
    """
    final = model[-1] if hasattr(model, "steps") else model
    if not hasattr(final, "unknown_threshold_"):
        return Answers(np.asarray(model.predict_proba(images)))
    if hasattr(model, "steps"):
        # What Pipeline.predict_proba does, with the final step's keyword passed on
        # whether or not metadata routing is enabled.
        images = model[:-1].transform(images)
    proba, scores = final.predict_proba(images, return_unknown_score=True)
    return Answers(
        np.asarray(proba),
        np.asarray(scores),
        float(final.unknown_threshold_),
        plain(final.unknown_label_),
    )
