"""ImageClassifier: a scikit-learn classifier over a deep image backbone, trained by skorch."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from numbers import Integral, Real
from pathlib import Path
from typing import Any, NamedTuple

import joblib
import numpy as np
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, has_fit_parameter
from skorch.history import History
from torch import nn

from sklimg._cache import cached_transform, resolve_memory
from sklimg._lazy import LazyImages, sample_images
from sklimg._mix import MIX_POLICIES
from sklimg._network import HeadOnly, build_backbone
from sklimg._torch_data import (
    ImageTensorDataset,
    LazyImageDataset,
    images_to_tensor,
    n_batches,
)
from sklimg._training import (
    OPTIMIZERS,
    TrainingPlan,
    bare_module,
    build_net,
    check_callbacks,
    load_checkpoint,
    net_device,
    takes_keyword,
    weight_average,
)
from sklimg._tta import TTA_POLICIES, check_tta
from sklimg.backbones import BackboneSpec, resolve_backbone
from sklimg.exceptions import (
    ImageInputError,
    TrainingDivergedError,
    TrainingInterruptedWarning,
    VersionMismatchWarning,
)
from sklimg.features._deep import DeepFeatures, default_num_workers, extract_features
from sklimg.preprocessing._augment import AUGMENT_POLICIES, Augment
from sklimg.utils._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from sklimg.utils._torch_utils import resolve_device, seed_from_random_state, seeded
from sklimg.utils.validation import (
    as_images,
    check_image_shape_param,
    check_labels,
    check_same_range,
    check_same_shape,
    check_sample_weight,
    pixel_range,
)

__all__ = ["ImageClassifier"]


class _Network(NamedTuple):
    """The network a fit trains, and what follows from how it was made."""

    network: nn.Module
    input_size: tuple[int, int]
    uses_weights: bool  # pretrained or given weights (a lower backbone rate by default)
    finetune: str  # resolved: "full", "head" or "gradual"
    history: Any  # the fitted network's history_, None for a new one


# What a partial_fit checkpoint's tag starts with: fit refuses to resume it.
_PARTIAL_FIT_TAG = "partial_fit:"

# What defines the network: a warm start refuses changes to these.
_NETWORK_PARAMS = (
    "backbone", "pretrained", "weights", "backbone_kwargs", "image_shape", "head",
    "finetune", "input_size",
)  # fmt: skip


# Parameters added after checkpoints were first written, with their defaults: left out
# of a checkpoint's digest while at their default, so that older checkpoints still resume.
_PARAMS_SINCE_CHECKPOINTS = {
    "ema_decay": None,
    "mix": None,
    "mix_alpha": None,
    "gradient_accumulation_steps": 1,
}


# Training parameters a partial_fit net is built with: changing one (set_params) between
# calls builds a new net around the network (a new optimizer), as a warm start does.
_INCREMENTAL_PARAMS = (
    "lr", "optimizer", "weight_decay", "batch_size", "label_smoothing", "ema_decay", "mix",
    "mix_alpha", "gradient_accumulation_steps", "gradient_clip", "class_weight",
    "backbone_lr_scale", "freeze_epochs", "device", "amp", "compile", "accelerator",
    "checkpoint_dir", "callbacks", "verbose",
)  # fmt: skip


def _head_has(method: str):
    """An ``available_if`` check: does the classifier's head offer ``method``? A neural
    head gives probabilities only; a scikit-learn head what it has (as ``Pipeline``
    offers its final step's methods)."""

    def check(clf) -> bool:
        if hasattr(clf, "head_"):
            head = clf.head_
        elif hasattr(clf, "net_"):
            return method == "predict_proba"
        elif clf.head is not None:
            head = clf.head
        else:
            try:
                classical = resolve_backbone(clf.backbone).kind == "classical"
            except (ValueError, TypeError):  # fit reports an unusable backbone
                classical = False
            if not classical:
                return method == "predict_proba"
            head = default_head()
        if not hasattr(head, method):
            raise AttributeError(
                f"This ImageClassifier's head {head!r} has no {method}; use a head that "
                f"does, e.g. LogisticRegression() or SVC(probability=True)."
            )
        return True

    return check


def _can_partial_fit(clf) -> bool:
    """An ``available_if`` check: a neural head always trains in parts; a scikit-learn
    head only when it has ``partial_fit``."""
    head = clf.head_ if hasattr(clf, "head_") else clf.head
    if head is None:
        try:
            classical = resolve_backbone(clf.backbone).kind == "classical"
        except (ValueError, TypeError):  # fit reports an unusable backbone
            classical = False
        if not classical:
            return True
        head = default_head()
    if not hasattr(head, "partial_fit"):
        raise AttributeError(
            f"This ImageClassifier's head {head!r} has no partial_fit; use a head that "
            f"does, e.g. SGDClassifier(loss='log_loss'), or head=None with a deep backbone."
        )
    return True


class ImageClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
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
    head : scikit-learn classifier or None, default=None
        ``None``: a linear layer trained with the network by skorch. A scikit-learn
        estimator (e.g. ``LogisticRegression()``, ``SVC()``): the backbone is frozen,
        each image's features are computed once, and the head is fitted on them by
        scikit-learn, on the original labels. Classical backbones (``"hog"``, ``"lbp"``,
        ``"color_histogram"``, ``"pixels"``) always use a scikit-learn head, by default a
        standardised ``LogisticRegression``. The classifier then has the head's
        ``predict_proba`` and ``decision_function``, where the head has them.
    finetune : {"auto", "full", "head", "gradual"}, default="auto"
        What trains with a neural head. ``"full"``: everything. ``"head"``: only the
        head; the backbone is frozen, BatchNorm statistics included, and without
        augmentation each image's features are computed once and reused every epoch.
        ``"gradual"``: the head alone for ``freeze_epochs`` epochs, then everything.
        ``"auto"``: ``"head"`` with pretrained weights, ``"full"`` from scratch.
    backbone_lr_scale : float or None, default=None
        The backbone's learning rate as a fraction of ``lr`` when it trains
        (``"full"``, ``"gradual"``). ``None``: 0.1 with pretrained weights, else 1.
    freeze_epochs : int, default=1
        Epochs with the backbone frozen for ``finetune="gradual"``, counted from the
        first fit (warm starts and ``partial_fit`` calls continue the count). A fit
        that ends before the backbone unfreezes warns.
    memory : str, path-like, joblib.Memory or None, default=None
        Folder caching frozen features per image content and extractor (backbone,
        weights, preprocessing), so cross-validation folds and grid points compute each
        image once. Used when the backbone is frozen and images are not augmented.
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
    mix : {"mixup", "cutmix", "mixup_cutmix"} or None, default=None
        Train on blends of two images (of the same batch) and score the prediction
        against both labels, in proportion: MixUp averages the two images; CutMix
        pastes a box of one into the other; ``"mixup_cutmix"`` picks one of the two per
        batch (timm's and torchvision's recipe). The loss is ``lam * loss(label) +
        (1 - lam) * loss(other label)`` (fastai's form), so class weights, sample
        weights and label smoothing apply as without mixing. A regulariser: it pays
        where a network would overfit (long runs, few images) and costs accuracy in
        short runs (see the user guide's figures). Validation, BatchNorm statistics and
        predictions use the images unmixed. With ``finetune="head"``, the frozen
        backbone forwards the mixed images every epoch, as with ``augment``.
    mix_alpha : float or None, default=None
        The share ``lam`` of each image is drawn once per batch from
        ``Beta(mix_alpha, mix_alpha)``: lower values mix less. ``None``: 0.2 for MixUp
        and 1.0 for CutMix (torchvision's reference recipes). Without ``mix`` it does
        nothing, and fitting a neural head warns so.
    tta : {"flip", "flip_translate"} or None, default=None
        Test-time augmentation: predictions average the network's logits over views
        of each image. ``"flip"``: the image and its left-right mirror (2 forward
        passes); ``"flip_translate"``: also both mirrored, shifted one pixel up-left and
        down-right (6 passes), as in the airbench CIFAR-10 recipes. Use it only where a
        mirrored image keeps its class (photos, clothes; not digits or text), and with a
        network trained on mirrored images too (an ``augment`` policy that flips): on
        Fashion-MNIST, whose shoes all point one way, it gains 0.2 points after
        training with ``augment="light"`` but loses 0.5 after training without. Read at
        prediction, so ``set_params(tta=...)`` on a fitted classifier takes effect
        without refitting.
        With a scikit-learn ``head``, the frozen features are averaged over the views
        (for a linear head, the same as averaging its logits). Not for classical
        backbones.
    max_epochs : int, default=15
        Passes over the training data.
    batch_size : int, default=64
        Images per batch: per training step, unless ``gradient_accumulation_steps``
        sums several batches per step.
    lr : float, default=2e-3
        Learning rate.
    optimizer : {"adamw", "adam", "sgd"} or torch optimizer class, default="adamw"
        ``"sgd"`` uses Nesterov momentum 0.9.
    weight_decay : float, default=5e-4
        Weight decay (decoupled for AdamW).
    lr_schedule : {"cosine", "onecycle", "constant"}, default="cosine"
        Learning rate over training: cosine annealing to zero at ``max_epochs``
        (stepped per epoch), one-cycle (warm-up to ``lr``, then annealing, per batch),
        or fixed.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss (0.1 is common).
    ema_decay : float or None, default=None
        Keep an exponential moving average of the weights (timm's ``ModelEma``): after
        each training step it moves towards the weights by ``1 - ema_decay``, and it is
        the network that validation scores after each epoch (with early stopping
        and checkpoints) and that ``fit`` returns. The decay warms up as
        ``min(ema_decay, (1 + t) / (10 + t))`` after ``t`` steps, so short runs forget
        the initialisation; it reaches ``ema_decay`` after about
        ``9 / (1 - ema_decay)`` steps (900 for 0.99), so in shorter runs higher values
        change nothing. The average then spans about ``1 / (1 - ema_decay)`` steps.
        It gains most at a constant rate (``lr_schedule="constant"``,
        ``partial_fit``); the default cosine schedule, which anneals the rate to
        zero, already smooths the last steps (see the user guide's figures).
        ``None``: the weights as trained.
    gradient_accumulation_steps : int, default=1
        Sum the gradients of this many batches before each optimizer step, to train
        with batches of ``batch_size * gradient_accumulation_steps`` images where
        memory holds only ``batch_size`` (timm's ``--grad-accum-steps``, accelerate's
        ``gradient_accumulation_steps``). Each batch's loss counts by its number of
        images, so a step follows the mean gradient of its group's images, as one
        batch of them all would (an epoch's last group may hold fewer batches).
        Gradient clipping, the learning-rate schedule and ``ema_decay`` act once per
        step. BatchNorm still normalises each batch of ``batch_size`` images, and with
        ``class_weight`` each batch's loss is weighted within the batch. Through an
        ``accelerator``, set ``Accelerator(gradient_accumulation_steps=...)`` instead.
    gradient_clip : float or None, default=None
        Clip the gradient norm to this value (skorch's ``GradientNormClipping``).
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
        Weights of the classes in the loss, as in scikit-learn. With the default
        scikit-learn head, passed to its ``LogisticRegression``; with your own ``head``,
        set the head's ``class_weight`` instead.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the validation split. With an int,
        fitting twice on the CPU gives identical models; on CUDA, cuDNN may pick
        non-deterministic kernels, so results can differ in the last digits
        (``torch.use_deterministic_algorithms(True)`` removes that, at some cost in
        speed). Your global torch random state is left as it was.
    num_workers : int or None, default=None
        DataLoader worker processes that decode files and augment images. ``None``:
        ``min(4, cpu_count // 2)`` (at least 1) for files or augmentation, none for
        arrays held in memory, which are batched by slicing.
    amp : bool, default=False
        Mixed precision (bfloat16 autocast) on CUDA; needs a CUDA device.
    compile : bool, default=False
        ``torch.compile`` the network (through skorch); pays off on CUDA for long runs.
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face ``accelerate`` (skorch's ``AccelerateMixin``): the
        accelerator places the network and batches (leave ``device="auto"``) and
        applies its ``mixed_precision`` (leave ``amp=False``). Run the script with
        ``accelerate launch`` or ``torchrun`` for data-parallel training on several
        GPUs (or CPU processes): each process trains on its share of every epoch's
        batches, gradients are averaged, and ``predict`` gathers every process's
        share. Needs ``pip install 'sklimg[accelerate]'``. ``finetune="gradual"``
        is refused with several processes (parameters unfrozen after
        ``DistributedDataParallel`` wraps the network would not be synchronised).
        A pickled or saved model predicts without it, on one device.
    checkpoint_dir : str, path-like or None, default=None
        Write ``last.pt`` (weights, optimizer, history) and ``best.pt`` there after
        every epoch, atomically. With ``warm_start=True``, a fit that finds a checkpoint
        of the same configuration there resumes it: same history, same schedule, up to
        ``max_epochs`` in total.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (or ``(name, callback)`` pairs), run after sklimg's.
    verbose : int, default=0
        ``0`` silent; ``1`` prints a table of losses per epoch (skorch's PrintLog);
        ``2`` adds a progress bar per batch.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` for ``max_epochs``
        more epochs instead of starting again, with the current training parameters
        (``lr``, ``batch_size``, ``lr_schedule``, ...: a new optimizer and schedule);
        ``history_`` grows. The labels must be among ``classes_``, and the parameters
        that define the network (``backbone``, ``pretrained``, ``weights``,
        ``backbone_kwargs``, ``image_shape``, ``head``, ``finetune``, ``input_size``)
        must not change. See also ``checkpoint_dir``, and :meth:`partial_fit` for
        training one part of the data at a time.

    Notes
    -----
    Nothing is lost when training stops early: on Ctrl-C the classifier keeps the best
    weights so far (with a :class:`~sklimg.exceptions.TrainingInterruptedWarning`);
    a NaN or infinite loss raises :class:`~sklimg.exceptions.TrainingDivergedError`
    and keeps the last good weights; an unreadable image part-way keeps what was
    learned. After training, BatchNorm statistics are recomputed on up to 2,048
    training images with the final weights ("precise BN").

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_classes_ : int
        Number of classes.
    input_shape_ : tuple of int
        ``(H, W, C)`` of the training images; predict expects the same.
    pixel_range_ : tuple of float
        Lowest and highest pixel value of the training images (``uint8`` counted in
        [0, 1]); images on another scale at predict get a
        :class:`~sklimg.exceptions.PixelRangeWarning`.
    input_size_ : tuple of int
        ``(H, W)`` the network sees after the on-the-fly resize (neural head).
    backbone_spec_ : BackboneSpec
        The resolved backbone.
    finetune_ : str
        The resolved ``finetune`` strategy (neural head).
    net_ : skorch.NeuralNetClassifier
        The trained skorch net (neural head); ``net_.module_`` is the torch module.
    history_ : skorch.History
        Per-epoch records (``history_[:, "train_loss"]``), with a neural head.
    feature_extractor_ : transformer
        The frozen feature extractor, with a scikit-learn head.
    head_ : estimator
        The fitted scikit-learn head.

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
        "head": [None, HasMethods(["fit", "predict"])],
        "finetune": [StrOptions({"auto", "full", "head", "gradual"})],
        "backbone_lr_scale": [None, Interval(Real, 0, None, closed="left")],
        "freeze_epochs": [Interval(Integral, 0, None, closed="left")],
        "memory": [None, str, HasMethods("__fspath__"), HasMethods("cache")],
        "augment": [None, StrOptions(set(AUGMENT_POLICIES)), Augment],
        "mix": [None, StrOptions(set(MIX_POLICIES))],
        "mix_alpha": [None, Interval(Real, 0, None, closed="neither")],
        "tta": [None, StrOptions(set(TTA_POLICIES))],
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
        "lr_schedule": [StrOptions({"cosine", "onecycle", "constant"})],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "ema_decay": [None, Interval(Real, 0, 1, closed="neither")],
        "gradient_accumulation_steps": [Interval(Integral, 1, None, closed="left")],
        "gradient_clip": [None, Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "num_workers": [None, Interval(Integral, 0, None, closed="left")],
        "amp": ["boolean"],
        "compile": ["boolean"],
        "accelerator": [None, HasMethods(["prepare", "unwrap_model"])],
        "checkpoint_dir": [None, str, HasMethods("__fspath__")],
        "callbacks": [None, list],
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
        head=None,
        finetune="auto",
        backbone_lr_scale=None,
        freeze_epochs=1,
        memory=None,
        input_size="auto",
        augment=None,
        mix=None,
        mix_alpha=None,
        tta=None,
        max_epochs=15,
        batch_size=64,
        lr=2e-3,
        optimizer="adamw",
        weight_decay=5e-4,
        lr_schedule="cosine",
        label_smoothing=0.0,
        ema_decay=None,
        gradient_accumulation_steps=1,
        gradient_clip=None,
        validation_fraction=None,
        early_stopping=False,
        patience=5,
        class_weight=None,
        device="auto",
        random_state=None,
        num_workers=None,
        amp=False,
        compile=False,
        accelerator=None,
        checkpoint_dir=None,
        callbacks=None,
        verbose=0,
        warm_start=False,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.weights = weights
        self.backbone_kwargs = backbone_kwargs
        self.image_shape = image_shape
        self.head = head
        self.finetune = finetune
        self.backbone_lr_scale = backbone_lr_scale
        self.freeze_epochs = freeze_epochs
        self.memory = memory
        self.input_size = input_size
        self.augment = augment
        self.mix = mix
        self.mix_alpha = mix_alpha
        self.tta = tta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.label_smoothing = label_smoothing
        self.ema_decay = ema_decay
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.gradient_clip = gradient_clip
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.num_workers = num_workers
        self.amp = amp
        self.compile = compile
        self.accelerator = accelerator
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
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
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each image (non-negative; 0 ignores an image). A neural head
            weighs each image's loss (scaled to a mean weight of 1, so only the ratios
            matter; combined with ``class_weight``); a scikit-learn head is fitted
            with them (in a ``Pipeline`` head, each step whose ``fit`` takes them).
            The validation loss is weighted too.

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
        sample_weight = check_sample_weight(sample_weight, len(images))
        self._check_params()
        device = self._device()
        spec = resolve_backbone(self.backbone)
        sample = sample_images(images)
        seed = seed_from_random_state(self.random_state)
        if self.head is not None or spec.kind == "classical":
            self._check_tta(spec)
            with seeded(seed, device):
                self._fit_features(spec, images, sample, y, sample_weight, device, seed)
            return self
        self._warn_unused_mix_alpha()

        continuing = self.warm_start and hasattr(self, "net_")
        if continuing:
            self._check_continuing(sample, "warm_start=True")
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if len(unseen):
                raise ImageInputError(
                    f"warm_start=True continues training on the classes seen at the first "
                    f"fit ({self.classes_.tolist()}); y has new labels {unseen.tolist()}. "
                    f"Refit with warm_start=False to learn new classes."
                )
            classes = self.classes_
        else:
            classes = np.unique(y)
        y_encoded = np.searchsorted(classes, y)
        validation_fraction = self._validation_fraction()
        _check_validation_split(y_encoded, len(classes), validation_fraction)
        train_images = self._augmented(images)
        dataset = _dataset(train_images, torch.from_numpy(y_encoded), _loss_weights(sample_weight))
        with seeded(seed, device):
            # A warm start goes on training the fitted network, under the current
            # training parameters (a new optimizer and schedule; history_ grows).
            chosen = (
                self._fitted_network()
                if continuing
                else self._new_network(spec, sample, device, len(classes))
            )
            network, history = chosen.network, chosen.history
            module, dataset = self._trained_module(chosen, train_images, dataset, device)
            checkpoint = None if continuing else self._checkpoint_to_resume(classes)
            n_train = len(y) - (
                math.ceil(validation_fraction * len(y)) if validation_fraction else 0
            )
            plan = self._training_plan(
                classes,
                sample,
                train_images,
                chosen,
                device=device,
                validation_fraction=validation_fraction,
                seed=seed,
                class_weights=self._class_weights(classes, y),
                steps_per_epoch=n_batches(n_train, self.batch_size, drop_singleton=True),
                first_epoch=len(checkpoint["history"]) if checkpoint else 0,
            )
            done = len(history or ())
            if plan.unfreeze_after is not None and plan.unfreeze_after >= done + self.max_epochs:
                warnings.warn(
                    f'finetune="gradual" with freeze_epochs={self.freeze_epochs}: the '
                    f"backbone stays frozen for this whole fit of max_epochs="
                    f"{self.max_epochs} (epochs {done + 1} to {done + self.max_epochs} of "
                    f"history_); it unfreezes after epoch {plan.unfreeze_after}. Set "
                    f"max_epochs above {plan.unfreeze_after - done} or lower freeze_epochs "
                    f'(counted from the first fit), or use finetune="head", which also '
                    f"computes frozen features only once.",
                    UserWarning,
                    stacklevel=3,
                )
            net = build_net(module, plan)
            # Fitted attributes are set once training has finished (or stopped with
            # weights worth keeping), never half-way.
            fitted = self._network_attributes(classes, spec, sample, chosen)
            if history is not None:
                self._continue_fitted(net, history)
                self._train(net, dataset, y_encoded, fitted=fitted, network=network, partial=True)
            elif checkpoint is not None:
                self._restore(net, checkpoint)
                remaining = self.max_epochs - len(net.history)
                if remaining > 0:
                    self._train(
                        net, dataset, y_encoded, fitted=fitted, network=network, epochs=remaining
                    )
                else:  # every epoch ran: only what follows the last one is left
                    dict(net.callbacks_)["precise_bn"].on_train_end(net, X=dataset, y=y_encoded)
                    self._set_fitted(net, fitted, network)
            else:
                self._train(net, dataset, y_encoded, fitted=fitted, network=network)
        return self

    @available_if(_can_partial_fit)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train on one batch of images: a single pass over ``X``, then return.

        For data that arrives in parts, or that you stream yourself (as with
        scikit-learn's ``SGDClassifier`` or ``MLPClassifier``, or dask-ml's
        ``Incremental``). The first call builds the network; each call trains it for
        one epoch over ``X`` and adds a row to ``history_``, with the optimizer's state
        kept between calls (with ``gradient_accumulation_steps``, groups of batches
        do not span calls: each call steps after its last batch, and warns when it
        holds fewer batches than a group). The learning rate stays at ``lr`` (a
        schedule needs the number of calls, which only you know; call ``fit`` for
        one), and all of ``X``
        trains: ``validation_fraction``, ``early_stopping`` and the recomputation of
        BatchNorm statistics apply to ``fit`` only. Training parameters changed with
        ``set_params`` between calls apply from the next call, with a new optimizer
        state (as after unpickling). Each call draws new shuffling and augmentation,
        also with an int ``random_state`` (seeded by the call's number, so a series
        of calls repeats).

        After ``fit``, ``partial_fit`` goes on training the fitted network, as after
        a first ``partial_fit``. With a scikit-learn ``head``, available when the head
        has ``partial_fit`` (e.g. ``SGDClassifier``): the frozen features of ``X`` are
        computed and the head's ``partial_fit`` is called on them.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages
            Images, as for :meth:`fit`; after the first call, of the same size and
            channels.
        y : array-like of shape (n_samples,)
            Their labels, all among ``classes``; one class per call is fine.
        classes : array-like of shape (n_classes,) or None, default=None
            Every label that ``y`` will hold over all the calls. Required on the first
            call (unless the classifier was fitted); later, ``None`` or the same.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each image, as for :meth:`fit` (with a neural head, scaled to a
            mean of 1 within each call).

        Returns
        -------
        self : ImageClassifier
            The classifier, trained a little more.

        Raises
        ------
        ImageInputError
            For unusable images or labels, before any training starts.
        ValueError
            When ``classes`` is missing from the first call or differs from the first
            call's, or when what defines the network (``backbone``, ``head``, ...)
            changed since it was fitted.
        """
        images = as_images(X, image_shape=self.image_shape)
        y = check_labels(y, len(images), min_classes=1)
        sample_weight = check_sample_weight(sample_weight, len(images))
        first = not hasattr(self, "classes_")
        classes = self._partial_fit_classes(classes, y, first)
        self._check_params()
        if isinstance(self.class_weight, str):  # "balanced"
            raise ValueError(
                "class_weight='balanced' needs every label at once, which partial_fit "
                "does not see. Compute the weights on all the labels and pass them as a "
                "dict: dict(zip(classes, sklearn.utils.class_weight.compute_class_weight("
                "'balanced', classes=classes, y=y_all)))."
            )
        device = self._device()
        spec = resolve_backbone(self.backbone)
        sample = sample_images(images)
        if not first:
            self._check_continuing(sample, "partial_fit")
            if hasattr(self, "pixel_range_"):
                check_same_range(sample, self.pixel_range_, type(self).__name__)
        # A new seed per call (the number of calls so far added to random_state's), so
        # each call shuffles and augments afresh, and a series of calls repeats.
        seed = seed_from_random_state(self.random_state)
        calls = len(getattr(self, "history_", ()))
        seed = (seed + 1_000_003 * calls) % 2**32
        if self.head is not None or spec.kind == "classical":
            self._check_tta(spec)
            with seeded(seed, device):
                self._partial_fit_features(
                    spec, images, sample, y, classes, sample_weight, device, seed, first
                )
            return self
        self._warn_unused_mix_alpha()
        if len(images) < 2:
            raise ImageInputError(
                "partial_fit got 1 image; a neural head trains on at least 2 per call "
                "(BatchNorm cannot train on one). Pass a larger batch of images."
            )
        steps = self.gradient_accumulation_steps
        batches = n_batches(len(images), self.batch_size, drop_singleton=True)
        if batches < steps:
            warnings.warn(
                f"gradient_accumulation_steps={steps}, but this partial_fit call holds "
                f"{batches} batch{'es' if batches > 1 else ''} of batch_size="
                f"{self.batch_size}: groups do not span calls, so the call steps once, on "
                f"{len(images)} images. Pass {steps * self.batch_size} images per call "
                f"to step on groups of {steps} batches.",
                UserWarning,
                stacklevel=3,  # the caller of partial_fit
            )
        y_encoded = np.searchsorted(classes, y)
        train_images = self._augmented(images)
        dataset = _dataset(train_images, torch.from_numpy(y_encoded), _loss_weights(sample_weight))
        with seeded(seed, device):
            net = getattr(self, "net_", None)
            if net is not None and net.incremental == self._incremental_settings():
                # Later calls: the same net, optimizer state included.
                # Workers suited to this call's input (skorch reads iterator settings
                # from the net's attributes; its set_params would re-initialise).
                net.iterator_train__num_workers = default_num_workers(
                    train_images, self.num_workers
                )
                self._train(net, dataset, y_encoded, epochs=1)
                return self
            # Fitted by fit, or training settings changed since the last call: the
            # network, in a new net for single passes (a new optimizer).
            chosen = (
                self._fitted_network()
                if net is not None
                else self._new_network(spec, sample, device, len(classes))
            )
            network, history = chosen.network, chosen.history
            plan = self._training_plan(
                classes,
                sample,
                train_images,
                chosen,
                device=device,
                validation_fraction=None,
                seed=seed,
                # A dict needs no y ("balanced", which does, is refused above).
                class_weights=self._class_weights(classes, classes),
            )
            plan = dataclasses.replace(
                plan,
                lr_schedule="constant",
                max_epochs=1,
                early_stopping=False,
                checkpoint_tag=_PARTIAL_FIT_TAG + plan.checkpoint_tag,
            )
            net = build_net(network, plan)
            # What it was built with: set_params changing these builds a new one.
            net.incremental = self._incremental_settings()
            if history is not None:
                self._continue_fitted(net, history)
            fitted = self._network_attributes(classes, spec, sample, chosen)
            self._train(net, dataset, y_encoded, fitted=fitted, network=network, epochs=1)
        return self

    def _continue_fitted(self, net, history) -> None:
        """Make a new net go on from the fitted one (a warm start, or partial_fit after
        fit or set_params): its history, and its weight average when both keep one."""
        net.initialize()
        net.history = History(list(history))
        previous, average = weight_average(self.net_), weight_average(net)
        if previous is not None and average is not None:
            average.carry_over(net, previous)

    def _incremental_settings(self) -> dict[str, str]:
        """The parameters a partial_fit net is built with (as reprs). Those it ignores
        (the schedule, the validation split, early stopping) are left out."""
        return {name: repr(getattr(self, name)) for name in _INCREMENTAL_PARAMS}

    def _fitted_network(self) -> _Network:
        """The fitted network, to train on (warm start, partial_fit), its backbone frozen
        as ``finetune_`` and the epochs so far say (sklimg.load rebuilds it unfrozen)."""
        frozen = self.finetune_ == "head" or (
            self.finetune_ == "gradual" and len(self.history_) < self.freeze_epochs
        )
        return _Network(
            network=self.net_.module_.freeze_backbone(frozen),
            input_size=self.input_size_,
            uses_weights=self.pretrained or self.weights is not None,
            finetune=self.finetune_,
            history=self.history_,
        )

    def _partial_fit_classes(self, classes, y: np.ndarray, first: bool) -> np.ndarray:
        """The classes of a partial_fit call, checked against ``y`` and earlier calls."""
        if first and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit: every label y "
                "will hold over all the calls, e.g. partial_fit(X, y, classes=np.unique("
                "y_all))."
            )
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(
                    f"classes must hold every label of the problem, at least 2; got "
                    f"{classes.tolist()}."
                )
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes.tolist()} differs from the classes of the first "
                    f"call ({self.classes_.tolist()}); pass the same classes, or None. Call "
                    f"fit to train on other classes."
                )
        else:
            classes = self.classes_
        unseen = np.setdiff1d(np.unique(y), classes)
        if len(unseen):
            raise ImageInputError(
                f"y has labels that are not among the classes {classes.tolist()}: "
                f"{unseen.tolist()}. Pass every label y will hold, over all the calls, as "
                f"classes on the first call."
            )
        return classes

    def _partial_fit_features(
        self, spec, images, sample, y, classes, sample_weight, device, seed, first
    ) -> None:
        """partial_fit with a scikit-learn head: its partial_fit on the frozen features."""
        self._check_head()
        if first:
            extractor = self._feature_extractor(spec, images, sample, device, seed)
            head = clone(self.head)
        else:
            extractor, head = self.feature_extractor_, self.head_
        fit_params = {}
        if sample_weight is not None:
            if not takes_keyword(head.partial_fit, "sample_weight"):
                raise ValueError(
                    f"sample_weight needs a head whose partial_fit takes sample_weight; "
                    f"{head!r} does not. Use a head that does (e.g. SGDClassifier()), or "
                    f"head=None for a neural head."
                )
            fit_params["sample_weight"] = sample_weight
        head.partial_fit(
            self._training_features(extractor, images), y, classes=classes, **fit_params
        )
        if first:
            self._set_fitted(None, self._head_attributes(classes, spec, sample, extractor, head))

    def _new_network(self, spec: BackboneSpec, sample, device: str, n_classes: int) -> _Network:
        """A new network for ``spec`` and what follows from it, the backbone frozen where
        ``finetune`` says."""
        built = build_backbone(
            spec,
            sample,
            pretrained=self.pretrained,
            weights=self.weights,
            backbone_kwargs=self.backbone_kwargs,
            input_size=self.input_size,
        )
        network = built.network(n_classes)
        finetune = self.finetune
        if finetune == "auto":
            finetune = "head" if built.pretrained else "full"
        # LBFGS flattens gradients with .view(), which channels-last tensors refuse.
        if device == "cpu" and spec.channels_last and self.optimizer is not torch.optim.LBFGS:
            network.use_channels_last()
        if finetune in ("head", "gradual"):
            network.freeze_backbone()
        if finetune == "gradual" and getattr(self.accelerator, "num_processes", 1) > 1:
            raise ValueError(
                f'finetune="gradual" cannot run on {self.accelerator.num_processes} '
                f"processes: parameters unfrozen after DistributedDataParallel wraps "
                f'the network would not be synchronised. Use finetune="full" (with '
                f'backbone_lr_scale) or finetune="head", or train in one process.'
            )
        return _Network(network, built.input_size, built.pretrained, finetune, history=None)

    def _training_plan(
        self,
        classes: np.ndarray,
        sample: np.ndarray,
        train_images,
        chosen: _Network,
        *,
        device: str,
        validation_fraction: float | None,
        seed: int,
        class_weights: np.ndarray | None,
        steps_per_epoch: int = 1,
        first_epoch: int = 0,
    ) -> TrainingPlan:
        """How the skorch net trains, from the parameters and what fit resolved."""
        finetune, history = chosen.finetune, chosen.history
        scale = self.backbone_lr_scale
        if scale is None:
            scale = 0.1 if chosen.uses_weights else 1.0
        height, width, channels = sample.shape[1:]
        return TrainingPlan(
            n_classes=len(classes),
            device=device,
            lr=self.lr,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            predict_batch_size=self._predict_batch_size(chosen.input_size),
            class_weights=class_weights,
            label_smoothing=self.label_smoothing,
            ema_decay=self.ema_decay,
            mix=self.mix,
            mix_alpha=self.mix_alpha,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            gradient_clip=self.gradient_clip,
            validation_fraction=validation_fraction,
            early_stopping=self.early_stopping,
            patience=self.patience,
            seed=seed,
            verbose=self.verbose,
            num_workers=default_num_workers(train_images, self.num_workers),
            expected_shape=(channels, height, width),
            backbone_lr_scale=scale if finetune in ("full", "gradual") else 1.0,
            # Counted in epochs of history_, from the first fit.
            unfreeze_after=(
                max(self.freeze_epochs, len(history or ())) if finetune == "gradual" else None
            ),
            steps_per_epoch=steps_per_epoch,
            first_epoch=first_epoch,
            amp=self.amp,
            compile=self.compile,
            accelerator=self.accelerator,
            checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            checkpoint_tag=self._config_digest(classes),
            callbacks=list(self.callbacks or []),
        )

    def _trained_module(self, chosen: _Network, train_images, dataset, device: str):
        """What the skorch net trains, and on what: the network on the images, or, with
        a frozen backbone and no augmentation or mixing, its head on features computed
        once (and cached with ``memory``) and reused every epoch."""
        network = chosen.network
        random = getattr(train_images, "random", False) or self.mix is not None
        if chosen.finetune != "head" or random:
            return network, dataset
        features = extract_features(
            network.feature_extractor(),
            train_images,
            batch_size=self._predict_batch_size(chosen.input_size),
            device=device,
            num_workers=self.num_workers,
            memory=self.memory,
        )
        dataset = ImageTensorDataset(torch.from_numpy(features), dataset.y, dataset.weight)
        return HeadOnly(network), dataset

    def _network_attributes(self, classes, spec, sample, chosen: _Network) -> dict:
        height, width, channels = sample.shape[1:]
        return dict(
            classes_=classes,
            n_classes_=len(classes),
            backbone_spec_=spec,
            input_shape_=(int(height), int(width), int(channels)),
            pixel_range_=pixel_range(sample),
            input_size_=chosen.input_size,
            finetune_=chosen.finetune,
        )

    def _config_digest(self, classes: np.ndarray) -> str:
        """A digest of what shapes the trained model (its parameters and classes), to
        refuse resuming another one."""
        ignored = {
            "max_epochs",
            "warm_start",
            "verbose",
            "checkpoint_dir",
            "num_workers",
            "device",
            "accelerator",
            "callbacks",
            "tta",
        }
        params = {
            k: v
            for k, v in self.get_params(deep=False).items()
            if k not in ignored
            and not (k in _PARAMS_SINCE_CHECKPOINTS and v == _PARAMS_SINCE_CHECKPOINTS[k])
        }
        return joblib.hash(repr((sorted(params.items()), classes.tolist())))

    def _checkpoint_to_resume(self, classes: np.ndarray) -> dict | None:
        """With warm_start and a checkpoint_dir holding a checkpoint, the run to resume."""
        if not (self.warm_start and self.checkpoint_dir is not None):
            return None
        checkpoint = load_checkpoint(self.checkpoint_dir)
        if checkpoint is not None and checkpoint["tag"].startswith(_PARTIAL_FIT_TAG):
            raise ValueError(
                f"The checkpoint in {str(self.checkpoint_dir)!r} was written by partial_fit, "
                f"which trains at a constant rate, call by call: fit cannot resume it with "
                f"its own schedule. Continue with partial_fit, or use another checkpoint_dir."
            )
        if checkpoint is not None and checkpoint["tag"] != self._config_digest(classes):
            raise ValueError(
                f"The checkpoint in {str(self.checkpoint_dir)!r} was written by a classifier "
                f"with other parameters or classes; resume with the same parameters (only "
                f"max_epochs, verbose, device, num_workers and callbacks may change) and "
                f"labels, or use another checkpoint_dir."
            )
        return checkpoint

    def _restore(self, net, checkpoint: dict) -> None:
        net.initialize()
        net.module_.load_state_dict(checkpoint["module"])
        net.optimizer_.load_state_dict(checkpoint["optimizer"])
        net.history = History(checkpoint["history"])
        average = weight_average(net)
        if average is not None:
            average.restore(net, checkpoint["average"])

    def _predict_batch_size(self, input_size) -> int:
        # Large batches predict faster; bounded to 2**20 input pixels per batch.
        return max(self.batch_size, min(1024, 2**20 // math.prod(input_size)))

    def _fit_features(self, spec, images, sample, y, sample_weight, device, seed) -> None:
        """Frozen features computed once, then a scikit-learn head fitted on them."""
        self._check_head()
        classes = np.unique(y)
        self._class_weights(classes, y)  # the neural route's checks, for the default head
        head = clone(self.head) if self.head is not None else default_head()
        fit_params = _head_fit_params(head, sample_weight)
        extractor = self._feature_extractor(spec, images, sample, device, seed)
        if self.head is None:
            head.set_params(logisticregression__class_weight=self.class_weight)
        head.fit(self._training_features(extractor, images), y, **fit_params)
        self._set_fitted(None, self._head_attributes(classes, spec, sample, extractor, head))

    def _check_head(self) -> None:
        """What a scikit-learn head cannot do, refused before any feature is computed."""
        if self.augment is not None:
            raise ValueError(
                "augment needs a neural head, which sees new augmented images every epoch; "
                "a scikit-learn head is fitted once on fixed features. Use head=None, or "
                "drop augment."
            )
        if self.ema_decay is not None:
            raise ValueError(
                f"ema_decay={self.ema_decay} averages the weights of a network as it "
                f"trains; a scikit-learn head is fitted once, with no steps to average. "
                f"Use head=None, or ema_decay=None."
            )
        if self.mix is not None:
            raise ValueError(
                f"mix={self.mix!r} blends images and labels in the batches a neural head "
                f"trains on; a scikit-learn head is fitted once on each image's features. "
                f"Use head=None, or mix=None."
            )
        if self.gradient_accumulation_steps != 1:
            raise ValueError(
                f"gradient_accumulation_steps={self.gradient_accumulation_steps} sums the "
                f"gradients of a neural head's batches; a scikit-learn head is fitted "
                f"once, without gradient steps. Use head=None, or "
                f"gradient_accumulation_steps=1."
            )
        if self.head is not None and not is_classifier(self.head):
            raise ValueError(
                f"head must be a scikit-learn classifier; got {self.head!r}. Use e.g. "
                f"LogisticRegression() or SVC(), or head=None for a neural head."
            )
        if self.head is not None and self.class_weight is not None:
            raise ValueError(
                "class_weight weighs the loss of a neural head or of the default "
                "scikit-learn head; your head has its own. Set it there, e.g. "
                "head=LogisticRegression(class_weight='balanced'), and class_weight=None."
            )

    def _feature_extractor(self, spec: BackboneSpec, images, sample, device: str, seed: int):
        """The frozen extractor a scikit-learn head is fitted on, built for ``images``."""
        if spec.kind == "classical":
            extractor = spec.build(in_chans=sample.shape[-1], **(self.backbone_kwargs or {}))
            return extractor.fit(images[:1])
        return DeepFeatures(
            spec,
            pretrained=self.pretrained,
            weights=self.weights,
            backbone_kwargs=self.backbone_kwargs,
            input_size=self.input_size,
            batch_size=self.batch_size,
            device=device,
            memory=self.memory,
            num_workers=self.num_workers,
            random_state=seed,
        ).fit(images)

    def _training_features(self, extractor, images) -> np.ndarray:
        """Single-view features to fit a head on (``tta`` applies at prediction only)."""
        if isinstance(extractor, DeepFeatures):
            return extractor._transform(images, tta=None)
        return cached_transform(extractor, images, self.memory)

    def _head_attributes(self, classes, spec, sample, extractor, head) -> dict:
        return dict(
            classes_=classes,
            n_classes_=len(classes),
            backbone_spec_=spec,
            input_shape_=tuple(int(s) for s in sample.shape[1:]),
            pixel_range_=pixel_range(sample),
            feature_extractor_=extractor,
            head_=head,
        )

    def _train(
        self, net, dataset, y_encoded, *, partial=False, fitted=None, network=None, epochs=None
    ) -> None:
        """Run skorch; keep what was learned if training stops part-way."""
        try:
            if partial or epochs is not None:
                net.partial_fit(dataset, y_encoded, epochs=epochs)
            else:
                net.fit(dataset, y_encoded)
        except TrainingDivergedError:
            self._set_fitted(net, fitted, network)  # with the last good weights
            raise
        except ImageInputError as exc:
            done = sum(1 for row in net.history if "train_loss" in row)
            if not done:
                raise
            self._set_fitted(net, fitted, network)
            raise ImageInputError(
                f"{exc}\nTraining stopped after {done} complete epoch(s); the classifier "
                f"keeps the weights learned so far. Fix or remove the image, then call fit "
                f"with warm_start=True to continue."
            ) from exc
        self._set_fitted(net, fitted, network)
        if net.interrupted_:
            done = sum(1 for row in net.history if "train_loss" in row)
            warnings.warn(
                f"Training was interrupted after {done} complete epoch(s); the classifier "
                f"keeps the best weights so far and predicts with them. Call fit with "
                f"warm_start=True to continue.",
                TrainingInterruptedWarning,
                stacklevel=3,
            )

    def _set_fitted(self, net, fitted: dict | None, network=None) -> None:
        if fitted is not None:  # a new fit: forget the other route's state
            for name in (
                "net_", "history_", "feature_extractor_", "head_", "input_size_", "finetune_",
            ):  # fmt: skip
                self.__dict__.pop(name, None)
            for name, value in fitted.items():
                setattr(self, name, value)
            self._network_params_at_fit = self._model_params()
        if net is None:
            return
        if network is not None and net.module_ is not network:
            # The head was trained on cached features through a HeadOnly view: install
            # the whole network, which predicts from images.
            net.module = net.module_ = network
        self.net_ = net
        self.history_ = net.history

    def _augmented(self, images):
        if self.augment is None:
            return images
        augment = self.augment if isinstance(self.augment, Augment) else Augment(self.augment)
        return augment.fit_transform(images)

    def _check_params(self) -> None:
        check_image_shape_param(self.image_shape)
        if isinstance(self.input_size, bool) or (
            isinstance(self.input_size, (tuple, list))
            and (
                len(self.input_size) != 2
                or not all(
                    isinstance(s, Integral) and not isinstance(s, bool) and s > 0
                    for s in self.input_size
                )
            )
        ):
            raise ValueError(
                f"input_size must be 'auto', an int or (height, width) with positive ints; "
                f"got {self.input_size!r}."
            )
        if self.accelerator is not None:
            if self.amp:
                raise ValueError(
                    "amp=True and an accelerator: mixed precision is the accelerator's, "
                    "e.g. Accelerator(mixed_precision='bf16'); set amp=False."
                )
            if self.device != "auto":
                raise ValueError(
                    f"device={self.device!r} and an accelerator: the accelerator places the "
                    f"network (Accelerator(cpu=True) for the CPU); leave device='auto'."
                )
        elif self.amp and not resolve_device(self.device).startswith("cuda"):
            raise ValueError(
                "amp=True needs a CUDA device (mixed precision on the CPU is slower); set "
                "amp=False, or device='cuda' on a machine with a GPU."
            )
        if isinstance(self.optimizer, type) and not issubclass(
            self.optimizer, torch.optim.Optimizer
        ):
            raise TypeError(
                f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer "
                f"subclass; got {self.optimizer!r}."
            )
        if (
            isinstance(self.optimizer, type)
            and self.weight_decay
            and not takes_keyword(self.optimizer, "weight_decay")
        ):
            raise ValueError(
                f"{self.optimizer.__name__} has no weight_decay; set weight_decay=0 to use it."
            )
        self._check_accumulation()
        check_callbacks(self.callbacks)
        resolve_memory(self.memory)  # a file where a folder should be
        if self.checkpoint_dir is not None:
            # Checked, not created: the training guard creates it when it first writes.
            folder = Path(self.checkpoint_dir).absolute()
            existing = next(p for p in (folder, *folder.parents) if p.exists())
            if not existing.is_dir():
                raise ValueError(
                    f"checkpoint_dir={str(self.checkpoint_dir)!r} cannot be a folder: "
                    f"{str(existing)!r} is a file. Pass a folder you can write to."
                )
            if not os.access(existing, os.W_OK):
                raise ValueError(
                    f"checkpoint_dir={str(self.checkpoint_dir)!r} is not writable (in "
                    f"{str(existing)!r}); pass a folder you can write to."
                )

    def _check_accumulation(self) -> None:
        """What gradient accumulation cannot combine with, refused before training."""
        steps = self.gradient_accumulation_steps
        if steps == 1:
            return
        if self.accelerator is not None:
            raise ValueError(
                f"gradient_accumulation_steps={steps} and an accelerator: accumulation is "
                f"the accelerator's, e.g. Accelerator(gradient_accumulation_steps={steps}); "
                f"leave gradient_accumulation_steps=1."
            )
        if isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.LBFGS):
            raise ValueError(
                f"gradient_accumulation_steps={steps} and LBFGS: LBFGS evaluates the loss of "
                f"one batch several times per step, so it cannot sum the gradients of "
                f"several. Use another optimizer, or gradient_accumulation_steps=1."
            )

    def _warn_unused_mix_alpha(self) -> None:
        """Say so when mix_alpha is set without mix (for a neural head, which mixes):
        as scikit-learn's LogisticRegression warns of an l1_ratio without
        penalty="elasticnet"; in timm, a mixup_alpha alone turns MixUp on."""
        if self.mix_alpha is not None and self.mix is None:
            warnings.warn(
                f"mix_alpha={self.mix_alpha} has no effect without mix; set mix='mixup', "
                f"'cutmix' or 'mixup_cutmix' to train on mixed images.",
                UserWarning,
                stacklevel=4,  # the caller of fit or partial_fit
            )

    def _check_tta(self, spec: BackboneSpec) -> None:
        """``tta`` is read at prediction too (set_params after fit): check it there."""
        check_tta(self.tta)
        if self.tta is not None and spec.kind == "classical":
            raise ValueError(
                f"tta={self.tta!r} averages a network's outputs over views of each image; "
                f"the classical backbone {spec.name!r} has no network. Use a deep backbone "
                f"(e.g. 'cnn_small', or 'resnet18' with pretrained=True), or tta=None."
            )

    def _device(self) -> str:
        """Where this fit computes: the accelerator's device, or ``device`` resolved."""
        if self.accelerator is not None:
            return str(self.accelerator.device)
        return resolve_device(self.device)

    def _validation_fraction(self) -> float | None:
        if self.validation_fraction is None and self.early_stopping:
            return 0.1
        return self.validation_fraction

    def _model_params(self) -> dict[str, str]:
        """The parameters that define the network (as reprs), which a warm start keeps."""
        return {name: repr(getattr(self, name)) for name in _NETWORK_PARAMS}

    def _check_continuing(self, sample: np.ndarray, how: str) -> None:
        """Before training the fitted model on (a warm start, partial_fit): what defines
        the network is unchanged, and the images have the size seen at fit."""
        at_fit = getattr(self, "_network_params_at_fit", None)
        if at_fit is not None:
            now = self._model_params()
            changed = [
                f"{k}: {at_fit[k]} -> {now[k]}" for k in _NETWORK_PARAMS if now[k] != at_fit[k]
            ]
            if changed:
                fresh = "Set warm_start=False" if how.startswith("warm_start") else "Call fit"
                raise ValueError(
                    f"{how} goes on training the fitted network, but what defines it "
                    f"changed since it was fitted ({'; '.join(changed)}). {fresh} to "
                    f"train a new network. (Training parameters such as max_epochs, lr or "
                    f"batch_size may change.)"
                )
        check_same_shape(sample, self.input_shape_, type(self).__name__)

    def _class_weights(self, classes: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            known = set(classes.tolist())
            unknown = [k for k in self.class_weight if k not in known]
            if unknown:
                raise ImageInputError(
                    f"class_weight names labels that are not in y: {unknown!r}. Its keys "
                    f"must be labels of y, of the same type: {classes.tolist()}."
                )
            bad = {
                k: w
                for k, w in self.class_weight.items()
                if isinstance(w, bool) or not isinstance(w, Real) or not np.isfinite(w) or w < 0
            }
            if bad:
                raise ImageInputError(
                    f"class_weight must map labels to finite, non-negative numbers; got {bad!r}."
                )
        try:
            return compute_class_weight(self.class_weight, classes=classes, y=y)
        except ValueError as exc:
            raise ImageInputError(
                f"Invalid class_weight: {exc} Use 'balanced' or a dict mapping labels in "
                f"{classes.tolist()} to weights."
            ) from exc

    # ------------------------------------------------------------- predict
    def _images(self, X):
        """Validated images for prediction, of the size and channels seen at fit (and
        ``tta``, which may have been set after fit)."""
        check_is_fitted(self)
        self._check_tta(self.backbone_spec_)
        images = as_images(X, image_shape=self.image_shape)
        sample = sample_images(images, 1)
        check_same_shape(sample, self.input_shape_, type(self).__name__)
        if hasattr(self, "pixel_range_"):  # absent from models fitted before it was kept
            check_same_range(sample, self.pixel_range_, type(self).__name__)
        return images

    def _features(self, images) -> np.ndarray:
        if isinstance(self.feature_extractor_, DeepFeatures):
            # The head was fitted on single-view features; tta applies at prediction.
            return self.feature_extractor_._transform(images, tta=self.tta)
        return cached_transform(self.feature_extractor_, images, self.memory)

    @available_if(_head_has("predict_proba"))
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
            Probabilities, columns ordered as ``classes_``; rows sum to 1.

        Raises
        ------
        AttributeError
            If a scikit-learn ``head`` has no ``predict_proba`` (e.g. ``SVC()`` without
            ``probability=True``); ``hasattr(clf, "predict_proba")`` is then false, as
            for a scikit-learn ``Pipeline``.
        """
        images = self._images(X)
        if hasattr(self, "head_"):
            return self.head_.predict_proba(self._features(images)).astype(np.float64)
        # For this call: tta, and workers suited to this input (a model fitted on arrays
        # may be given files to decode).
        net = self.net_.predicting_with(
            tta=self.tta,
            iterator_valid__num_workers=default_num_workers(images, self.num_workers),
        )
        proba = net.predict_proba(_dataset(images))
        # float32 softmax rows sum to 1 within ~1e-7; scikit-learn's log_loss checks
        # 1.5e-8, so renormalise in float64.
        proba = np.asarray(proba, dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    @available_if(_head_has("predict_proba"))
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

    @available_if(_head_has("decision_function"))
    def decision_function(self, X) -> np.ndarray:
        """The scikit-learn head's decision function on the features of images ``X``.

        Only with a scikit-learn ``head`` that has one (the default head of classical
        backbones does); a neural head gives :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            As the head's ``decision_function`` gives them.
        """
        images = self._images(X)
        return self.head_.decision_function(self._features(images))

    def predict(self, X) -> np.ndarray:
        """Predicted class label of each image in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        if hasattr(self, "head_"):
            images = self._images(X)
            return np.asarray(self.head_.predict(self._features(images)))
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def transform(self, X) -> np.ndarray:
        """The features the head sees for each image in ``X``: what the model learned.

        With a neural head, the trained backbone's pooled output (the input of the
        final linear layer, timm's "pre-logits"); with a scikit-learn head, the frozen
        features it was fitted on (deep features, or HOG, LBP, ... for classical
        backbones). Use them as embeddings (``TSNE``, nearest neighbours), or to fit
        another scikit-learn model on what the network learned: in a ``Pipeline``, a
        classifier followed by another step is fitted and then transforms, as
        ``LinearDiscriminantAnalysis`` does. The features are those of the images as
        they are: the random operations of an ``Augment`` step before it (the view
        a pipeline passes on at fit) are dropped, as at prediction. With ``tta``, each
        image's features are averaged over its views. With ``amp=True`` they are
        computed in float32, where prediction runs in bfloat16: they match the head's
        input to bfloat16 rounding. ``set_output(transform="pandas")`` gives a
        DataFrame with the columns of :meth:`get_feature_names_out`.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages
            Images of the same size and channels as at fit.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features)
            One row per image, float32 for deep backbones.
        """
        images = self._images(X)
        if isinstance(images, LazyImages):
            images = images.without_random()
        if hasattr(self, "head_"):
            return np.asarray(self._features(images))
        return extract_features(
            bare_module(self.net_).feature_extractor(),
            images,
            batch_size=self._predict_batch_size(self.input_size_),
            device=str(net_device(self.net_)),
            num_workers=self.num_workers,
            tta=self.tta,
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the columns of :meth:`transform`.

        Parameters
        ----------
        input_features : None
            Ignored: images have no feature names.

        Returns
        -------
        names : ndarray of str
            With a scikit-learn head, its feature extractor's (e.g. ``hog0``, ...,
            ``deepfeatures0``, ...); with a neural head, ``imageclassifier0``,
            ``imageclassifier1``, ...
        """
        check_is_fitted(self)
        if hasattr(self, "feature_extractor_"):
            return np.asarray(self.feature_extractor_.get_feature_names_out(), dtype=object)
        n_features = bare_module(self.net_).head.in_features
        return np.asarray([f"imageclassifier{i}" for i in range(n_features)], dtype=object)

    def __getstate__(self):
        # scikit-learn stamps its version; stamp sklimg's and torch's too, so a model
        # loaded elsewhere can say when it was saved by other versions. A copy:
        # object.__getstate__ returns the instance's own __dict__.
        state = dict(super().__getstate__())
        if hasattr(self, "classes_"):
            state["_sklimg_versions"] = _versions()
        # An Accelerator holds process-group state and patched optimizers, which do not
        # pickle; a loaded model predicts without one (set it again to train on).
        state["accelerator"] = None
        return state

    def __setstate__(self, state):
        saved = state.pop("_sklimg_versions", None)
        super().__setstate__(state)
        if saved is not None and saved != _versions():
            differ = ", ".join(
                f"{name} {saved.get(name)} (now {version})"
                for name, version in _versions().items()
                if saved.get(name) != version
            )
            warnings.warn(
                f"This {type(self).__name__} was saved with {differ}. It may load or "
                f"predict differently; refit it, or install the versions it was saved with.",
                VersionMismatchWarning,
                stacklevel=2,
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Images, not feature tables: scikit-learn's 2-D checks do not apply (see
        # sklimg.utils.estimator_checks for the image-aware suite).
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.classifier_tags.multi_label = False
        return tags


def _versions() -> dict[str, str]:
    import sklimg

    return {"sklimg": sklimg.__version__, "torch": torch.__version__.split("+")[0]}


def default_head():
    """The scikit-learn head used when none is given: standardised logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _loss_weights(sample_weight: np.ndarray | None) -> torch.Tensor | None:
    """Weights per image for a neural head's loss: scaled to a mean of 1, so only their
    ratios matter (equal weights are the unweighted loss)."""
    if sample_weight is None:
        return None
    scaled = sample_weight / sample_weight.max()  # no overflow in the mean of huge weights
    return torch.from_numpy((scaled / scaled.mean()).astype(np.float32))


def _head_fit_params(head, sample_weight: np.ndarray | None) -> dict:
    """``fit`` keywords giving ``sample_weight`` to a scikit-learn head: to the head,
    or to each step of a ``Pipeline`` head that takes it (with metadata routing on,
    through the steps' fit requests, set on this clone of the head). Raises when the
    head (a pipeline's last step) cannot take it."""
    if sample_weight is None:
        return {}
    steps = head.steps if isinstance(head, Pipeline) else [(None, head)]
    if not _takes_sample_weight(steps[-1][1]):
        raise ValueError(
            f"sample_weight needs a head whose fit takes sample_weight; {steps[-1][1]!r} "
            f"does not. Use a head that does (e.g. LogisticRegression(), SVC()), or "
            f"head=None for a neural head."
        )
    takers = [
        (name, step)
        for name, step in steps
        if step not in (None, "passthrough") and _takes_sample_weight(step)
    ]
    if isinstance(head, Pipeline) and get_config()["enable_metadata_routing"]:
        for _, step in takers:
            step.set_fit_request(sample_weight=True)
        return {"sample_weight": sample_weight}
    return {
        "sample_weight" if name is None else f"{name}__sample_weight": sample_weight
        for name, step in takers
    }


def _takes_sample_weight(estimator) -> bool:
    """Whether ``estimator.fit`` takes ``sample_weight``, named or through ``**params``
    (meta-estimators such as ``GridSearchCV`` pass it on)."""
    return has_fit_parameter(estimator, "sample_weight") or (
        not isinstance(estimator, Pipeline) and takes_keyword(estimator.fit, "sample_weight")
    )


def _dataset(images, y: torch.Tensor | None = None, weight: torch.Tensor | None = None):
    """The torch dataset for in-memory images (one tensor) or lazy ones (per item)."""
    if isinstance(images, LazyImages):
        return LazyImageDataset(images, y, weight)
    return ImageTensorDataset(images_to_tensor(images), y, weight)


def _check_validation_split(
    y_encoded: np.ndarray,
    n_classes: int,
    fraction,
    *,
    option: str = "validation_fraction=",
    without: str = "validation_fraction=None and early_stopping=False",
) -> None:
    """Fail before training when a stratified hold-out of ``fraction`` is impossible;
    ``option`` and ``without`` name the setting in the message (the CLI's flags)."""
    if not fraction:
        return
    n = len(y_encoded)
    n_valid = math.ceil(fraction * n)
    smallest = int(np.bincount(y_encoded, minlength=n_classes).min())
    if smallest < 2 or n_valid < n_classes or n - n_valid < n_classes:
        raise ImageInputError(
            f"Cannot hold out a stratified {option}{fraction} of {n} images in "
            f"{n_classes} classes (the smallest class has {smallest} images): each class "
            f"needs an image on both sides. Use more images, a larger "
            f"{option.rstrip('= ')}, or {without}."
        )
