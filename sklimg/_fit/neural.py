"""The neural-head route: a network trained end to end (or its head alone) by skorch.

A fit chooses its network (a new one, or the fitted one for a warm start or
partial_fit), the module that trains (the network, or its head on features computed
once when the backbone is frozen and nothing is random), and the plan
(:class:`~sklimg._training.plan.TrainingPlan`); it resumes a checkpoint when asked, and
trains with the keep-the-weights policy: whatever stops training part-way (divergence,
an unreadable image, Ctrl-C), the weights learned so far are handed to ``keep``. The
route never sets the classifier's attributes: it hands ``keep`` a
:class:`~sklimg._fit.state.NeuralFit`. ``sklimg.load`` and the learning-rate finder
build their nets through the same functions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from skorch.history import History
from torch import nn

from sklimg._checkpoints import PARTIAL_FIT_TAG, checkpoint_to_resume, config_digest
from sklimg._fit import checks, trust
from sklimg._fit.run import Prepared, TrainingData, training_data
from sklimg._fit.state import NeuralFit, images_seen
from sklimg._lazy import LazyImages
from sklimg._network import HeadOnly, build_backbone, resolved_finetune
from sklimg._statements import Refusal
from sklimg._torch_data import (
    ImageTensorDataset,
    default_num_workers,
    image_dataset,
    n_batches,
)
from sklimg._training.callbacks import weight_average
from sklimg._training.net import bare_module, net_device
from sklimg._training.plan import TrainingPlan, build_net
from sklimg._warnings import warn
from sklimg.exceptions import (
    CheckpointError,
    ImageInputError,
    TrainingDivergedError,
    TrainingInterruptedWarning,
)
from sklimg.features._deep import features_of
from sklimg.utils._torch_utils import seeded

__all__ = [
    "Network",
    "fit",
    "logits",
    "partial_fit",
    "predict_proba",
    "prediction_net",
    "range_test_net",
    "transform",
]

# Training parameters a partial_fit net is built with: changing one (set_params) between
# calls builds a new net around the network (a new optimizer), as a warm start does.
_INCREMENTAL_PARAMS = (
    "lr", "optimizer", "weight_decay", "batch_size", "label_smoothing", "ema_decay", "mix",
    "mix_alpha", "gradient_accumulation_steps", "gradient_clip", "class_weight",
    "backbone_lr_scale", "freeze_epochs", "device", "amp", "compile", "accelerator",
    "checkpoint_dir", "callbacks", "verbose",
)  # fmt: skip


class Network(NamedTuple):
    """The network a fit trains, and what follows from how it was made."""

    network: nn.Module
    input_size: tuple[int, int]
    uses_weights: bool  # pretrained or given weights (a lower backbone rate by default)
    finetune: str  # resolved: "full", "head" or "gradual"
    history: Any  # the fitted network's history_, None for a new one


# --------------------------------------------------------------------- the network
def new_network(clf, prepared: Prepared, n_classes: int) -> Network:
    """A new network for the prepared fit's backbone, frozen where ``finetune`` says;
    refused before it sees an image if training it would not fit in memory."""
    spec, device = prepared.spec, prepared.device
    built = build_backbone(
        spec,
        prepared.sample,
        pretrained=clf.pretrained,
        weights=clf.weights,
        backbone_kwargs=clf.backbone_kwargs,
        input_size=clf.input_size,
        train_batch=min(clf.batch_size, len(prepared.images)),
        finetune=clf.finetune,
        device=device,
    )
    network = built.network(n_classes)
    finetune = resolved_finetune(clf.finetune, built.pretrained)
    processes = getattr(clf.accelerator, "num_processes", 1)
    if finetune == "gradual" and processes > 1:
        raise Refusal(
            f"{{finetune}} cannot run on {processes} processes: parameters unfrozen after "
            f"DistributedDataParallel wraps the network would not be synchronised. Use "
            f"{{fixes}}, or train in one process.",
            {"finetune": "gradual"},
            [{"finetune": "full"}, {"finetune": "head"}],
        )
    # LBFGS flattens gradients with .view(), which channels-last tensors refuse.
    if device == "cpu" and spec.channels_last and clf.optimizer is not torch.optim.LBFGS:
        network.use_channels_last()
    if finetune in ("head", "gradual"):
        network.freeze_backbone()
    return Network(network, built.input_size, built.pretrained, finetune, history=None)


def fitted_network(clf) -> Network:
    """The fitted network, to train on (warm start, partial_fit), its backbone frozen as
    ``finetune_`` and the epochs so far say (``sklimg.load`` rebuilds it unfrozen)."""
    frozen = clf.finetune_ == "head" or (
        clf.finetune_ == "gradual" and len(clf.history_) < clf.freeze_epochs
    )
    return Network(
        network=clf.net_.module_.freeze_backbone(frozen),
        input_size=clf.input_size_,
        uses_weights=clf.pretrained or clf.weights is not None,
        finetune=clf.finetune_,
        history=clf.history_,
    )


def trained_module(clf, chosen: Network, data: TrainingData, device: str):
    """What the skorch net trains, and on what: the network on the images, or, with a
    frozen backbone and no augmentation or mixing, its head on features computed once
    (and cached with ``memory``) and reused every epoch."""
    network = chosen.network
    random = getattr(data.images, "random", False) or clf.mix is not None
    if chosen.finetune != "head" or random:
        return network, data.dataset
    features = features_of(
        network.feature_extractor(),
        data.images,
        batch_size=predict_batch_size(chosen.input_size, clf.batch_size),
        device=device,
        num_workers=clf.num_workers,
        memory=clf.memory,
    )
    dataset = ImageTensorDataset(torch.from_numpy(features), data.dataset.y, data.dataset.weight)
    return HeadOnly(network), dataset


def predict_batch_size(input_size, batch_size: int) -> int:
    """Images per batch at prediction: large batches predict faster; bounded to 2**20
    input pixels per batch."""
    return max(batch_size, min(1024, 2**20 // math.prod(input_size)))


def incremental_settings(clf) -> dict[str, str]:
    """The parameters a partial_fit net is built with (as reprs). Those it ignores
    (the schedule, the validation split, early stopping) are left out."""
    return {name: repr(getattr(clf, name)) for name in _INCREMENTAL_PARAMS}


# ------------------------------------------------------------------------ the plan
def training_plan(
    clf,
    classes: np.ndarray,
    input_shape: tuple[int, int, int],
    chosen: Network,
    *,
    device: str,
    purpose: str,
    validation_fraction: float | None = None,
    validation_split: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    class_weights: np.ndarray | None = None,
    train_images: int = 0,
    first_epoch: int = 0,
    num_workers: int = 0,
) -> TrainingPlan:
    """How the skorch net trains (or predicts), from the parameters and what the fit
    resolved.

    ``purpose`` is ``"fit"``; ``"partial_fit"`` (one epoch, no validation split, early
    stopping or schedule; its checkpoints tagged so that fit refuses them);
    ``"range_test"`` (a bare run: no weight average, checkpoints, gradual unfreezing
    or the user's callbacks, so the losses are those of the weights as they train); or
    ``"predict"`` (a loaded model's net).
    """
    scale = clf.backbone_lr_scale
    if scale is None:
        scale = 0.1 if chosen.uses_weights else 1.0
    height, width, channels = input_shape
    # The classifier's own runs, with the user's callbacks, checkpoints and log.
    own_run = purpose in ("fit", "partial_fit")
    tag = config_digest(clf.get_params(deep=False), classes)
    return TrainingPlan(
        n_classes=len(classes),
        device=device,
        purpose=purpose,
        lr=clf.lr,
        optimizer=clf.optimizer,
        weight_decay=clf.weight_decay,
        lr_schedule=clf.lr_schedule,
        max_epochs=clf.max_epochs if purpose == "fit" else 1,
        batch_size=clf.batch_size,
        predict_batch_size=predict_batch_size(chosen.input_size, clf.batch_size),
        class_weights=class_weights,
        label_smoothing=clf.label_smoothing,
        ema_decay=None if purpose == "range_test" else clf.ema_decay,
        mix=clf.mix,
        mix_alpha=clf.mix_alpha,
        gradient_accumulation_steps=clf.gradient_accumulation_steps,
        gradient_clip=clf.gradient_clip,
        validation_fraction=validation_fraction if purpose == "fit" else None,
        validation_split=validation_split if purpose == "fit" else None,
        early_stopping=clf.early_stopping and purpose == "fit",
        patience=clf.patience,
        seed=seed,
        verbose=clf.verbose if own_run else 0,
        num_workers=num_workers,
        expected_shape=(channels, height, width),
        backbone_lr_scale=scale if chosen.finetune in ("full", "gradual") else 1.0,
        # Counted in epochs of history_, from the first fit.
        unfreeze_after=(
            max(clf.freeze_epochs, len(chosen.history or ()))
            if chosen.finetune == "gradual" and purpose != "range_test"
            else None
        ),
        train_images=train_images,
        first_epoch=first_epoch,
        amp=clf.amp,
        compile=clf.compile and own_run,
        accelerator=clf.accelerator if own_run else None,
        checkpoint_dir=(
            str(clf.checkpoint_dir) if own_run and clf.checkpoint_dir is not None else None
        ),
        checkpoint_tag=(PARTIAL_FIT_TAG if purpose == "partial_fit" else "") + tag,
        callbacks=list(clf.callbacks or []) if own_run else [],
        incremental=incremental_settings(clf) if purpose == "partial_fit" else False,
    )


# --------------------------------------------------------------------- fit
def fit(clf, prepared: Prepared, *, continuing: bool, keep: Callable[[NeuralFit], None]) -> None:
    """Train a neural head on ``prepared``: a new network, or with ``continuing`` (a
    warm start) the fitted one, under the current training parameters (a new optimizer
    and schedule; the history grows). With ``warm_start`` and a ``checkpoint_dir``
    holding a checkpoint of this configuration, resume it instead."""
    fraction = checks.validation_fraction_of(clf)
    checks.network_warnings(clf, prepared.device, validates=bool(fraction))
    if continuing:
        unseen = np.setdiff1d(np.unique(prepared.y), clf.classes_)
        if len(unseen):
            raise ImageInputError(
                f"warm_start=True continues training on the classes seen at the first "
                f"fit ({clf.classes_.tolist()}); y has new labels {unseen.tolist()}. "
                f"Refit with warm_start=False to learn new classes."
            )
        classes = clf.classes_
    else:
        classes = np.unique(prepared.y)
    trust.check_trust(clf, "neural", None, classes)
    data = training_data(clf, prepared, classes)
    checks.check_validation_split(data.y_encoded, len(classes), fraction, prepared.groups)
    split = None
    if fraction and prepared.groups is not None:
        # skorch validates on this grouped split (else on its own stratified one).
        split = trust.held_out(data.y_encoded, fraction, prepared.seed, prepared.groups)
    with seeded(prepared.seed, prepared.device):
        chosen = fitted_network(clf) if continuing else new_network(clf, prepared, len(classes))
        module, dataset = trained_module(clf, chosen, data, prepared.device)
        checkpoint = None
        if not continuing and clf.warm_start and clf.checkpoint_dir is not None:
            digest = config_digest(clf.get_params(deep=False), classes)
            checkpoint = checkpoint_to_resume(clf.checkpoint_dir, digest)
        n = len(prepared.y)
        plan = training_plan(
            clf,
            classes,
            images_seen(prepared.sample)["input_shape"],
            chosen,
            device=prepared.device,
            purpose="fit",
            validation_fraction=fraction,
            validation_split=split,
            seed=prepared.seed,
            class_weights=checks.class_weights(clf.class_weight, classes, prepared.y),
            train_images=(
                len(split[0]) if split else n - (math.ceil(fraction * n) if fraction else 0)
            ),
            first_epoch=len(checkpoint["history"]) if checkpoint else 0,
            num_workers=default_num_workers(data.images, clf.num_workers),
        )
        _warn_if_frozen_throughout(clf, plan, epochs_done=len(chosen.history or ()))
        net = build_net(module, plan)
        fitted = _state(classes, prepared, chosen)
        kept: list[NeuralFit] = []

        def keep_last(state: NeuralFit) -> None:
            kept.append(state)
            keep(state)

        if chosen.history is not None:
            _continue(clf, net, chosen.history)
            _train(net, dataset, data.y_encoded, chosen.network, fitted, keep_last, epochs=None)
        elif checkpoint is not None:
            _resume(net, checkpoint)
            # With every epoch done, only what follows the last one runs (precise BN).
            remaining = max(0, clf.max_epochs - len(net.history))
            _train(
                net, dataset, data.y_encoded, chosen.network, fitted, keep_last, epochs=remaining
            )
        else:
            _train(net, dataset, data.y_encoded, chosen.network, fitted, keep_last, fresh=True)
    if trust.wanted(clf):
        # The held-out images are those skorch validated on: the same split.
        train, valid = trust.held_out(data.y_encoded, fraction, prepared.seed, prepared.groups)
        images = prepared.images
        if isinstance(images, LazyImages):
            images = images.without_random()
        valid_features = transform(clf, images[valid])
        state = trust.fit(
            clf,
            classes,
            prepared.seed,
            train_y=data.y_encoded[train],
            train_features=lambda indices: transform(clf, images[train[indices]]),
            valid_y=data.y_encoded[valid],
            valid_features=valid_features,
            valid_logits=logits(clf, valid_features),
        )
        keep(dataclasses.replace(kept[-1], trust=state))


def partial_fit(
    clf, prepared: Prepared, classes: np.ndarray, *, keep: Callable[[NeuralFit], None]
) -> None:
    """One epoch over ``prepared`` at a constant ``lr``: on the net of the previous
    call (its optimizer's state kept), or on a new net around the network (the first
    call, after ``fit``, or after ``set_params`` changed a training parameter)."""
    checks.network_warnings(clf, prepared.device, validates=False)
    if len(prepared.images) < 2:
        raise ImageInputError(
            "partial_fit got 1 image; a neural head trains on at least 2 per call "
            "(BatchNorm cannot train on one). Pass a larger batch of images."
        )
    steps = clf.gradient_accumulation_steps
    batches = n_batches(len(prepared.images), clf.batch_size, drop_singleton=True)
    if batches < steps:
        warn(
            f"gradient_accumulation_steps={steps}, but this partial_fit call holds "
            f"{batches} batch{'es' if batches > 1 else ''} of batch_size="
            f"{clf.batch_size}: groups do not span calls, so the call steps once, on "
            f"{len(prepared.images)} images. Pass {steps * clf.batch_size} images per call "
            f"to step on groups of {steps} batches."
        )
    data = training_data(clf, prepared, classes)
    workers = default_num_workers(data.images, clf.num_workers)
    with seeded(prepared.seed, prepared.device):
        net = getattr(clf, "net_", None)
        if net is not None and net.incremental == incremental_settings(clf):
            # Later calls: the same net, optimizer state included, with workers suited
            # to this call's input (skorch reads iterator settings from the net's
            # attributes; its set_params would re-initialise).
            net.iterator_train__num_workers = workers
            fitted = NeuralFit(
                classes=clf.classes_,
                backbone_spec=clf.backbone_spec_,
                input_shape=clf.input_shape_,
                pixel_range=clf.pixel_range_,
                net=net,
                input_size=clf.input_size_,
                finetune=clf.finetune_,
            )
            _train(net, data.dataset, data.y_encoded, net.module_, fitted, keep, epochs=1)
            return
        chosen = (
            fitted_network(clf) if net is not None else new_network(clf, prepared, len(classes))
        )
        plan = training_plan(
            clf,
            classes,
            images_seen(prepared.sample)["input_shape"],
            chosen,
            device=prepared.device,
            purpose="partial_fit",
            seed=prepared.seed,
            # A dict needs no y ("balanced", which does, is refused before).
            class_weights=checks.class_weights(clf.class_weight, classes, classes),
            num_workers=workers,
        )
        net = build_net(chosen.network, plan)
        if chosen.history is not None:
            _continue(clf, net, chosen.history)
        fitted = _state(classes, prepared, chosen)
        _train(net, data.dataset, data.y_encoded, chosen.network, fitted, keep, epochs=1)


def _state(classes: np.ndarray, prepared: Prepared, chosen: Network) -> NeuralFit:
    """The fitted state of a run, its net yet to come (see :func:`_train`)."""
    return NeuralFit(
        classes=classes,
        backbone_spec=prepared.spec,
        **images_seen(prepared.sample),
        net=None,
        input_size=chosen.input_size,
        finetune=chosen.finetune,
    )


def _continue(clf, net, history) -> None:
    """Make a new net go on from the fitted one (a warm start, or partial_fit after fit
    or set_params): its history, and its weight average when both keep one."""
    net.initialize()
    net.history = History(list(history))
    previous, average = weight_average(clf.net_), weight_average(net)
    if previous is not None and average is not None:
        average.carry_over(net, previous)


def _resume(net, checkpoint: dict) -> None:
    """Make a new net go on from a checkpoint: weights, optimizer, history, average."""
    net.initialize()
    net.module_.load_state_dict(checkpoint["module"])
    net.optimizer_.load_state_dict(checkpoint["optimizer"])
    net.history = History(checkpoint["history"])
    average = weight_average(net)
    if average is not None:
        average.restore(net, checkpoint["average"])


def _warn_if_frozen_throughout(clf, plan: TrainingPlan, *, epochs_done: int) -> None:
    """Say so when ``finetune="gradual"`` keeps the backbone frozen for a whole fit."""
    after = plan.unfreeze_after
    if after is None or after < epochs_done + clf.max_epochs:
        return
    warn(
        f'finetune="gradual" with freeze_epochs={clf.freeze_epochs}: the backbone stays '
        f"frozen for this whole fit of max_epochs={clf.max_epochs} (epochs "
        f"{epochs_done + 1} to {epochs_done + clf.max_epochs} of history_); it unfreezes "
        f"after epoch {after}. Set max_epochs above {after - epochs_done} or lower "
        f'freeze_epochs (counted from the first fit), or use finetune="head", which '
        f"also computes frozen features only once."
    )


def _train(
    net, dataset, y_encoded, network, fitted: NeuralFit, keep, *, epochs=None, fresh=False
) -> None:
    """Run skorch; hand ``keep`` what was learned, also when training stops part-way.

    ``fresh``: a new net's ``fit``; otherwise ``partial_fit`` for ``epochs`` more
    epochs (``None``: ``max_epochs``) on an initialised net.
    """

    def kept() -> NeuralFit:
        if net.module_ is not network:
            # The head was trained on cached features through a HeadOnly view: install
            # the whole network, which predicts from images.
            net.module = net.module_ = network
        return dataclasses.replace(fitted, net=net)

    try:
        if fresh:
            net.fit(dataset, y_encoded)
        else:
            net.partial_fit(dataset, y_encoded, epochs=epochs)
    except (TrainingDivergedError, CheckpointError):
        keep(kept())  # with the last good weights
        raise
    except ImageInputError as exc:
        done = sum(1 for row in net.history if "train_loss" in row)
        if not done:
            raise
        keep(kept())
        raise ImageInputError(
            f"{exc}\nTraining stopped after {done} complete epoch(s); the classifier "
            f"keeps the weights learned so far. Fix or remove the image, then call fit "
            f"with warm_start=True to continue."
        ) from exc
    keep(kept())
    if net.interrupted_:
        done = sum(1 for row in net.history if "train_loss" in row)
        warn(
            f"Training was interrupted after {done} complete epoch(s); the classifier "
            f"keeps the best weights so far and predicts with them. Call fit with "
            f"warm_start=True to continue.",
            TrainingInterruptedWarning,
        )


# --------------------------------------------------------------------- predict
def predict_proba(clf, images) -> np.ndarray:
    """Class probabilities of validated images, with ``tta`` and workers suited to
    this input (a model fitted on arrays may be given files to decode)."""
    net = clf.net_.predicting_with(
        tta=clf.tta,
        iterator_valid__num_workers=default_num_workers(images, clf.num_workers),
    )
    proba = net.predict_proba(image_dataset(images))
    # float32 softmax rows sum to 1 within ~1e-7; scikit-learn's log_loss checks
    # 1.5e-8, so renormalise in float64.
    proba = np.asarray(proba, dtype=np.float64)
    return proba / proba.sum(axis=1, keepdims=True)


def logits(clf, features: np.ndarray) -> np.ndarray:
    """The head's logits for the pooled ``features`` of :func:`transform` (a linear
    layer: with ``tta``, the logits averaged over the views, as predictions average
    them), in float64."""
    head = bare_module(clf.net_).head
    weight = head.weight.detach().cpu().double().numpy()
    bias = head.bias.detach().cpu().double().numpy()
    return np.asarray(features, dtype=np.float64) @ weight.T + bias


def transform(clf, images) -> np.ndarray:
    """The trained backbone's pooled features of validated images (the head's input),
    averaged over views with ``tta``."""
    return features_of(
        bare_module(clf.net_).feature_extractor(),
        images,
        batch_size=predict_batch_size(clf.input_size_, clf.batch_size),
        device=str(net_device(clf.net_)),
        num_workers=clf.num_workers,
        tta=clf.tta,
    )


# ------------------------------------------------- nets for sklimg.load and find_lr
def prediction_net(
    clf,
    network: nn.Module,
    *,
    classes: np.ndarray,
    input_shape: tuple[int, int, int],
    input_size: tuple[int, int],
    finetune: str,
    history: list,
    device: str,
):
    """The initialised net of a loaded model: ``network`` with its saved ``history``,
    configured by ``clf``'s parameters as a fit would (``purpose="predict"``)."""
    chosen = Network(
        network=network,
        input_size=input_size,
        uses_weights=clf.pretrained or clf.weights is not None,
        finetune=finetune,
        history=history,
    )
    plan = training_plan(clf, classes, input_shape, chosen, device=device, purpose="predict")
    net = build_net(network, plan).initialize()
    net.history = History(history)
    net.module_.eval()
    return net


def range_test_net(clf, prepared: Prepared):
    """The initialised net and dataset of the learning-rate range test: the network,
    module and settings ``fit`` would train, in a bare run (``purpose="range_test"``).
    Call it where ``prepared.seed`` seeds torch, as the test's steps need."""
    classes = np.unique(prepared.y)
    data = training_data(clf, prepared, classes)
    chosen = new_network(clf, prepared, len(classes))
    if chosen.finetune == "gradual" and clf.freeze_epochs == 0:
        chosen.network.freeze_backbone(False)  # what the first epoch of fit trains
    module, dataset = trained_module(clf, chosen, data, prepared.device)
    plan = training_plan(
        clf,
        classes,
        images_seen(prepared.sample)["input_shape"],
        chosen,
        device=prepared.device,
        purpose="range_test",
        seed=prepared.seed,
        class_weights=checks.class_weights(clf.class_weight, classes, prepared.y),
        num_workers=default_num_workers(data.images, clf.num_workers),
    )
    return build_net(module, plan).initialize(), dataset
