"""Saliency maps: where in each image a classifier looked, on the images' own pixels.

:func:`explain` computes one map per image with captum's attribution algorithms and
sklimg's knowledge of the model: the layer Grad-CAM reads (among the feature maps
the backbone's spec records, or found by running a user's network once), the
classifier's on-the-fly resize, and a pipeline's image steps, so that every map comes
back on the pixel grid of the images as they were passed. :func:`deletion_scores`
checks a map's faithfulness: how much the explained class's probability falls when the
most salient pixels are masked, against the same mask moved elsewhere.

Needs ``pip install "sklimg[explain]"`` (captum, imported when a map is computed:
it takes seconds to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import resize
from sklearn.utils.validation import check_is_fitted

from sklimg._fit.head import logits as head_logits
from sklimg._linear_head import linear_head
from sklimg._network import ImageNetwork
from sklimg._pixels import unit_float
from sklimg._torch_data import images_to_tensor
from sklimg._training.net import bare_module, net_device
from sklimg._tta import views
from sklimg.classifier import ImageClassifier
from sklimg.features import DeepFeatures
from sklimg.preprocessing import Resize
from sklimg.utils.validation import as_images, check_images

__all__ = ["METHODS", "DeletionScores", "deletion_scores", "explain"]

#: The attribution methods, by name.
METHODS = ("gradcam", "integrated_gradients", "occlusion")
# Deletion: the share of pixels masked, and how many random masks to average.
_DELETED = 0.1
_RANDOM_MASKS = 3
# Grad-CAM's layer: the last map at least this many pixels on its shorter side.
_FINEST = 8
_NOT_READ = (
    torch.nn.Conv2d,
    torch.nn.ConvTranspose2d,
    torch.nn.BatchNorm2d,
    torch.nn.GroupNorm,
    torch.nn.LayerNorm,
    torch.nn.InstanceNorm2d,
    torch.nn.MaxPool2d,
    torch.nn.AvgPool2d,
    torch.nn.AdaptiveAvgPool2d,
    torch.nn.AdaptiveMaxPool2d,
)


def explain(
    model,
    X,
    *,
    method: str = "gradcam",
    target=None,
    layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Saliency maps of images ``X`` for ``model``'s predictions (or ``target``).

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        Fitted; a pipeline ends in an :class:`~sklimg.ImageClassifier`, and its steps
        before it keep the image shape or are ``Resize`` / ``CenterCrop``-like steps
        whose pixels can be traced back.
    X : array-like of shape (n_samples, H, W[, C]), list of arrays or file paths
        Images of one size, as ``model.predict`` takes them.
    method : {"gradcam", "integrated_gradients", "occlusion"}, default="gradcam"
        ``"gradcam"``: Grad-CAM on the last of the backbone's feature maps at least 8
        pixels on its shorter side (those its ``BackboneSpec.feature_maps`` records;
        for a user's module, its activations and blocks), or ``layer``;
        ``"integrated_gradients"``: gradients integrated from a black image (32
        steps). Both need gradients from the images to the logits: a neural head, or
        a linear scikit-learn head (scalers, PCA, then a linear model such as the
        default ``LogisticRegression``) on a frozen deep backbone, run in torch.
        ``"occlusion"``: the fall in probability when a square of the image is greyed
        out, slid over it; it needs only ``predict_proba``, so it explains every
        route, classical backbones and any scikit-learn head included. With the
        classifier's ``tta``, the maps are averaged over its views (each taken back
        onto the image) as its predictions are.
    target : label, array-like of labels, or None, default=None
        The class explained: ``None`` for each image's predicted class, one label for
        all, or one per image; labels from ``classes_``.
    layer : str or None, default=None
        With ``"gradcam"``: the module of the network to read, by its name in
        ``model.net_.module_.named_modules()`` (e.g. ``"backbone.layer3"``).
    batch_size : int, default=32
        Images per forward pass.

    Returns
    -------
    maps : ndarray of shape (n_samples, H, W), float32 in [0, 1]
        1 where the image mattered most for the class, on the pixel grid of ``X``.

    Raises
    ------
    ValueError
        For an unknown method, layer or target, or a method that needs a network on a
        model without one, with the valid choices.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg import explain
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=2, random_state=0).fit(X[:300], y[:300])
    >>> maps = explain(clf, X[300:304])
    >>> maps.shape, float(maps.min()) >= 0, float(maps.max()) <= 1
    ((4, 8, 8), True, True)
    """
    classifier = _classifier(model)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {list(METHODS)}.")
    if layer is not None and method != "gradcam":
        raise ValueError(f"layer= chooses Grad-CAM's layer; method={method!r} has none.")
    images = _user_images(X)
    proba = model.predict_proba(images) if target is None else None
    targets = _targets(classifier, target, len(images), proba)
    if method == "occlusion":
        maps = _occlusion(model, images, targets, batch_size)
    else:
        steps = model.steps[:-1] if hasattr(model, "steps") else []
        inputs, shapes = _through_steps(steps, images)
        network, device = _network(classifier, method, inputs[:batch_size])
        if method == "gradcam":
            module = _layer(classifier.backbone_spec_, network, layer, inputs[:1], device)
            compute = partial(_gradcam, network, device, module, batch_size)
        else:
            compute = partial(_integrated_gradients, network, device, batch_size)
        maps = _over_views(classifier.tta, compute, inputs, targets)
        maps = _back_to_user_pixels(steps, shapes, maps)
    return _normalised(maps)


