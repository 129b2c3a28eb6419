"""sklimg: scikit-learn compatible image classification."""

from sklimg.classifier import ImageClassifier
from sklimg.persistence import load, save

__version__ = "0.1.0"

__all__ = ["ImageClassifier", "__version__", "load", "save"]
