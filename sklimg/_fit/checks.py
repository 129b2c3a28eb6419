"""The checks that ``_parameter_constraints`` cannot express, made before any training.

Each refusal is a :class:`~sklimg._statements.Refusal` (each warning of a setting that
does nothing a :class:`~sklimg._statements.SettingWarning`): what is wrong, why, and
the settings that fix it, kept apart from how they are written. ``str(refusal)`` words
it for Python (``mix='mixup'``, "Use head=None, or mix=None."); the command line asks
the same functions and words their answers in its flags (``--mix mixup``, "leave --mix
out").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import Callback, EpochScoring

from sklimg._cache import resolve_memory
from sklimg._files import unwritable_reason
from sklimg._fit import trust
from sklimg._statements import DataRefusal, Refusal, SettingWarning
from sklimg._tta import check_tta as check_tta_policy
from sklimg._warnings import warn
from sklimg.exceptions import ImageInputError
from sklimg.utils._introspection import takes_keyword
from sklimg.utils._torch_utils import resolve_device
from sklimg.utils.validation import check_image_shape_param

__all__ = [
    "NETWORK_PARAMS",
    "check_callbacks",
    "check_continuing",
    "check_head_route",
    "check_needs_network",
    "check_partial_fit",
    "check_settings",
    "check_tta",
    "check_validation_split",
    "class_weights",
    "device_of",
    "network_params",
    "network_warnings",
    "partial_fit_classes",
    "sklearn_head_cause",
    "validation_fraction_of",
]


# ------------------------------------------------------------------ the head route
def sklearn_head_cause(head, spec) -> tuple[str, dict, list[dict]]:
    """Why a classifier fits a scikit-learn head (its own, or a classical backbone's),
    as a template part, its settings, and the fix that gives it a neural head."""
    if head is None:  # a classical backbone
        return (
            "{backbone} fits a scikit-learn head on fixed features, once",
            {"backbone": spec.name},
            [{"backbone": "cnn_small"}],
        )
    return "a scikit-learn head is fitted on fixed features, once", {}, [{"head": None}]


def check_head_route(clf, spec) -> None:
    """What a scikit-learn head cannot do, refused before any feature is computed.

    Raises
    ------
    Refusal
        For settings that train a network (``augment``, ``ema_decay``, ``mix``,
        ``gradient_accumulation_steps``), a head that is not a classifier, or a
        ``class_weight`` beside the user's own head.
    """
    cause, cause_settings, neural = sklearn_head_cause(clf.head, spec)
    network_settings = [
        ("augment", clf.augment is not None,
         "needs a neural head, which sees new augmented images every epoch"),
        ("ema_decay", clf.ema_decay is not None,
         "averages the weights of a network as it trains"),
        ("mix", clf.mix is not None,
         "blends images and labels in the batches a neural head trains on"),
        ("gradient_accumulation_steps", clf.gradient_accumulation_steps != 1,
         "sums the gradients of a neural head's batches"),
    ]  # fmt: skip
    for name, given, what in network_settings:
        if given:
            default = 1 if name == "gradient_accumulation_steps" else None
            raise Refusal(
                f"{{{name}}} {what}; {cause}.",
                {name: getattr(clf, name), **cause_settings},
                [*neural, {name: default}],
            )
    if clf.head is not None and not is_classifier(clf.head):
        raise ValueError(
            f"head must be a scikit-learn classifier; got {clf.head!r}. Use e.g. "
            f"LogisticRegression() or SVC(), or head=None for a neural head."
        )
    if clf.head is not None and clf.class_weight is not None:
        raise ValueError(
            "class_weight weighs the loss of a neural head or of the default "
            "scikit-learn head; your head has its own. Set it there, e.g. "
            "head=LogisticRegression(class_weight='balanced'), and class_weight=None."
        )


def check_needs_network(clf, spec, route: str, what: str) -> None:
    """Refuse ``what`` (e.g. ``"find_lr"``), which tunes a network's training, for a
    classifier on the scikit-learn-head ``route``.

    Raises
    ------
    Refusal
    """
    if route != "head":
        return
    cause, cause_settings, neural = sklearn_head_cause(clf.head, spec)
    raise Refusal(
        f"{{{what}_name}} tunes the learning rate of a neural head trained by gradient "
        f"descent; {cause}, with no learning rate.",
        {what: None, **cause_settings},
        neural,
    )


def check_tta(clf, spec) -> None:
    """``tta`` is a policy, and averages a network's outputs (read at prediction too:
    ``set_params`` after fit)."""
    check_tta_policy(clf.tta)
    if clf.tta is not None and spec.kind == "classical":
        raise Refusal(
            f"{{tta}} averages a network's outputs over views of each image; the "
            f"classical backbone {spec.name!r} has no network.",
            {"tta": clf.tta},
            [{"backbone": "cnn_small"}, {"tta": None}],
        )


# ------------------------------------------------------------------ every route
def check_settings(clf) -> None:
    """The checks of parameters against each other, and against this machine, that
    every fit makes before looking at the images.

    Raises
    ------
    Refusal
        For settings that cannot be used together.
    ValueError, TypeError
        For values the constraints cannot express (``input_size`` pairs, optimizer
        classes, callbacks, folders).
    """
    check_image_shape_param(clf.image_shape)
    size = clf.input_size
    if isinstance(size, bool) or (
        isinstance(size, (tuple, list))
        and (
            len(size) != 2
            or not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in size)
        )
    ):
        raise ValueError(
            f"input_size must be 'auto', an int or (height, width) with positive ints; "
            f"got {size!r}."
        )
    if clf.accelerator is not None:
        if clf.amp:
            raise Refusal(
                "{amp} and an accelerator: mixed precision is the accelerator's, e.g. "
                "Accelerator(mixed_precision='bf16').",
                {"amp": True},
                [{"amp": False}],
            )
        if clf.device != "auto":
            raise Refusal(
                "{device} and an accelerator: the accelerator places the network "
                "(Accelerator(cpu=True) for the CPU).",
                {"device": clf.device},
                [{"device": "auto"}],
            )
    elif clf.amp and not resolve_device(clf.device).startswith("cuda"):
        raise Refusal(
            "{amp} needs a CUDA device (mixed precision on the CPU is slower).",
            {"amp": True},
            [{"amp": False}, {"device": "cuda"}],
        )
    optimizer = clf.optimizer
    if isinstance(optimizer, type) and not issubclass(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be one of ['adam', 'adamw', 'sgd'] or a torch.optim.Optimizer "
            f"subclass; got {optimizer!r}."
        )
    if (
        isinstance(optimizer, type)
        and clf.weight_decay
        and not takes_keyword(optimizer, "weight_decay")
    ):
        raise ValueError(f"{optimizer.__name__} has no weight_decay; set weight_decay=0 to use it.")
    _check_accumulation(clf)
    check_callbacks(clf.callbacks)
    memory = resolve_memory(clf.memory)  # a file where a folder should be
    # Probed once per fit, not on every transform that reads the cache.
    reason = None if memory is None else unwritable_reason(memory)
    if reason is not None:
        raise ValueError(
            f"memory={str(memory)!r} cannot hold the feature cache: {reason}. Pass a "
            f"folder you can write to, or memory=None."
        )
    if clf.checkpoint_dir is not None:
        _check_writable_folder(clf.checkpoint_dir)


def _check_accumulation(clf) -> None:
    """What gradient accumulation cannot combine with."""
    steps = clf.gradient_accumulation_steps
    if steps == 1:
        return
    if clf.accelerator is not None:
        raise Refusal(
            f"{{gradient_accumulation_steps}} and an accelerator: accumulation is the "
            f"accelerator's, e.g. Accelerator(gradient_accumulation_steps={steps}).",
            {"gradient_accumulation_steps": steps},
            [{"gradient_accumulation_steps": 1}],
        )
    if isinstance(clf.optimizer, type) and issubclass(clf.optimizer, torch.optim.LBFGS):
        raise Refusal(
            "{gradient_accumulation_steps} and LBFGS: LBFGS evaluates the loss of one "
            "batch several times per step, so it cannot sum the gradients of several.",
            {"gradient_accumulation_steps": steps},
            [{"optimizer": "adamw"}, {"gradient_accumulation_steps": 1}],
        )


def check_callbacks(callbacks) -> None:
    """Fail before training on a ``callbacks`` entry skorch could not run."""
    for item in callbacks or ():
        callback = item[1] if isinstance(item, tuple) and len(item) == 2 else item
        named = not isinstance(item, tuple) or isinstance(item[0], str)
        # skorch instantiates Callback classes itself.
        usable = isinstance(callback, Callback) or (
            isinstance(callback, type) and issubclass(callback, Callback)
        )
        if not named or not usable:
            raise TypeError(
                f"callbacks must hold skorch Callbacks (instances or classes) or (name, "
                f"callback) pairs; got {item!r}."
            )


def _check_writable_folder(folder) -> None:
    """Checked, not created: the training guard creates it when it first writes."""
    reason = unwritable_reason(folder)
    if reason is not None:
        raise ValueError(
            f"checkpoint_dir={str(folder)!r} cannot hold checkpoints: {reason}. Pass a "
            f"folder you can write to."
        )


def device_of(clf) -> str:
    """Where a fit computes: the accelerator's device, or ``device`` resolved."""
    if clf.accelerator is not None:
        return str(clf.accelerator.device)
    return resolve_device(clf.device)


