"""The one preparation shared by ``fit``, ``partial_fit`` and the learning-rate finder.

Validate the images, labels and weights once; check the settings; pick the route;
resolve the device and the seed; decode a sample of lazy images. Then, for a neural
head, encode the labels and build the dataset it trains on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sklimg._fit import checks
from sklimg._lazy import LazyImages, sample_images
from sklimg._torch_data import image_dataset, loss_weights
from sklimg.backbones import BackboneSpec, resolve_backbone
from sklimg.preprocessing._augment import augmented
from sklimg.utils._torch_utils import seed_from_random_state
from sklimg.utils.validation import as_images, check_groups, check_labels, check_sample_weight

__all__ = ["Prepared", "TrainingData", "prepare", "route_of", "training_data"]

#: The two routes: a neural head trained with its network by skorch, or a
#: scikit-learn head fitted on frozen features.
ROUTES = ("neural", "head")


def route_of(head, spec: BackboneSpec) -> str:
    """The route of a classifier with this ``head`` and backbone: ``"head"`` when a
    scikit-learn head is fitted on frozen features (the user's head, or a classical
    backbone's default one), else ``"neural"``."""
    return "head" if head is not None or spec.kind == "classical" else "neural"


@dataclass(frozen=True)
class Prepared:
    """Validated inputs and what every route needs to know before it fits."""

    images: np.ndarray | LazyImages
    y: np.ndarray
    sample_weight: np.ndarray | None
    #: A group per image (fit's ``groups``): the held-out split keeps each on one side.
    groups: np.ndarray | None
    spec: BackboneSpec
    route: str
    device: str
    seed: int
    #: The images before augmentation: in memory as they are; a decoded, evenly
    #: spaced sample of lazy ones. They give the shape and the pixel statistics.
    sample: np.ndarray


def prepare(
    clf,
    X,
    y,
    sample_weight=None,
    *,
    groups=None,
    min_classes: int = 2,
    call: int | None = None,
) -> Prepared:
    """Validate ``X``, ``y``, ``sample_weight`` and ``groups`` and check ``clf``'s
    settings, before any work on the images.

    Parameters
    ----------
    clf : ImageClassifier
        Read, never changed.
    X, y, sample_weight, groups
        As given to ``fit``.
    min_classes : int, default=2
        The fewest classes ``y`` may hold (1 for a part of the data, in partial_fit).
    call : int or None, default=None
        For partial_fit, the number of calls so far: each call draws from a seed of its
        own (``random_state``'s plus the call's number), so a series of calls repeats.

    Returns
    -------
    prepared : Prepared

    Raises
    ------
    ImageInputError
        For unusable images, labels, weights or groups.
    Refusal, ValueError, TypeError
        For settings that cannot be used (see :mod:`sklimg._fit.checks`).
    """
    images = as_images(X, image_shape=clf.image_shape)
    y = check_labels(y, len(images), min_classes=min_classes)
    sample_weight = check_sample_weight(sample_weight, len(images))
    groups = check_groups(groups, len(images))
    checks.check_settings(clf)
    device = checks.device_of(clf)
    spec = resolve_backbone(clf.backbone)
    route = route_of(clf.head, spec)
    checks.check_tta(clf, spec)
    if route == "head":
        checks.check_head_route(clf, spec)
    seed = seed_from_random_state(clf.random_state)
    if call is not None:
        seed = (seed + 1_000_003 * call) % 2**32
    return Prepared(
        images=images,
        y=y,
        sample_weight=sample_weight,
        groups=groups,
        spec=spec,
        route=route,
        device=device,
        seed=seed,
        sample=sample_images(images),
    )


@dataclass(frozen=True)
class TrainingData:
    """What a neural head trains on: the labels encoded as indices into ``classes``,
    the images as the network sees them at training time (augmented when ``augment``
    says so), and the torch dataset of both, with the weights per image."""

    classes: np.ndarray
    y_encoded: np.ndarray
    images: np.ndarray | LazyImages
    dataset: object


def training_data(clf, prepared: Prepared, classes: np.ndarray) -> TrainingData:
    """Encode the labels against ``classes`` and build the training dataset."""
    y_encoded = np.searchsorted(classes, prepared.y)
    images = prepared.images if clf.augment is None else augmented(clf.augment, prepared.images)
    dataset = image_dataset(
        images, torch.from_numpy(y_encoded), loss_weights(prepared.sample_weight)
    )
    return TrainingData(classes=classes, y_encoded=y_encoded, images=images, dataset=dataset)
