"""sklimg: scikit-learn compatible image classification."""

from sklimg.classifier import ImageClassifier

__version__ = "0.1.0"

__all__ = ["ImageClassifier", "__version__"]