# ------------------------------------------------------------------ the neural route
def network_warnings(clf, device: str, *, validates: bool) -> None:
    """Warn, before training a neural head, of settings that do nothing or cost far more
    than they give.

    - ``mix_alpha`` without ``mix`` (as scikit-learn's ``LogisticRegression`` warns of
      an ``l1_ratio`` without ``penalty="elasticnet"``; in timm, a ``mixup_alpha``
      alone turns MixUp on);
    - ``compile=True`` on the CPU, where compiling costs more than it saves;
    - skorch scoring callbacks of the validation split (``EpochScoring`` with
      ``on_train=False``, its default) in a fit that holds out nothing: skorch records
      nothing for them, silently.

    Parameters
    ----------
    validates : bool
        Whether this fit holds out a validation split.
    """
    if clf.mix_alpha is not None and clf.mix is None:
        warn(
            SettingWarning(
                "{mix_alpha} has no effect without {mix_name} (MixUp or CutMix).",
                {"mix_alpha": clf.mix_alpha, "mix": None},
                [{"mix": "mixup"}, {"mix_alpha": None}],
            )
        )
    if clf.compile and device == "cpu":
        warn(
            "compile=True on the CPU: torch.compile spends longer compiling the network "
            "(at the first batch, and again for each new batch shape) than a CPU fit "
            "saves, often by orders of magnitude for small networks. Use compile=False "
            "on the CPU; it pays off on CUDA for long runs."
        )
    if validates:
        return
    for item in clf.callbacks or ():
        callback = item[1] if isinstance(item, tuple) else item
        if isinstance(callback, EpochScoring) and not callback.on_train:
            name = callback.name or callback.scoring
            warn(
                f"The callback EpochScoring({name!r}) scores the validation split, and "
                f"this fit holds none out (validation_fraction=None): skorch would "
                f"record nothing for it. Set validation_fraction (e.g. 0.2), or pass "
                f"EpochScoring(..., on_train=True) to score the training images."
            )


