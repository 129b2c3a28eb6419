"""ImageClassifier: a scikit-learn classifier over a deep image backbone, trained by skorch."""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sklimg._lazy import LazyImages
from sklimg._network import build_backbone
from sklimg._torch_data import (
    ImageTensorDataset,
    LazyImageDataset,
    image_to_float,
    images_to_tensor,
)
from sklimg._training import OPTIMIZERS, build_net
from sklimg.backbones import BackboneSpec, resolve_backbone
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing._augment import AUGMENT_POLICIES, Augment
from sklimg.utils._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from sklimg.utils._torch_utils import resolve_device, seed_from_random_state, seeded
from sklimg.utils.validation import (
    SUPPORTED_CHANNELS,
    as_images,
    check_image_shape_param,
    check_labels,
    check_same_shape,
)

__all__ = ["ImageClassifier"]

# Images decoded from files (or lazy views) for those statistics and the shape checks.
_LAZY_SAMPLE = 256


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """Image classifier: a deep backbone plus a linear head, trained with skorch.

    Takes images as arrays (channels last, as in scikit-image) and behaves like any
    scikit-learn classifier: it works in ``Pipeline``, ``GridSearchCV``,
    ``cross_val_score`` and ``clone``, and pickles with joblib.

    Parameters
    ----------
    backbone : str, BackboneSpec or torch.nn.Module, default="cnn_small"
        The network that turns images into features: a registry name (see
        :func:`sklimg.backbones.list_backbones`), a :class:`~sklimg.backbones.BackboneSpec`,
        or your own ``nn.Module`` class or instance mapping ``(N, C, H, W)`` batches to
        ``(N, D)`` or ``(N, D, h, w)`` features. The default, a small CNN trained from
        scratch, suits small images; ``"resnet18"`` etc. come from torchvision.
    pretrained : bool, default=False
        Start from the backbone's pretrained (ImageNet) weights, through torchvision's
        weights API (downloaded once and cached under ``TORCH_HOME``). Pretrained
        backbones see images resized to the size their weights expect, normalised with
        the weights' mean and std.
    weights : str, path-like or None, default=None
        Start from specific weights: a local ``.pth``/``.pt``/``.safetensors`` state dict
        or a torchvision weights name such as ``"IMAGENET1K_V1"``. Implies pretrained.
    backbone_kwargs : dict or None, default=None
        Extra arguments for the backbone builder, e.g. ``{"widths": (64, 128, 256)}``
        for ``"cnn_small"``.
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(H, W, C)`` of each row when ``X`` is a 2-D array of flattened
        images such as ``load_digits().data``. ``None``: 2-D rows must be squares.
    input_size : "auto", int or tuple of int, default="auto"
        Size the network sees; every batch is resized to it on the fly. ``"auto"``:
        pretrained backbones get the size of their weights (224 for torchvision);
        backbones trained from scratch get the images' own size (upsampled only below
        the backbone's minimum), with a stride-1 stem for images under 64 pixels.
    augment : str, Augment or None, default=None
        Random augmentation of the training images, fresh every epoch and never at
        prediction: a policy of :class:`~sklimg.preprocessing.Augment` (``"light"``,
        ``"standard"``, ``"trivialaugment"``, ``"randaugment"``) or an ``Augment``
        instance. The same as an ``Augment`` step before the classifier in a Pipeline.
    max_epochs : int, default=15
        Passes over the training data.
    batch_size : int, default=64
        Images per training step.
    lr : float, default=2e-3
        Learning rate.
    optimizer : {"adamw", "adam", "sgd"} or torch optimizer class, default="adamw"
        ``"sgd"`` uses Nesterov momentum 0.9.
    weight_decay : float, default=5e-4
        Weight decay (decoupled for AdamW).
    lr_schedule : {"cosine", "constant"}, default="cosine"
        Learning rate over epochs: cosine annealing to zero at ``max_epochs``, or fixed.
    validation_fraction : float or None, default=None
        Fraction of the training images held out (stratified) to report validation loss
        and accuracy each epoch. ``None``: no hold-out, unless ``early_stopping`` is on,
        which then holds out 0.1.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and
        restore the best weights.
    patience : int, default=5
        Epochs without improvement before early stopping.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the validation split. With an int,
        fitting twice on the CPU gives identical models. Your global torch random state
        is left as it was.
    num_workers : int or None, default=None
        DataLoader worker processes that decode files and augment images. ``None``:
        ``min(4, cpu_count // 2)`` (at least 1) for files or augmentation, none for
        arrays held in memory, which are batched by slicing.
    verbose : int, default=0
        ``0`` silent; ``1`` prints a table of losses per epoch.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` instead of starting
        again; the labels must be among ``classes_``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_classes_ : int
        Number of classes.
    input_shape_ : tuple of int
        ``(H, W, C)`` of the training images; predict expects the same.
    input_size_ : tuple of int
        ``(H, W)`` the network sees after the on-the-fly resize.
    backbone_spec_ : BackboneSpec
        The resolved backbone.
    net_ : skorch.NeuralNetClassifier
        The trained skorch net; ``net_.module_`` is the torch module.
    history_ : skorch.History
        Per-epoch records (``history_[:, "train_loss"]``).

    See Also
    --------
    sklimg.backbones.list_backbones : Names of the available backbones.

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier(backbone="test_cnn", max_epochs=2, random_state=0)
    >>> clf.fit(X[:200], y[:200]).predict(X[:3]).shape
    (3,)
    >>> clf.predict_proba(X[:2]).sum(axis=1).round(6)
    array([1., 1.])
    """

    _parameter_constraints: dict = {
        "backbone": [str, BackboneSpec, nn.Module, type],
        "pretrained": ["boolean"],
        "weights": [None, str, HasMethods("__fspath__")],
        "backbone_kwargs": [None, dict],
        "image_shape": [None, tuple, list],
        "augment": [None, StrOptions(set(AUGMENT_POLICIES)), Augment],
        "input_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            tuple,
            list,
        ],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "num_workers": [None, Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        backbone="cnn_small",
        *,
        pretrained=False,
        weights=None,
        backbone_kwargs=None,
        image_shape=None,
        input_size="auto",
        augment=None,
        max_epochs=15,
        batch_size=64,
        lr=2e-3,
        optimizer="adamw",
        weight_decay=5e-4,
        lr_schedule="cosine",
        validation_fraction=None,
        early_stopping=False,
        patience=5,
        class_weight=None,
        device="auto",
        random_state=None,
        num_workers=None,
        verbose=0,
        warm_start=False,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.weights = weights
        self.backbone_kwargs = backbone_kwargs
        self.image_shape = image_shape
        self.input_size = input_size
        self.augment = augment
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.num_workers = num_workers
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages
            Images, channels last, ``uint8`` (0-255) or float (see
            :func:`sklimg.utils.validation.check_images`); or image files (a 1-D array or
            list of paths), decoded batch by batch in DataLoader workers.
        y : array-like of shape (n_samples,)
            Class labels of any type.

        Returns
        -------
        self : ImageClassifier
            The fitted classifier.

        Raises
        ------
        ImageInputError
            For unusable images or labels, before any training starts.
        """
        images = as_images(X, image_shape=self.image_shape)
        y = check_labels(y, len(images))
        device = resolve_device(self.device)
        self._check_params()
        sample = _sample(images)
        continuing = self.warm_start and hasattr(self, "net_")
        if continuing:
            self._check_warm_start(sample, y)
            classes = self.classes_
        else:
            classes = np.unique(y)
        y_encoded = np.searchsorted(classes, y)
        validation_fraction = self._validation_fraction()
        _check_validation_split(y_encoded, len(classes), validation_fraction)

        train_images = self._augmented(images)
        dataset = _dataset(train_images, torch.from_numpy(y_encoded))
        seed = seed_from_random_state(self.random_state)
        with seeded(seed, device):
            if continuing:
                self._reset_lr()
                self._train(self.net_, dataset, y_encoded, partial=True)
            else:
                spec = resolve_backbone(self.backbone)
                built = build_backbone(
                    spec,
                    sample,
                    pretrained=self.pretrained,
                    weights=self.weights,
                    backbone_kwargs=self.backbone_kwargs,
                    input_size=self.input_size,
                )
                input_size = built.input_size
                height, width, channels = sample.shape[1:]
                net = build_net(
                    built.network(len(classes)),
                    n_classes=len(classes),
                    class_weights=self._class_weights(classes, y),
                    optimizer=self.optimizer,
                    lr=self.lr,
                    weight_decay=self.weight_decay,
                    lr_schedule=self.lr_schedule,
                    max_epochs=self.max_epochs,
                    batch_size=self.batch_size,
                    predict_batch_size=max(
                        self.batch_size, min(1024, 2**20 // math.prod(input_size))
                    ),
                    validation_fraction=validation_fraction,
                    early_stopping=self.early_stopping,
                    patience=self.patience,
                    device=device,
                    seed=seed,
                    verbose=self.verbose,
                    num_workers=self._num_workers(train_images),
                    expected_shape=(channels, height, width),
                )
                # Fitted attributes are set once training has finished (or stopped
                # with weights worth keeping), never half-way.
                fitted = dict(
                    classes_=classes,
                    n_classes_=len(classes),
                    backbone_spec_=spec,
                    input_shape_=(int(height), int(width), int(channels)),
                    input_size_=input_size,
                )
                self._train(net, dataset, y_encoded, fitted=fitted)
        return self

    def _train(self, net, dataset, y_encoded, *, partial=False, fitted=None) -> None:
        """Run skorch; keep what was learned if a bad image stops training part-way."""
        try:
            (net.partial_fit if partial else net.fit)(dataset, y_encoded)
        except ImageInputError as exc:
            epochs = sum(1 for row in net.history if "train_loss" in row)
            if not epochs:
                raise
            self._set_fitted(net, fitted)
            raise ImageInputError(
                f"{exc}\nTraining stopped after {epochs} complete epoch(s); the classifier "
                f"keeps the weights learned so far. Fix or remove the image, then call fit "
                f"with warm_start=True to continue."
            ) from exc
        self._set_fitted(net, fitted)

    def _set_fitted(self, net, fitted: dict | None) -> None:
        self.net_ = net
        for name, value in (fitted or {}).items():
            setattr(self, name, value)
        self.history_ = net.history

    def _augmented(self, images):
        if self.augment is None:
            return images
        augment = self.augment if isinstance(self.augment, Augment) else Augment(self.augment)
        return augment.fit_transform(images)

    def _num_workers(self, images) -> int:
        if not isinstance(images, LazyImages):
            return 0
        if self.num_workers is not None:
            return self.num_workers
        return max(1, min(4, (os.cpu_count() or 2) // 2))

    def _check_params(self) -> None:
        check_image_shape_param(self.image_shape)
        if isinstance(self.input_size, (tuple, list)) and (
            len(self.input_size) != 2
            or not all(isinstance(s, Integral) and s > 0 for s in self.input_size)
        ):
            raise ValueError(
                f"input_size must be 'auto', an int or (height, width) with positive ints; "
                f"got {self.input_size!r}."
            )
        if isinstance(self.optimizer, type) and not issubclass(
            self.optimizer, torch.optim.Optimizer
        ):
            raise TypeError(
                f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer "
                f"subclass; got {self.optimizer!r}."
            )

    def _validation_fraction(self) -> float | None:
        if self.validation_fraction is None and self.early_stopping:
            return 0.1
        return self.validation_fraction

    def _check_warm_start(self, sample: np.ndarray, y: np.ndarray) -> None:
        check_same_shape(sample, self.input_shape_, type(self).__name__)
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if len(unseen):
            raise ImageInputError(
                f"warm_start=True continues training on the classes seen at the first fit "
                f"({self.classes_.tolist()}); y has new labels {unseen.tolist()}. Refit with "
                f"warm_start=False to learn new classes."
            )

    def _reset_lr(self) -> None:
        # A cosine schedule ends near 0; continuing starts again from the chosen lr.
        for group in self.net_.optimizer_.param_groups:
            group["lr"] = self.lr

    def _class_weights(self, classes: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        try:
            return compute_class_weight(self.class_weight, classes=classes, y=y)
        except ValueError as exc:
            raise ImageInputError(
                f"Invalid class_weight: {exc} Use 'balanced' or a dict mapping labels in "
                f"{classes.tolist()} to weights."
            ) from exc

    # ------------------------------------------------------------- predict
    def _dataset(self, X):
        check_is_fitted(self)
        images = as_images(X, image_shape=self.image_shape)
        first = images if isinstance(images, np.ndarray) else _sample(images, 1)
        check_same_shape(first, self.input_shape_, type(self).__name__)
        return _dataset(images)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages
            Images of the same size and channels as at fit.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities (softmax of the logits), columns ordered as ``classes_``;
            rows sum to 1.
        """
        dataset = self._dataset(X)
        return np.asarray(self.net_.predict_proba(dataset), dtype=np.float64)

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C])

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Predicted class label of each image in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Images, not feature tables: scikit-learn's 2-D checks do not apply (see
        # sklimg.utils.estimator_checks for the image-aware suite).
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.classifier_tags.multi_label = False
        return tags