@dataclass(frozen=True)
class DeletionScores:
    """How faithful maps are, per image: the fall of the explained class's probability
    when the most salient 10% of the pixels are masked (``salient``) and when the same
    mask is moved to a random place (``random``, averaged over 3 places); ``faithful``
    where the salient pixels mattered more."""

    salient: np.ndarray
    random: np.ndarray

    @property
    def faithful(self) -> np.ndarray:
        return self.salient > self.random


def deletion_scores(model, X, maps, *, target=None, random_state=0) -> DeletionScores:
    """Mask the most salient pixels of each image with the image's mean colour, and
    the same mask moved to random places, and measure how the explained class's
    probability falls (in the spirit of pytorch-grad-cam's ROAD metrics: the masks
    differ in place only).

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        The model the maps explain.
    X : array-like of shape (n_samples, H, W[, C])
        The images explained.
    maps : ndarray of shape (n_samples, H, W)
        Their maps, from :func:`explain`.
    target : as for :func:`explain`
    random_state : int, default=0
        Seeds the random masks.

    Returns
    -------
    scores : DeletionScores
    """
    classifier = _classifier(model)
    images = _user_images(X)
    maps = np.asarray(maps)
    if maps.shape != images.shape[:3]:
        raise ValueError(f"maps must have shape {images.shape[:3]}; got {maps.shape}.")
    proba = model.predict_proba(images)  # the predicted classes, and how sure
    targets = _targets(classifier, target, len(images), proba)
    rows = np.arange(len(images))
    before = proba[rows, targets]
    n_pixels = maps[0].size
    k = max(1, round(_DELETED * n_pixels))
    fill = images.mean(axis=(1, 2), keepdims=True)

    def masked(order: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), n_pixels, -1).copy()
        chosen = order[:, :k]
        flat[rows[:, None], chosen] = fill.reshape(len(images), 1, -1)
        return flat.reshape(images.shape)

    def fall(ranked: np.ndarray) -> np.ndarray:
        """The fall of the targets' probabilities with the first-ranked pixels masked."""
        order = np.argsort(-ranked.reshape(len(ranked), -1), axis=1)
        return before - model.predict_proba(masked(order))[rows, targets]

    salient = fall(maps)
    # The random masks are the map itself moved to a random place (circularly, by a
    # quarter to three quarters of the image each way): as many pixels, in blobs of the
    # same shapes. Scattered random pixels are a harsher change than any blob (on 25x25
    # faces they lowered the probability more than the salient blobs of Grad-CAM and
    # occlusion), and the test would then judge the masks' shapes, not their place.
    rng = np.random.default_rng(random_state)
    height, width = maps.shape[1:]
    low = [max(1, height // 4), max(1, width // 4)]
    high = [max(2, 3 * height // 4 + 1), max(2, 3 * width // 4 + 1)]
    random = []
    for _ in range(_RANDOM_MASKS):
        shifts = rng.integers(low, high, size=(len(maps), 2))
        moved = np.stack(
            [
                np.roll(m, (int(a), int(b)), axis=(0, 1))
                for m, (a, b) in zip(maps, shifts, strict=True)
            ]
        )
        random.append(fall(moved))
    return DeletionScores(salient=salient, random=np.mean(random, axis=0))


def _classifier(model) -> ImageClassifier:
    classifier = model[-1] if hasattr(model, "steps") else model
    if not isinstance(classifier, ImageClassifier):
        raise TypeError(
            f"explain takes a fitted ImageClassifier or a Pipeline ending in one; got "
            f"{type(classifier).__name__}."
        )
    check_is_fitted(classifier)
    return classifier


def _user_images(X) -> np.ndarray:
    """The images as given, decoded into one float array ``(n, H, W, C)`` in [0, 1]
    (uint8 scaled), which the model's own checks accept as they would ``X``."""
    images = as_images(X)
    if not isinstance(images, np.ndarray):  # files, or lazy images
        images = check_images(list(images))
    return unit_float(images)


def _targets(classifier, target, n_images: int, proba) -> np.ndarray:
    """Class indices into ``classes_``: the labels of ``target``, or with ``None`` the
    most probable classes of ``proba`` (the images' ``predict_proba``)."""
    classes = classifier.classes_
    if target is None:
        return np.argmax(proba, axis=1)
    labels = np.asarray(target, dtype=object)
    labels = np.broadcast_to(labels, (n_images,)) if labels.ndim == 0 else labels
    if labels.shape != (n_images,):
        raise ValueError(
            f"target must be one label or one per image ({n_images}); got {labels.shape}."
        )
    # By their text, so that a command line's "3" names the class 3.
    index = {str(c): i for i, c in enumerate(classes.tolist())}
    unknown = sorted({str(v) for v in labels} - set(index))
    if unknown:
        raise ValueError(
            f"target {unknown} is not among the classes; choose from {classes.tolist()}."
        )
    return np.array([index[str(v)] for v in labels])


def _through_steps(steps, images: np.ndarray):
    """The classifier's inputs, and the ``(H, W)`` before each step."""
    shapes = []
    for _, step in steps:
        shapes.append(images.shape[1:3])
        if step is not None and step != "passthrough":
            images = np.asarray(step.transform(images))
    return images, shapes


def _back_to_user_pixels(steps, shapes, maps: np.ndarray) -> np.ndarray:
    """Maps on the classifier's input taken back through the pipeline's steps."""
    for (name, step), shape in zip(reversed(steps), reversed(shapes), strict=True):
        if tuple(maps.shape[1:]) == tuple(shape):
            continue
        if isinstance(step, Resize):
            maps = resize(maps, (len(maps), *shape), order=1, anti_aliasing=False)
            continue
        maps = _traced_back(name, step, shape, maps)
    return maps


def _traced_back(name, step, shape, maps: np.ndarray) -> np.ndarray:
    """Maps taken back through a step that moves pixels without mixing them (a crop, a
    pad): the step is run on an image of pixel coordinates, which says where each of
    its output pixels came from."""
    height, width = shape
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    coordinates = np.stack(
        [(rows + 1) / (height + 1), (cols + 1) / (width + 1), np.ones_like(rows, float)], axis=-1
    ).astype(np.float32)[np.newaxis]
    traced = np.asarray(step.transform(coordinates))[0]
    if traced.shape[:2] != maps.shape[1:]:
        raise ValueError(
            f"The pipeline step {name!r} changes the image size in a way explain cannot "
            f"trace back; explain the images after it (pipeline[-1] on "
            f"pipeline[:-1].transform(X))."
        )
    real = np.isclose(traced[..., 2], 1.0)
    src_rows = np.rint(traced[..., 0][real] * (height + 1) - 1).astype(int)
    src_cols = np.rint(traced[..., 1][real] * (width + 1) - 1).astype(int)
    out = np.zeros((len(maps), height, width), np.float32)
    out[:, src_rows, src_cols] = maps[:, real]
    return out


def _over_views(policy, compute, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``compute(images, targets)``'s maps averaged over the classifier's test-time
    views, each taken back onto the image's pixels, as its predictions average the
    views' outputs (a mirrored view's map is mirrored back). Occlusion needs none of
    this: it goes through ``predict_proba``, which averages the views itself."""
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)
    total = 0
    for weight, view, undo in views(policy):
        viewed = images if policy is None else view(batch).permute(0, 2, 3, 1).numpy()
        maps = torch.from_numpy(compute(viewed, targets))
        total = total + weight * undo(maps[:, None])[:, 0].numpy()
    return total


def _network(classifier, method: str, probe: np.ndarray):
    """The torch network from images to the classifier's logits, in eval mode, and
    where its inputs go: the classifier's own, or for a scikit-learn head on a frozen
    deep backbone, the backbone with the head's linear maps in torch, checked to give
    the head's own logits on ``probe``."""
    if hasattr(classifier, "net_"):
        return bare_module(classifier.net_).eval(), net_device(classifier.net_)
    extractor = classifier.feature_extractor_
    layers = linear_head(classifier.head_) if isinstance(extractor, DeepFeatures) else None
    if layers is not None:
        features = extractor.network_
        device = next(features.parameters()).device
        network = ImageNetwork(
            features.adapter, features.backbone, layers.to(device), pool=features.pool
        ).eval()
        values = extractor.transform(probe)
        with torch.no_grad():
            ours = layers(torch.from_numpy(values).float().to(device)).cpu().numpy()
        theirs = head_logits(classifier.head_, values)
        if ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-3, atol=1e-3):
            return network, device
    raise ValueError(
        f"method={method!r} needs gradients from the images to the logits; this "
        f"classifier's head is a {type(classifier.head_).__name__} on "
        f"{type(extractor).__name__} features, and only a linear head (scalers, PCA, "
        f"then a linear model) on a deep backbone has them. Use method='occlusion', "
        f"which explains every route."
    )


def _gradcam(network, device, module, batch_size, images, targets) -> np.ndarray:
    cam = _captum().LayerGradCam(network, module)
    maps = []
    for start in range(0, len(images), batch_size):
        x = images_to_tensor(images[start : start + batch_size]).to(device)
        t = torch.as_tensor(targets[start : start + batch_size], device=device)
        attribution = cam.attribute(x, target=t, relu_attributions=True)
        upsampled = F.interpolate(
            attribution.detach().float(), size=images.shape[1:3], mode="bilinear"
        )
        maps.append(upsampled[:, 0].cpu().numpy())
    return np.concatenate(maps)


def _integrated_gradients(network, device, batch_size, images, targets) -> np.ndarray:
    gradients = _captum().IntegratedGradients(network)
    maps = []
    for start in range(0, len(images), batch_size):
        x = images_to_tensor(images[start : start + batch_size]).to(device).float()
        t = torch.as_tensor(targets[start : start + batch_size], device=device)
        attribution = gradients.attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=32)
        maps.append(attribution.detach().abs().sum(dim=1).cpu().numpy())
    return np.concatenate(maps)


def _layer(spec, network, name: str | None, probe: np.ndarray, device):
    """The module Grad-CAM reads: ``name``, or the last of the backbone's feature maps
    (its spec's ``feature_maps``; for a user's module, its activations and blocks,
    found by running it) that is at least :data:`_FINEST` pixels on its shorter side
    for ``probe``, else its last spatial one. The last map of all is Grad-CAM's usual
    layer, but at 1/32 of a 224-pixel photo (7x7) or 1/8 of a small image (4x4 for
    32x32) its peaks miss small objects: on 32x32 images with an 8x8 patch,
    ``cnn_small``'s 4x4 map put the peak on the patch for 52% of them, its last 8x8
    one for 100%."""
    modules = dict(network.named_modules())
    if name is not None:
        if name not in modules:
            spatial = ", ".join(list(_spatial_modules(network, probe, device))[-8:])
            raise ValueError(
                f"The network has no module {name!r}; modules with spatial outputs, last "
                f"ones: {spatial}."
            )
        return modules[name]
    recorded = [f"backbone.{n}" for n in spec.feature_map_names(network.backbone)]
    missing = [n for n in recorded if n not in modules]
    if missing:
        raise ValueError(
            f"The spec of backbone {spec.name!r} names feature maps its network lacks: "
            f"{missing}; give layer= (a name from model.net_.module_.named_modules())."
        )
    spatial = _spatial_modules(network, probe, device, recorded or None)
    if not spatial:
        raise ValueError(
            "The network has no spatial feature map for Grad-CAM; use method='occlusion'."
        )
    fine = [name for name, side in spatial.items() if side >= _FINEST]
    return modules[(fine or list(spatial))[-1]]


def _spatial_modules(network, probe: np.ndarray, device, names=None) -> dict:
    """The modules among ``names`` (``None``: the backbone's activations and blocks;
    convolutions, normalisations and poolings are left out, as an activation or a
    block's output is what the next layer reads) whose output is ``(N, C, h, w)``
    with ``h * w > 1``, in the order they ran, with ``min(h, w)``."""
    found = {}
    hooks = []
    for name, module in network.named_modules():
        if names is None:
            if not name.startswith("backbone.") or isinstance(module, _NOT_READ):
                continue
        elif name not in names:
            continue

        def record(module, args, output, name=name):
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                if output.shape[-1] * output.shape[-2] > 1:
                    found.pop(name, None)
                    found[name] = int(min(output.shape[-2:]))

        hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            network(images_to_tensor(probe).to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return found


def _occlusion(model, images, targets, batch_size) -> np.ndarray:
    """The fall in probability of each target when a grey square hides part of the
    image (captum's Occlusion on ``model.predict_proba``, in the images' pixels)."""
    height, width, channels = images.shape[1:]
    side = max(1, round(min(height, width) / 6))
    stride = max(1, side // 2)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(model.predict_proba(x.numpy().astype(np.float32)))

    occlusion = _captum().Occlusion(forward)
    x = torch.from_numpy(images)
    attribution = occlusion.attribute(
        x,
        sliding_window_shapes=(side, side, channels),
        strides=(stride, stride, channels),
        baselines=0.5,
        target=torch.as_tensor(targets),
        perturbations_per_eval=max(1, batch_size // max(1, len(images))),
    )
    return np.clip(attribution.numpy().sum(axis=-1), 0, None)


def _captum():
    """captum's attribution algorithms, or an ImportError saying how to install them."""
    try:
        import captum.attr
    except ImportError:
        raise ImportError('sklimg.explain needs captum: pip install "sklimg[explain]".') from None
    return captum.attr


def _normalised(maps: np.ndarray) -> np.ndarray:
    """Each map scaled to [0, 1] (a flat map stays 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0).astype(np.float32)