def validation_fraction_of(clf) -> float | None:
    """The fraction a fit holds out: ``validation_fraction``, or 0.1 for early stopping,
    calibration and the unknown answer."""
    if clf.validation_fraction is None and (clf.early_stopping or trust.wanted(clf)):
        return 0.1
    return clf.validation_fraction


def check_validation_split(
    y_encoded: np.ndarray, n_classes: int, fraction, groups: np.ndarray | None = None
) -> None:
    """Fail before training when a stratified hold-out of ``fraction`` is impossible
    (with ``groups``, one that keeps each group on one side).

    Raises
    ------
    DataRefusal
        When a class would have no image on one side, or there are too few groups.
    """
    if not fraction:
        return
    if groups is not None:
        n_groups, needed = len(np.unique(groups)), trust.group_folds(fraction)
        if n_groups < needed:
            raise DataRefusal(
                f"Cannot hold out {{validation_fraction}} of the images keeping each group "
                f"on one side: groups holds {n_groups} groups, and the hold-out is one of "
                f"{needed} folds of whole groups. Give more groups, a larger "
                f"{{validation_fraction_name}} (at least {1 / max(n_groups, 2):.2g}), or "
                f"{{fixes}}.",
                {"validation_fraction": fraction},
                [{"validation_fraction": None, "early_stopping": False}],
            )
        return
    n = len(y_encoded)
    n_valid = math.ceil(fraction * n)
    smallest = int(np.bincount(y_encoded, minlength=n_classes).min())
    if smallest < 2 or n_valid < n_classes or n - n_valid < n_classes:
        raise DataRefusal(
            f"Cannot hold out a stratified {{validation_fraction}} of {n} images in "
            f"{n_classes} classes (the smallest class has {smallest} images): each class "
            f"needs an image on both sides. Use more images, a larger "
            f"{{validation_fraction_name}}, or {{fixes}}.",
            {"validation_fraction": fraction},
            [{"validation_fraction": None, "early_stopping": False}],
        )