def _dataset(images, y: torch.Tensor | None = None):
    """The torch dataset for in-memory images (one tensor) or lazy ones (per item)."""
    if isinstance(images, LazyImages):
        return LazyImageDataset(images, y)
    return ImageTensorDataset(images_to_tensor(images), y)


def _sample(images, n: int = _LAZY_SAMPLE) -> np.ndarray:
    """The images before augmentation: in memory as they are; otherwise up to ``n``
    evenly spaced images decoded (float32 in [0, 1]), to learn the shape and the pixel
    statistics."""
    if isinstance(images, LazyImages):
        images = images.without_random()
    if isinstance(images, np.ndarray):
        return images
    indices = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).astype(int))
    decoded = []
    for i in indices:
        image = images.load(int(i))
        if image.ndim == 2:
            image = image[..., None]
        if decoded and image.shape != decoded[0].shape:
            raise ImageInputError(
                f"Images differ in size: image {indices[0]} is {decoded[0].shape} but image "
                f"{i} is {image.shape} (height, width, channels). Add a resizing step, e.g. "
                f"make_pipeline(sklimg.preprocessing.Resize((64, 64)), ImageClassifier())."
            )
        decoded.append(image_to_float(image))
    sample = np.stack(decoded)
    if sample.shape[-1] not in SUPPORTED_CHANNELS:
        raise ImageInputError(
            f"The images have {sample.shape[-1]} channels; expected 1 (grayscale) or 3 "
            f"(RGB). Add a sklimg.preprocessing.ToRGB or Grayscale step."
        )
    return sample


def _check_validation_split(y_encoded: np.ndarray, n_classes: int, fraction) -> None:
    """Fail before training when a stratified hold-out of ``fraction`` is impossible."""
    if not fraction:
        return
    n = len(y_encoded)
    n_valid = math.ceil(fraction * n)
    smallest = int(np.bincount(y_encoded, minlength=n_classes).min())
    if smallest < 2 or n_valid < n_classes or n - n_valid < n_classes:
        raise ImageInputError(
            f"Cannot hold out a stratified validation_fraction={fraction} of {n} images "
            f"in {n_classes} classes (the smallest class has {smallest} images): each "
            f"class needs an image on both sides. Use more images, a larger "
            f"validation_fraction, or validation_fraction=None and early_stopping=False."
        )
