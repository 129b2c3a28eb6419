"""The two fitted-state schemas: what a fitted classifier holds on each route.

A route returns one of these; :class:`~sklimg.ImageClassifier` sets its fitted
attributes from it, in one place, and ``sklimg.load`` rebuilds a model through the
same schema. Both share what the training images were like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sklimg.backbones import BackboneSpec
from sklimg.utils.validation import pixel_range

__all__ = ["FITTED_ATTRIBUTES", "Fitted", "HeadFit", "NeuralFit", "images_seen"]


def images_seen(sample: np.ndarray) -> dict:
    """What a fit records of its training images (or a sample of them): their shape
    ``(H, W, C)`` and pixel range, which prediction checks against."""
    return {
        "input_shape": tuple(int(s) for s in sample.shape[1:]),
        "pixel_range": pixel_range(sample),
    }


@dataclass(frozen=True)
class Fitted:
    """What every fitted classifier holds."""

    classes: np.ndarray
    backbone_spec: BackboneSpec
    input_shape: tuple[int, int, int]
    pixel_range: tuple[float, float]

    def attributes(self) -> dict[str, Any]:
        """The classifier's fitted attributes, by name."""
        return {
            "classes_": self.classes,
            "n_classes_": len(self.classes),
            "backbone_spec_": self.backbone_spec,
            "input_shape_": self.input_shape,
            "pixel_range_": self.pixel_range,
        }


@dataclass(frozen=True)
class NeuralFit(Fitted):
    """A neural head trained with its network by skorch."""

    net: Any
    input_size: tuple[int, int]
    finetune: str
    #: Calibration and the unknown answer (:class:`sklimg._trust.Trust`), when set.
    trust: Any = None

    def attributes(self) -> dict[str, Any]:
        return {
            **super().attributes(),
            "net_": self.net,
            "history_": self.net.history,
            "input_size_": self.input_size,
            "finetune_": self.finetune,
            **(self.trust.attributes() if self.trust is not None else {}),
        }


@dataclass(frozen=True)
class HeadFit(Fitted):
    """A scikit-learn head fitted on frozen features."""

    feature_extractor: Any
    head: Any
    trust: Any = None

    def attributes(self) -> dict[str, Any]:
        return {
            **super().attributes(),
            "feature_extractor_": self.feature_extractor,
            "head_": self.head,
            **(self.trust.attributes() if self.trust is not None else {}),
        }


#: Every fitted attribute of either route: a new fit removes those of the other.
FITTED_ATTRIBUTES = (
    "classes_", "n_classes_", "backbone_spec_", "input_shape_", "pixel_range_", "net_",
    "history_", "input_size_", "finetune_", "feature_extractor_", "head_", "temperature_",
    "unknown_detector_", "unknown_threshold_", "unknown_label_",
)  # fmt: skip
