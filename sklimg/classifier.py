"""ImageClassifier: a scikit-learn classifier over a deep image backbone, trained by skorch.

The estimator holds its parameters, their documentation, and the dispatch: each fit is
prepared once (:mod:`sklimg._fit.run`) and handed to its route, the neural head
(:mod:`sklimg._fit.neural`) or the scikit-learn head (:mod:`sklimg._fit.head`), which
returns what it fitted; :meth:`ImageClassifier._set_fitted` is the one place that sets
the fitted attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sklimg._fit import checks, head, neural, trust
from sklimg._fit.run import prepare, route_of
from sklimg._fit.state import FITTED_ATTRIBUTES, Fitted
from sklimg._lazy import LazyImages, sample_images
from sklimg._mix import MIX_POLICIES
from sklimg._training.net import bare_module
from sklimg._training.plan import OPTIMIZERS
from sklimg._trust import DETECTORS, scaled_proba
from sklimg._tta import TTA_POLICIES
from sklimg._version import versions
from sklimg._warnings import warn
from sklimg.backbones import BackboneSpec, resolve_backbone
from sklimg.exceptions import VersionMismatchWarning
from sklimg.preprocessing._augment import AUGMENT_POLICIES, Augment
from sklimg.utils._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from sklimg.utils.validation import as_images, check_same_range, check_same_shape

__all__ = ["ImageClassifier", "fitted_classifier"]


def _route(clf) -> str | None:
    """The route of a classifier (fitted or not), or None for a backbone ``fit``
    will refuse."""
    if hasattr(clf, "head_"):
        return "head"
    if hasattr(clf, "net_"):
        return "neural"
    try:
        return route_of(clf.head, resolve_backbone(clf.backbone))
    except (ValueError, TypeError):  # fit reports an unusable backbone
        return None


def _sklearn_head(clf):
    """The scikit-learn head of a classifier on that route: fitted, given, or the
    default one of a classical backbone."""
    estimator = getattr(clf, "head_", clf.head)
    return head.default_head() if estimator is None else estimator


def _head_has(method: str):
    """An ``available_if`` check: does the classifier's head offer ``method``? A neural
    head gives probabilities only; a scikit-learn head what it has (as ``Pipeline``
    offers its final step's methods)."""

    def check(clf) -> bool:
        if _route(clf) != "head":
            return method == "predict_proba"
        estimator = _sklearn_head(clf)
        if not hasattr(estimator, method):
            raise AttributeError(
                f"This ImageClassifier's head {estimator!r} has no {method}; use a head that "
                f"does, e.g. LogisticRegression() or SVC(probability=True)."
            )
        return True

    return check


def _can_partial_fit(clf) -> bool:
    """An ``available_if`` check: a neural head always trains in parts; a scikit-learn
    head only when it has ``partial_fit``; neither with calibration or an unknown
    answer, which are fitted on images a fit holds out."""
    for name in ("calibration", "unknown"):
        if getattr(clf, name) is not None:
            raise AttributeError(
                f"This ImageClassifier has no partial_fit with {name}={getattr(clf, name)!r}: "
                f"it is fitted on held-out images after a fit, and partial_fit holds none "
                f"out. Call fit, or set_params({name}=None) to train in parts."
            )
    if _route(clf) != "head":
        return True
    estimator = _sklearn_head(clf)
    if not hasattr(estimator, "partial_fit"):
        raise AttributeError(
            f"This ImageClassifier's head {estimator!r} has no partial_fit; use a head that "
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
    calibration : {"temperature"} or None, default=None
        Calibrate the probabilities after training: ``"temperature"`` fits one
        temperature ``T`` on the logits of held-out images (Guo et al. 2017), and
        :meth:`predict_proba` gives ``softmax(logits / T)``; :meth:`predict` is
        unchanged. The images held out are the ``validation_fraction`` (0.1 when it is
        ``None``), stratified, which the network or the scikit-learn head does not train
        on. With a scikit-learn head, its logits are its decision function (else its
        log-probabilities). See the user guide's "Trust" section for what it gains.
    unknown : {"auto", "knn", "mahalanobis", "energy", "msp"} or None, default=None
        Answer ``unknown_label`` for images unlike the training images. Each image gets
        a score (:meth:`unknown_score`, higher: less like the training images): the
        distance to the k-th nearest training feature after L2 normalisation
        (``"knn"``, Sun et al. 2022, over a stratified sample of at most 5,000 training
        images), the smallest class-conditional Mahalanobis distance with a shared
        Ledoit-Wolf covariance (``"mahalanobis"``, Lee et al. 2018), the energy
        ``-logsumexp(logits)`` (``"energy"``, Liu et al. 2020), or one minus the largest
        probability (``"msp"``, the baseline). ``"auto"``: what ``benchmarks/trust.py``
        measured best for the route: ``"knn"`` for a neural head (AUROC 0.996 to 1.000
        on Fashion-MNIST against digits, photographs and noise), ``"energy"`` for a
        scikit-learn head with a decision function (0.85 to 0.97 with HOG, where
        ``"knn"`` missed noise), else ``"knn"``. The threshold is
        set on held-out images, as for ``calibration``, so that a fraction
        ``unknown_rate`` of them is rejected. :meth:`predict_proba` keeps its columns.
    unknown_rate : float, default=0.05
        The fraction of held-out images of known classes that the unknown answer
        rejects: the price paid, on images like the training images, for catching
        others. In (0, 1).
    unknown_label : str, int, float or None, default=None
        What :meth:`predict` answers for unknown images. ``None``: ``"unknown"`` for
        string labels, ``-1`` for numbers. Must not be one of the classes.
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
        arrays held in memory, which are batched by slicing; and none, decoding in the
        fit's own process, where the fit runs beside others (in a loky, Dask or
        multiprocessing worker, or a thread).
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
    temperature_ : float
        The fitted temperature, with ``calibration="temperature"``.
    unknown_threshold_ : float
        Scores above it are answered ``unknown_label_``, with ``unknown``.
    unknown_label_ : str, int or float
        The resolved ``unknown_label``.
    unknown_detector_ : object
        What :meth:`unknown_score` scores with (the method's state), with ``unknown``.

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
        "calibration": [None, StrOptions({"temperature"})],
        "unknown": [None, StrOptions({"auto", *DETECTORS})],
        "unknown_rate": [Interval(Real, 0, 1, closed="neither")],
        "unknown_label": [None, str, Real],
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
        calibration=None,
        unknown=None,
        unknown_rate=0.05,
        unknown_label=None,
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
        self.calibration = calibration
        self.unknown = unknown
        self.unknown_rate = unknown_rate
        self.unknown_label = unknown_label
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
    def fit(self, X, y, sample_weight=None, groups=None):
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
        groups : array-like of shape (n_samples,) or None, default=None
            A group per image (a patient, a camera, a session, the source of
            near-duplicate images): the images a fit holds out (``validation_fraction``,
            early stopping, ``calibration`` and ``unknown``) are whole groups, so no
            group is on both sides, and validation scores images unlike those trained
            on. The hold-out is the first fold of scikit-learn's
            ``StratifiedGroupKFold`` into ``round(1 / validation_fraction)`` folds:
            about that fraction of the images, stratified as the groups allow, which
            needs at least that many groups. Unused when the fit holds nothing out.
            ``None``: a stratified hold-out of images, as without groups. In a
            ``Pipeline``, pass ``imageclassifier__groups=...``; through
            ``GridSearchCV`` or ``cross_validate``, turn metadata routing on and
            request them with ``set_fit_request(groups=True)`` (the splitter gets
            them too).

        Returns
        -------
        self : ImageClassifier
            The fitted classifier.

        Raises
        ------
        ImageInputError
            For unusable images, labels or groups, before any training starts.
        """
        prepared = prepare(self, X, y, sample_weight, groups=groups)
        if prepared.route == "head":
            head.fit(self, prepared, keep=self._set_fitted)
            return self
        continuing = self.warm_start and hasattr(self, "net_")
        if continuing:
            self._check_continuing(prepared.sample, "warm_start=True")
        neural.fit(self, prepared, continuing=continuing, keep=self._set_fitted)
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
        checks.check_partial_fit(self)
        fitted = getattr(self, "classes_", None)
        prepared = prepare(
            self, X, y, sample_weight, min_classes=1, call=len(getattr(self, "history_", ()))
        )
        classes = checks.partial_fit_classes(classes, prepared.y, fitted)
        if fitted is not None:
            self._check_continuing(prepared.sample, "partial_fit")
            check_same_range(prepared.sample, self.pixel_range_, type(self).__name__)
        if prepared.route == "head":
            head.partial_fit(self, prepared, classes, first=fitted is None, keep=self._set_fitted)
        else:
            neural.partial_fit(self, prepared, classes, keep=self._set_fitted)
        return self

    def _set_fitted(self, fitted: Fitted) -> None:
        """Set the fitted attributes from what a route fitted: the one place they are
        set (a new fit forgets the other route's)."""
        for name in FITTED_ATTRIBUTES:
            self.__dict__.pop(name, None)
        for name, value in fitted.attributes().items():
            setattr(self, name, value)
        self._network_params_at_fit = checks.network_params(self)

    def _check_continuing(self, sample: np.ndarray, how: str) -> None:
        """Before training the fitted model on (a warm start, partial_fit): what defines
        the network is unchanged, and the images have the size seen at fit."""
        checks.check_continuing(
            getattr(self, "_network_params_at_fit", None), checks.network_params(self), how
        )
        check_same_shape(sample, self.input_shape_, type(self).__name__)

    # ------------------------------------------------------------- predict
    def _images(self, X):
        """Validated images for prediction, of the size and channels seen at fit (and
        ``tta``, which may have been set after fit)."""
        check_is_fitted(self)
        checks.check_tta(self, self.backbone_spec_)
        images = as_images(X, image_shape=self.image_shape)
        if isinstance(images, LazyImages) and self.input_shape_[-1] == 3:
            images = images.with_gray_as_rgb(always=True)  # a grayscale photo
        sample = sample_images(images, 1)
        check_same_shape(sample, self.input_shape_, type(self).__name__)
        check_same_range(sample, self.pixel_range_, type(self).__name__)
        return images

    def _head_features(self, images) -> np.ndarray:
        # The head was fitted on single-view features; tta applies at prediction.
        return head.features(self.feature_extractor_, images, self.memory, tta=self.tta)

    def _outputs(self, images) -> tuple[np.ndarray, np.ndarray | None]:
        """The features and logits of validated images, in one pass (``None`` for the
        logits of a scikit-learn head that has none)."""
        if hasattr(self, "head_"):
            features = self._head_features(images)
            has_logits = trust.head_logits_method(self.head_) is not None
            return features, head.logits(self.head_, features) if has_logits else None
        if isinstance(images, LazyImages):
            images = images.without_random()
        features = neural.transform(self, images)
        return features, neural.logits(self, features)

    @available_if(lambda clf: clf.unknown is not None)
    def unknown_score(self, X) -> np.ndarray:
        """How unlike the training images each image is: higher, less like them.

        The score of the ``unknown`` method; :meth:`predict` answers
        ``unknown_label_`` where it exceeds ``unknown_threshold_``. Available when
        ``unknown`` is set.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages

        Returns
        -------
        scores : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from sklimg import ImageClassifier
        >>> from sklimg.datasets import load_digits_images
        >>> X, y = load_digits_images(return_X_y=True)
        >>> clf = ImageClassifier("test_cnn", unknown="knn", max_epochs=2, random_state=0)
        >>> clf = clf.fit(X[:500], y[:500])
        >>> noise = np.random.default_rng(0).random((20, 8, 8), dtype=np.float32)
        >>> bool(np.median(clf.unknown_score(noise)) > clf.unknown_threshold_)
        True
        """
        check_is_fitted(self, "unknown_detector_")
        features, logits = self._outputs(self._images(X))
        return self._scores(features, logits)

    def _scores(self, features, logits) -> np.ndarray:
        temperature = getattr(self, "temperature_", 1.0)
        return self.unknown_detector_.score(features, logits, temperature)

    @available_if(_head_has("predict_proba"))
    def predict_proba(self, X, *, return_unknown_score: bool = False):
        """Class probabilities of images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages
            Images of the same size and channels as at fit.
        return_unknown_score : bool, default=False
            Also return :meth:`unknown_score` of each image, computed in the same pass
            over the images (one forward pass of the network instead of two); only for
            a model fitted with ``unknown``. As ``return_std`` of scikit-learn's
            ``GaussianProcessRegressor.predict``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns ordered as ``classes_``; rows sum to 1.
        unknown_score : ndarray of shape (n_samples,)
            With ``return_unknown_score=True``: what :meth:`unknown_score` returns;
            :meth:`predict` answers ``unknown_label_`` where it exceeds
            ``unknown_threshold_``.

        Raises
        ------
        AttributeError
            If a scikit-learn ``head`` has no ``predict_proba`` (e.g. ``SVC()`` without
            ``probability=True``); ``hasattr(clf, "predict_proba")`` is then false, as
            for a scikit-learn ``Pipeline``.
        ValueError
            If ``return_unknown_score=True`` and the model has no unknown answer.

        Examples
        --------
        >>> import numpy as np
        >>> from sklimg import ImageClassifier
        >>> from sklimg.datasets import load_digits_images
        >>> X, y = load_digits_images(return_X_y=True)
        >>> clf = ImageClassifier("test_cnn", unknown="msp", max_epochs=1, random_state=0)
        >>> clf = clf.fit(X[:300], y[:300])
        >>> proba, score = clf.predict_proba(X[300:305], return_unknown_score=True)
        >>> proba.shape, score.shape
        ((5, 10), (5,))
        >>> bool(np.allclose(score, clf.unknown_score(X[300:305])))
        True
        """
        if return_unknown_score:
            check_is_fitted(self)
            if not hasattr(self, "unknown_detector_"):
                raise ValueError(
                    f"return_unknown_score=True needs a model with an unknown answer; this "
                    f"one was fitted with unknown={self.unknown!r}. Fit it with "
                    f"unknown='auto' (or 'knn', 'mahalanobis', 'energy', 'msp'), or leave "
                    f"out return_unknown_score."
                )
        images = self._images(X)
        if hasattr(self, "unknown_detector_") or hasattr(self, "temperature_"):
            # With an unknown answer, the probabilities, the scores and predict's labels
            # all come from this one pass.
            features, logits = self._outputs(images)
            proba = self._proba(features, logits)
            if return_unknown_score:
                return proba, self._scores(features, logits)
            return proba
        if hasattr(self, "head_"):
            return head.predict_proba(self.head_, self._head_features(images))
        return neural.predict_proba(self, images)

    def _proba(self, features, logits) -> np.ndarray:
        """The probabilities of :meth:`_outputs`' features and logits."""
        if hasattr(self, "temperature_"):
            return scaled_proba(logits, self.temperature_)
        if hasattr(self, "head_"):
            return head.predict_proba(self.head_, features)
        return scaled_proba(logits, 1.0)

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
        return self.head_.decision_function(self._head_features(self._images(X)))

    def predict(self, X) -> np.ndarray:
        """Predicted class label of each image in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, H * W), list of \
                arrays, file paths, or LazyImages

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``, and with ``unknown`` set, ``unknown_label_`` for
            images whose :meth:`unknown_score` exceeds ``unknown_threshold_``.
        """
        if hasattr(self, "unknown_detector_"):
            features, logits = self._outputs(self._images(X))
            if hasattr(self, "head_"):
                labels = np.asarray(self.head_.predict(features))
            else:
                labels = self.classes_[np.argmax(logits, axis=1)]
            unknown = self._scores(features, logits) > self.unknown_threshold_
            label = np.asarray([self.unknown_label_])
            labels = labels.astype(np.result_type(labels, label))
            labels[unknown] = label[0]
            return labels
        if hasattr(self, "head_"):
            return np.asarray(self.head_.predict(self._head_features(self._images(X))))
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
            return np.asarray(self._head_features(images))
        return neural.transform(self, images)

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
            state["_sklimg_versions"] = versions()
        # An Accelerator holds process-group state and patched optimizers, which do not
        # pickle; a loaded model predicts without one (set it again to train on).
        state["accelerator"] = None
        return state

    def __setstate__(self, state):
        saved = state.pop("_sklimg_versions", None)
        super().__setstate__(state)
        if saved is not None and saved != versions():
            differ = ", ".join(
                f"{name} {saved.get(name)} (now {version})"
                for name, version in versions().items()
                if saved.get(name) != version
            )
            warn(
                f"This {type(self).__name__} was saved with {differ}. It may load or "
                f"predict differently; refit it, or install the versions it was saved with.",
                VersionMismatchWarning,
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Images, not feature tables: scikit-learn's 2-D checks do not apply (see
        # sklimg.utils.estimator_checks for the image-aware suite).
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.classifier_tags.multi_label = False
        return tags


def fitted_classifier(
    params: dict, fitted_state: Callable[[ImageClassifier], Fitted], *, metadata: dict
) -> ImageClassifier:
    """An :class:`ImageClassifier` with ``params``, fitted: what ``sklimg.load``
    rebuilds, through the attributes a fit sets.

    Parameters
    ----------
    params : dict
        Parameters, validated as ``fit`` validates them.
    fitted_state : callable
        ``fitted_state(model) -> Fitted``: the fitted state (a
        :class:`~sklimg._fit.state.NeuralFit`), built for the model's parameters.
    metadata : dict
        What was saved with the model, as ``sklimg_metadata_``.

    Returns
    -------
    model : ImageClassifier
    """
    model = ImageClassifier().set_params(**params)
    model._validate_params()
    model._set_fitted(fitted_state(model))
    model.sklimg_metadata_ = metadata
    return model
