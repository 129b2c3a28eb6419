"""sklimg: scikit-learn compatible image classification."""

from sklimg._version import __version__
from sklimg.auditing import audit
from sklimg.classifier import ImageClassifier
from sklimg.lr_finder import find_lr
from sklimg.persistence import load, save
from sklimg.plotting import (
    plot_confusion_matrix,
    plot_explanations,
    plot_history,
    plot_label_issues,
    plot_lr_finder,
    plot_most_confused,
    plot_reliability,
)
from sklimg.saliency import deletion_scores, explain

__all__ = [
    "ImageClassifier",
    "__version__",
    "audit",
    "deletion_scores",
    "explain",
    "find_lr",
    "load",
    "plot_confusion_matrix",
    "plot_explanations",
    "plot_history",
    "plot_label_issues",
    "plot_lr_finder",
    "plot_most_confused",
    "plot_reliability",
    "save",
]