def class_weights(class_weight, classes: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """The weight of each class in the loss, checked against the labels.

    Raises
    ------
    ImageInputError
        For labels that are not in ``y``, weights that are not finite non-negative
        numbers, or what scikit-learn's ``compute_class_weight`` refuses.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        known = set(classes.tolist())
        unknown = [k for k in class_weight if k not in known]
        if unknown:
            raise ImageInputError(
                f"class_weight names labels that are not in y: {unknown!r}. Its keys "
                f"must be labels of y, of the same type: {classes.tolist()}."
            )
        bad = {
            k: w
            for k, w in class_weight.items()
            if isinstance(w, bool) or not isinstance(w, Real) or not np.isfinite(w) or w < 0
        }
        if bad:
            raise ImageInputError(
                f"class_weight must map labels to finite, non-negative numbers; got {bad!r}."
            )
    try:
        return compute_class_weight(class_weight, classes=classes, y=y)
    except ValueError as exc:
        raise ImageInputError(
            f"Invalid class_weight: {exc} Use 'balanced' or a dict mapping labels in "
            f"{classes.tolist()} to weights."
        ) from exc


#: What defines the network: a warm start and partial_fit refuse changes to these.
NETWORK_PARAMS = (
    "backbone", "pretrained", "weights", "backbone_kwargs", "image_shape", "head",
    "finetune", "input_size",
)  # fmt: skip


def network_params(clf) -> dict[str, str]:
    """The parameters that define the network (as reprs), which a warm start keeps."""
    return {name: repr(getattr(clf, name)) for name in NETWORK_PARAMS}


def check_continuing(at_fit: Mapping[str, str] | None, now: Mapping[str, str], how: str) -> None:
    """Before training the fitted network on (a warm start, partial_fit): what defines
    the network is unchanged since it was fitted.

    Parameters
    ----------
    at_fit, now : mapping of str to str
        The parameters that define the network (as reprs), at fit and now.
    how : str
        ``"warm_start=True"`` or ``"partial_fit"``, for the message.
    """
    if at_fit is None:
        return
    changed = [f"{k}: {at_fit[k]} -> {now[k]}" for k in now if now[k] != at_fit.get(k)]
    if changed:
        fresh = "Set warm_start=False" if how.startswith("warm_start") else "Call fit"
        raise ValueError(
            f"{how} goes on training the fitted network, but what defines it "
            f"changed since it was fitted ({'; '.join(changed)}). {fresh} to "
            f"train a new network. (Training parameters such as max_epochs, lr or "
            f"batch_size may change.)"
        )


def check_partial_fit(clf) -> None:
    """What partial_fit refuses of the parameters: weights it would need every label
    for."""
    if isinstance(clf.class_weight, str):  # "balanced"
        raise ValueError(
            "class_weight='balanced' needs every label at once, which partial_fit "
            "does not see. Compute the weights on all the labels and pass them as a "
            "dict: dict(zip(classes, sklearn.utils.class_weight.compute_class_weight("
            "'balanced', classes=classes, y=y_all)))."
        )


def partial_fit_classes(classes, y: np.ndarray, fitted: np.ndarray | None) -> np.ndarray:
    """The classes of a partial_fit call, checked against ``y`` and the ``fitted``
    classes of earlier calls (None on the first)."""
    first = fitted is None
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
                f"classes must hold every label of the problem, at least 2; got {classes.tolist()}."
            )
        if not first and not np.array_equal(classes, fitted):
            raise ValueError(
                f"classes={classes.tolist()} differs from the classes of the first "
                f"call ({fitted.tolist()}); pass the same classes, or None. Call "
                f"fit to train on other classes."
            )
    else:
        classes = fitted
    unseen = np.setdiff1d(np.unique(y), classes)
    if len(unseen):
        raise ImageInputError(
            f"y has labels that are not among the classes {classes.tolist()}: "
            f"{unseen.tolist()}. Pass every label y will hold, over all the calls, as "
            f"classes on the first call."
        )
    return classes
