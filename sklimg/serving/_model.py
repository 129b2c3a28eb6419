"""The served model: what a request's images become before the model sees them, one
batch's predictions, the saliency overlays, and what ``GET /model`` says about it.

Runs in the inference thread (:mod:`._batching`), never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sklimg._answers import answers
from sklimg._json import plain
from sklimg._version import versions
from sklimg.classifier import ImageClassifier
from sklimg.persistence import input_steps
from sklimg.plotting import saliency_overlay
from sklimg.saliency import explain

__all__ = ["Prediction", "ServedModel"]


@dataclass(frozen=True)
class Prediction:
    """One image's answer: the probabilities in ``classes_`` order and, for a model
    with an unknown answer, its score and whether it is over the threshold."""

    proba: np.ndarray
    unknown_score: float | None = None
    unknown: bool | None = None


class ServedModel:
    """A fitted classifier (or a pipeline ending in one) as the server uses it.

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        Fitted, with ``predict_proba`` and ``classes_``.
    path : path-like or None, default=None
        The file it was loaded from, for its digest in :meth:`describe`.
    """

    def __init__(self, model, *, path: str | os.PathLike | None = None) -> None:
        if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
            raise TypeError(
                f"create_app serves a fitted classifier with predict_proba and classes_ "
                f"(an ImageClassifier, or a Pipeline ending in one); got "
                f"{type(model).__name__}."
            )
        self.model = model
        self.classifier = model[-1] if hasattr(model, "steps") else model
        self.classes = [plain(c) for c in np.asarray(model.classes_)]
        self.path = None if path is None else Path(path)
        self.sha256 = None if path is None else _file_sha256(Path(path))
        self._steps = input_steps(model)

    @property
    def has_unknown(self) -> bool:
        return hasattr(self.classifier, "unknown_threshold_")

    @property
    def has_saliency(self) -> bool:
        # explain maps an ImageClassifier's predictions, on every route (occlusion).
        return isinstance(self.classifier, ImageClassifier)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One decoded ``(H, W, C)`` image as the model takes it: resized to the size
        it was trained at, with its channels, exactly as ``sklimg predict`` does."""
        batch = image[np.newaxis]
        for step in self._steps:
            batch = step.fit_transform(batch)
        return batch[0]

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        """One pass of the model over the prepared images of a batch: probabilities
        and, where the model has them, unknown scores (one ``predict_proba`` call per
        dtype: 8-bit and 16-bit files are not stacked together, since their pixel
        scales differ)."""
        predictions: list[Prediction | None] = [None] * len(images)
        for indices in _groups(images):
            result = answers(self.model, np.stack([images[i] for i in indices]))
            unknown, scores = result.unknown, result.unknown_score
            for j, i in enumerate(indices):
                predictions[i] = (
                    Prediction(result.proba[j])
                    if unknown is None
                    else Prediction(result.proba[j], float(scores[j]), bool(unknown[j]))
                )
        return predictions

    @property
    def unknown_label(self):
        return plain(self.classifier.unknown_label_) if self.has_unknown else None

    def saliency_pngs(self, images: list[np.ndarray], targets: list) -> list[str]:
        """Each image with the saliency map of its target class overlaid, as a PNG
        ``data:`` URL (Grad-CAM where the model has a network, occlusion otherwise)."""
        method = "gradcam" if hasattr(self.classifier, "net_") else "occlusion"
        urls = []
        for indices in _groups(images):
            batch = np.stack([images[i] for i in indices])
            maps = explain(self.model, batch, method=method, target=[targets[i] for i in indices])
            for i, saliency in zip(indices, maps, strict=True):
                urls.append((i, _png_url(saliency_overlay(images[i], saliency))))
        return [url for _, url in sorted(urls, key=lambda pair: pair[0])]

    def describe(self) -> dict:
        """What ``GET /model`` answers."""
        classifier = self.classifier
        shape = getattr(classifier, "input_shape_", None)
        spec = getattr(classifier, "backbone_spec_", None)
        metadata = getattr(classifier, "sklimg_metadata_", None) or {}
        return {
            "classes": self.classes,
            "input_shape": None if shape is None else [int(s) for s in shape],
            "image_size": metadata.get("image_size"),
            "backbone": getattr(spec, "name", getattr(classifier, "backbone", None)),
            "estimator": type(self.model).__name__,
            "unknown": self.has_unknown,
            "unknown_label": self.unknown_label,
            "saliency": self.has_saliency,
            "versions": versions(),
            "file": None if self.path is None else self.path.name,
            "sha256": self.sha256,
        }


def _groups(images: list[np.ndarray]) -> list[list[int]]:
    """The indices of the images, grouped by dtype (and by shape, for a pipeline whose
    own steps resize), in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault((image.dtype.str, image.shape), []).append(i)
    return list(groups.values())


def _png_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
