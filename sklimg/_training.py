"""The skorch side: optimizer, callbacks and the ``NeuralNetClassifier`` that trains.

:class:`ImageClassifier` wraps (does not subclass) skorch; this module builds the net it
keeps as ``net_``.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
    ProgressBar,
)
from skorch.dataset import ValidSplit, unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator, to_device, to_tensor
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel

from sklimg._lazy import LazyImages
from sklimg._mix import MixedTargets, mix_batch
from sklimg._network import HeadOnly, recompute_batchnorm_stats, trainable_batchnorms
from sklimg._torch_data import (
    ImageBatchLoader,
    ImageTensorDataset,
    LazyImageDataset,
    WeightedTargets,
    image_data_loader,
)
from sklimg._tta import average_over_views
from sklimg.exceptions import TrainingDivergedError

__all__ = [
    "OPTIMIZERS",
    "AcceleratedImageNet",
    "TrainingPlan",
    "bare_module",
    "build_net",
    "load_checkpoint",
    "plain_history",
]

#: Optimizer names accepted by ``ImageClassifier(optimizer=...)`` and their defaults.
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "adamw": (torch.optim.AdamW, {}),
    "adam": (torch.optim.Adam, {}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}


# Callback attributes that only matter during training and would otherwise pickle a
# second copy of the weights (an LR scheduler holds the optimizer; EarlyStopping and
# the guard hold weight snapshots).
_TRAINING_ONLY_ATTRIBUTES = ("lr_scheduler_", "best_model_weights_", "snapshots_")


class InferenceModeNet(NeuralNetClassifier):
    """skorch's classifier, predicting under ``torch.inference_mode()``, pickling small.

    ``inference_mode`` skips the version-counter and view tracking that ``no_grad``
    keeps, which makes forward passes faster; skorch's training path is unchanged.
    Pickles leave out the optimizer's state (moments: twice the weights), weight copies
    held by callbacks and the duplicate of the initial module: a loaded model predicts
    the same and continues training with a fresh optimizer state.
    """

    interrupted_ = False
    #: Mixed precision (bfloat16 autocast) on CUDA; set by build_net.
    amp = False
    #: Test-time augmentation of predictions (see sklimg._tta); set on the view the
    #: classifier predicts with. Validation scores during training never use it.
    tta = None
    #: A net built by ImageClassifier.partial_fit (one epoch per call, the optimizer's
    #: state kept between calls) holds the classifier's training settings it was built
    #: with here; False for nets built by fit.
    incremental: bool | dict = False
    #: MixUp / CutMix of the training batches (see sklimg._mix) and its alpha (None:
    #: the method's default); set by build_net.
    mix = None
    mix_alpha = None
    #: Gradient accumulation: batches whose gradients are summed before each optimizer
    #: step; set by build_net. While it runs: the batches of the current group done and
    #: their images, the group's size in batches, and the training batches of the
    #: epoch still to come (None outside an epoch's loop: find_lr's steps).
    accumulation_steps = 1
    _accumulated = 0
    _images = 0
    _group = 1
    _batches_left = None
    #: Whether the optimizer stepped after the last training batch: always, except
    #: inside a group of accumulated batches. Callbacks that act once per step (the
    #: weight average, the one-cycle schedule) read it.
    optimizer_stepped = True

    def predicting_with(self, **settings: Any) -> InferenceModeNet:
        """A shallow view of this net with ``settings`` (``tta``, loader parameters such
        as ``iterator_valid__num_workers``) for one prediction. The net itself is not
        changed, so threads may predict with it at once."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.__dict__.update(settings)  # plain attributes, not torch components
        return view

    def infer(self, x, **fit_params):
        if self.amp and str(self.device).startswith("cuda"):
            # bfloat16 keeps float32's range, so no loss scaling is needed.
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return super().infer(x, **fit_params).float()
        return super().infer(x, **fit_params)

    def get_dataset(self, X, y=None):
        # What skorch's scoring without caching passes back: the X of an image dataset
        # (a (N, C, H, W) tensor, or LazyImages), to batch as the dataset did.
        if isinstance(X, torch.Tensor) and X.ndim == 4:
            return ImageTensorDataset(X, None if y is None else torch.as_tensor(y))
        if isinstance(X, LazyImages):
            return LazyImageDataset(X, None if y is None else torch.as_tensor(y))
        return super().get_dataset(X, y)

    def train_step(self, batch, **fit_params):
        # Mixed once per step: optimizers such as LBFGS evaluate the step's closure
        # (train_step_single) several times, on the same batch.
        batch = self.mixed(batch)
        if self.accumulation_steps == 1:
            return super().train_step(batch, **fit_params)
        if self._accumulated == 0:
            self._zero_grad_optimizer()
            left = self._batches_left
            # An epoch's last group may be shorter: it steps after the epoch's last batch.
            self._group = (
                self.accumulation_steps if left is None else min(self.accumulation_steps, left)
            )
            self._images = 0
        step = self.train_step_single(batch, **fit_params)
        self._accumulated += 1
        if self._batches_left is not None:
            self._batches_left -= 1
        self.optimizer_stepped = self._accumulated == self._group
        if self.optimizer_stepped:
            # The gradient of the loss summed over the group's images, made their mean:
            # the step of one batch of them all, whatever the sizes of its batches.
            grads = [p.grad for _, p in self.get_all_learnable_params() if p.grad is not None]
            torch._foreach_div_(grads, float(self._images))
            # Callbacks (gradient clipping) see the group's gradient, once per step.
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
            self._step_optimizer(None)
            self._accumulated = 0
        return step

    def train_step_single(self, batch, **fit_params):
        if self.accumulation_steps == 1:
            return super().train_step_single(batch, **fit_params)
        # skorch's, with the batch's mean loss times its images (their summed loss) for
        # the backward pass; the history records the batch's own loss.
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        (loss * len(Xi)).backward()
        self._images += len(Xi)
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if not (training and iterator is not None and self.accumulation_steps > 1):
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        # Each epoch starts a new group (a diverged one left its group unfinished) and
        # steps after its last batch.
        self._accumulated, self._batches_left = 0, len(iterator)
        try:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        finally:
            self._batches_left = None

    def mixed(self, batch):
        """A training batch mixed as ``mix`` says, on the training device (callbacks
        are given the batch as it was)."""
        if self.mix is None:
            return batch
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=net_device(self))
        return mix_batch(Xi, yi, self.mix, self.mix_alpha)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(y_true, MixedTargets):
            own = self.get_loss(y_pred, y_true.y, X=X, training=training)
            partner = self.get_loss(y_pred, y_true.partner, X=X, training=training)
            return y_true.lam * own + (1.0 - y_true.lam) * partner
        if not isinstance(y_true, WeightedTargets):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        # Weights per image (fit's sample_weight), scaled to a mean of 1 over the
        # training images: with equal weights this is the criterion's own mean, which
        # divides by the class weights of the batch's labels (or their count).
        criterion = self.criterion_
        y, weight = (to_tensor(t, device=self.device) for t in y_true)
        losses = F.cross_entropy(
            y_pred,
            y,
            weight=criterion.weight,
            label_smoothing=criterion.label_smoothing,
            reduction="none",
        )
        total = criterion.weight[y].sum() if criterion.weight is not None else len(y)
        return (losses * weight).sum() / total

    def notify(self, method_name, **cb_kwargs):
        # Callbacks (skorch's scoring among them) see a batch's labels, not its weights.
        batch = cb_kwargs.get("batch")
        if batch is not None and isinstance(batch[1], WeightedTargets):
            cb_kwargs["batch"] = (batch[0], batch[1].y)
        return super().notify(method_name, **cb_kwargs)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch ends training quietly on Ctrl-C; remember it so the classifier can
        # say so and restore the best weights.
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch's EarlyStopping stops training with KeyboardInterrupt too.
            self.interrupted_ = not any(
                isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
                for _, cb in self.callbacks_
            )
            return self

    def __getstate__(self):
        optimizer = self.__dict__.get("optimizer_")
        optimizer_state = getattr(optimizer, "state", None)
        try:
            if optimizer is not None:
                optimizer.state = defaultdict(dict)
            state = super().__getstate__()  # pickles module_, optimizer_, criterion_
        finally:
            if optimizer is not None:
                optimizer.state = optimizer_state
        light: dict[int, Any] = {}
        for key in ("callbacks", "callbacks_"):
            if isinstance(state.get(key), list):
                state[key] = [_without_training_state(item, light) for item in state[key]]
        if "module_" in self.__dict__:
            state["module"] = None  # the same network as module_, restored on load
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if self.__dict__.get("module") is None and "module_" in self.__dict__:
            self.module = self.module_

    def evaluation_step(self, batch, training=False):
        if training:
            return super().evaluation_step(batch, training=True)
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        self._set_training(False)
        with torch.inference_mode():
            return average_over_views(self.infer, Xi, self.tta)


class AcceleratedImageNet(AccelerateMixin, InferenceModeNet):
    """:class:`InferenceModeNet` trained through Hugging Face ``accelerate`` (skorch's
    ``AccelerateMixin``): devices, mixed precision and, under ``accelerate launch`` or
    ``torchrun``, data-parallel training with each process on its share of the batches.

    Two changes to skorch's mixin: criteria without parameters are not prepared
    (``accelerate`` would wrap them in ``DistributedDataParallel``, which refuses
    modules without parameters), and the modules are unwrapped after the callbacks'
    ``on_train_end``, so callbacks that restore weights (``EarlyStopping``) load them
    into the network they were taken from.
    """

    def _initialize_accelerator(self):
        criteria = {}
        for name in self._criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, nn.Module) and not any(
                p.requires_grad for p in criterion.parameters()
            ):
                criteria[name] = criterion
                setattr(self, name + "_", None)
        try:
            return super()._initialize_accelerator()
        finally:
            for name, criterion in criteria.items():
                setattr(self, name + "_", criterion)

    def _initialize_callbacks(self):
        # skorch's mixin prints the epoch log through accelerator.print whatever
        # verbose says; keep verbose=0 quiet.
        if self.callbacks__print_log__sink == "auto" and not self.verbose:
            self.callbacks__print_log__sink = _silent
        return super()._initialize_callbacks()

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        # With the accelerator's own gradient accumulation, its optimizer steps only
        # where it synchronises the gradients.
        self.optimizer_stepped = self.accelerator.sync_gradients
        return step

    def notify(self, method_name, **cb_kwargs):
        if method_name == "on_grad_computed" and not self.accelerator.sync_gradients:
            return  # a partial sum of the accelerator's accumulation: not clipped yet
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_end":
            self._unwrap_accelerator()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        if not self._wrapped_with_accelerator:
            # This net trains again (skorch's partial_fit on net_ after a fit or a
            # load; sklimg's own warm starts build a new net): the modules were
            # unwrapped, so wrap them again to keep processes synchronising gradients.
            for name in self._modules:
                module = getattr(self, name + "_")
                if isinstance(module, nn.Module):
                    setattr(self, name + "_", self.accelerator.prepare(module))
            self._wrapped_with_accelerator = True
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def __getstate__(self):
        # An Accelerator, and the optimizer wrapper it patches, do not pickle: keep the
        # plain optimizer; a loaded model predicts on one device (see
        # ImageClassifier's accelerator parameter).
        optimizer = self.__dict__.get("optimizer_")
        if optimizer is not None and hasattr(optimizer, "optimizer"):
            self.__dict__["optimizer_"] = optimizer.optimizer
        try:
            state = super().__getstate__()
        finally:
            if optimizer is not None:
                self.__dict__["optimizer_"] = optimizer
        state["accelerator"] = None
        # Where the tensors were, so that skorch maps them to a device that exists.
        state["device"] = str(self.accelerator.device)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.device = None  # the accelerator places modules and batches
        if self.accelerator is None:
            from accelerate import Accelerator

            self.accelerator = Accelerator()


def bare_module(net) -> nn.Module:
    """``net.module_`` without the wrapper ``accelerate`` puts around it while training
    (``DistributedDataParallel`` keeps the network as ``.module``)."""
    accelerator = getattr(net, "accelerator", None)
    if accelerator is None:
        return net.module_
    return accelerator.unwrap_model(net.module_, keep_fp32_wrapper=True)


def net_device(net):
    """Where the net's inputs go: its ``device``, or the accelerator's."""
    accelerator = getattr(net, "accelerator", None)
    return accelerator.device if accelerator is not None else net.device


class PreciseBatchNorm(Callback):
    """Recompute BatchNorm running statistics on training images when training ends.

    Running statistics are an exponential average that lags the weights: after few
    steps (small data, few epochs) they still remember the initialisation, and a
    network that fits its training set well predicts at chance in eval mode. Averaging
    the batch statistics of the final weights over up to ``max_images`` training
    images ("precise BN", Wu & Johnson 2021) costs one forward pass over them and
    removes the lag. BatchNorm layers whose parameters are frozen keep their statistics.

    Parameters
    ----------
    max_images : int, default=2048
        Training images to average over.
    """

    def __init__(self, max_images: int = 2048) -> None:
        self.max_images = max_images

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        # A partial_fit call sees only its part of the data: statistics recomputed on it
        # would replace what the earlier calls learned, so the running averages stay.
        if X is None or getattr(net, "incremental", False):
            return
        train_set, _ = net.get_split_datasets(X, y)
        loader_params = {**net.get_params_for("iterator_train"), "batch_size": net.batch_size}
        device = net_device(net)
        batches = (to_device(xb, device) for xb, _ in ImageBatchLoader(train_set, **loader_params))
        module = bare_module(net)
        recompute_batchnorm_stats(
            module,
            batches,
            layers=trainable_batchnorms(module),
            max_images=self.max_images,
        )


class WeightAverage(Callback):
    """An exponential moving average (EMA) of the weights, which is the network between
    epochs and after training (timm's ``ModelEma``; Polyak averaging).

    After every training step the average moves towards the weights by ``1 - decay``
    (through torch's ``AveragedModel``, BatchNorm statistics included). At the end of
    each epoch's training steps the average takes the weights' place, so validation
    scores it, and early stopping, checkpoints and the other callbacks see it; the
    next epoch trains on from the weights themselves. The decay warms up as
    ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates (TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``), so that the first steps, from a
    random initialisation, are forgotten in short runs too.

    Parameters
    ----------
    decay : float
        Share of the average kept at each step, in (0, 1).
    """

    #: Left out of pickles (see InferenceModeNet): a second and a third copy of the
    #: weights. A loaded model trains on from the average it holds.
    training_only_attributes = ("average_", "raw_")

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def initialize(self):
        self.average_ = None  # AveragedModel
        self.updates_ = 0
        self.raw_ = None  # the weights themselves, while the average stands in for them
        return self

    def on_train_begin(self, net, **kwargs) -> None:
        if self.average_ is None:
            self.average_ = AveragedModel(
                _averaged_part(net), multi_avg_fn=self._blend, use_buffers=True
            )

    def _blend(self, averaged: list, current: list, num_averaged) -> None:
        # Called once per dtype; num_averaged is a tensor on the device, which reading
        # would synchronise, so the steps are counted in on_batch_end.
        decay = min(self.decay, (1 + self.updates_) / (10 + self.updates_))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - decay)
        else:  # counters such as BatchNorm's num_batches_tracked
            torch._foreach_copy_(averaged, current)

    def on_epoch_begin(self, net, **kwargs) -> None:
        self._stand_in(net, average=False)

    def on_batch_begin(self, net, training=False, **kwargs) -> None:
        if not training:  # validation scores the average
            self._stand_in(net, average=True)

    def on_batch_end(self, net, training=False, **kwargs) -> None:
        # Once per optimizer step: with gradient accumulation, not after every batch.
        if training and getattr(net, "optimizer_stepped", True):
            self.updates_ += 1
            self.average_.update_parameters(_averaged_part(net))

    def on_epoch_end(self, net, **kwargs) -> None:
        self._stand_in(net, average=True)

    def on_train_end(self, net, **kwargs) -> None:
        self._stand_in(net, average=True)

    def _stand_in(self, net, *, average: bool) -> None:
        """Put the average in the network (keeping the weights aside), or the weights
        back."""
        module = _averaged_part(net)
        if average and self.raw_ is None:
            self.raw_ = _state_copy(module)
            module.load_state_dict(self.average_.module.state_dict())
        elif not average and self.raw_ is not None:
            module.load_state_dict(self.raw_)
            self.raw_ = None

    def checkpoint_state(self) -> dict:
        """What a checkpoint needs to resume averaging: the weights themselves (the
        network holds the average at the end of an epoch) and the number of updates."""
        return {"weights": self.raw_, "updates": self.updates_}

    def carry_over(self, net, previous: WeightAverage) -> None:
        """Go on with ``previous``'s average, the weights it kept aside and its count,
        when a new net trains the same network (a warm start, or partial_fit after fit
        or after set_params): what was averaged is not thrown away."""
        if previous.average_ is None:
            return
        part = _averaged_part(net)
        if previous.average_.module.state_dict().keys() != part.state_dict().keys():
            return  # another part is averaged now (e.g. cached features, or no longer)
        self.average_, self.updates_, self.raw_ = (
            previous.average_,
            previous.updates_,
            previous.raw_,
        )

    def restore(self, net, state: dict) -> None:
        """Resume from :meth:`checkpoint_state`, the network holding the average."""
        self.on_train_begin(net)
        self.average_.module.load_state_dict(_averaged_part(net).state_dict())
        self.average_.n_averaged.fill_(max(1, state["updates"]))
        self.updates_ = state["updates"]
        self.raw_ = state["weights"]


def _averaged_part(net) -> nn.Module:
    """What :class:`WeightAverage` averages: the network, or only its head when that
    trains alone on cached features (averaging a frozen backbone at every step would
    cost more than the step)."""
    module = bare_module(net)
    return module.network.head if isinstance(module, HeadOnly) else module


def weight_average(net) -> WeightAverage | None:
    """The net's :class:`WeightAverage` callback, or None."""
    for _, callback in getattr(net, "callbacks_", ()):
        if isinstance(callback, WeightAverage):
            return callback
    return None


class UnfreezeBackbone(Callback):
    """Train the head alone for ``after`` epochs, then the whole network.

    Parameters
    ----------
    after : int
        Epochs with the backbone frozen.
    """

    def __init__(self, after: int) -> None:
        self.after = after

    def on_epoch_begin(self, net, **kwargs) -> None:
        if len(net.history) == self.after + 1:  # the row of the epoch starting now
            bare_module(net).freeze_backbone(False)


class TrainingGuard(Callback):
    """Lose nothing: best and last weights, divergence detection, atomic checkpoints.

    - After every epoch, keeps the last weights and the best ones (lowest validation
      loss, or training loss without a validation split) in memory, and with a
      ``checkpoint_dir`` writes ``last.pt`` (weights, optimizer, history) and
      ``best.pt`` atomically (a temporary file, then a rename).
    - A NaN or infinite training loss restores the last good weights and raises
      :class:`~sklimg.exceptions.TrainingDivergedError` naming the epoch.
    - After Ctrl-C (``KeyboardInterrupt``), restores the best weights so far.

    Parameters
    ----------
    checkpoint_dir : str or None
    tag : str
        A digest of the configuration, stored with the checkpoint, so resuming with
        another configuration is refused.
    """

    def __init__(self, checkpoint_dir: str | None = None, tag: str = "") -> None:
        self.checkpoint_dir = checkpoint_dir
        self.tag = tag

    def initialize(self):
        self.snapshots_ = None
        self.best_score_ = np.inf
        return self

    def on_train_begin(self, net, **kwargs) -> None:
        if self.snapshots_ is None:
            self.snapshots_ = {"last": _state_copy(bare_module(net)), "best": None}
        for row in net.history:  # a warm start or resume continues the record
            self.best_score_ = min(self.best_score_, _score(row))

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs) -> None:
        if training and loss is not None and not bool(torch.isfinite(loss.detach()).all()):
            self._diverged(net, f"The training loss became {float(loss.detach())}")

    def _diverged(self, net, what: str) -> None:
        """Restore the last good weights and raise TrainingDivergedError."""
        bare_module(net).load_state_dict(self.snapshots_["last"])
        # The optimizer's moments and the weight average may hold NaN too: later
        # training (partial_fit's next call) starts them afresh from the weights kept.
        for name in net._optimizers:
            getattr(net, name + "_").state.clear()
        average = weight_average(net)
        if average is not None:
            average.initialize()
        epoch = len(net.history)
        raise TrainingDivergedError(
            f"{what} in epoch {epoch}. The classifier keeps the weights from the end of "
            f"epoch {epoch - 1}. Lower the learning rate (lr={net.lr}), or set "
            f"gradient_clip=1.0, and fit again."
        )

    def on_epoch_end(self, net, **kwargs) -> None:
        state = _state_copy(bare_module(net))
        # A step can overflow the weights while every loss was finite (the last one of
        # the epoch, before the step): such weights must not become the "last good".
        if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
            self._diverged(net, "The weights became infinite or NaN")
        self.snapshots_["last"] = state
        score = _score(net.history[-1])
        improved = score < self.best_score_
        if improved:
            self.best_score_ = score
            self.snapshots_["best"] = self.snapshots_["last"]
        accelerator = getattr(net, "accelerator", None)
        main_process = accelerator is None or accelerator.is_main_process
        if self.checkpoint_dir is not None and main_process:
            folder = Path(self.checkpoint_dir)
            folder.mkdir(parents=True, exist_ok=True)
            checkpoint = {
                "module": self.snapshots_["last"],
                "optimizer": net.optimizer_.state_dict(),
                "history": plain_history(net.history),
                "tag": self.tag,
            }
            average = weight_average(net)
            if average is not None:
                checkpoint["average"] = average.checkpoint_state()
            _atomic_save(checkpoint, folder / "last.pt")
            if improved:
                _atomic_save(
                    {"module": self.snapshots_["best"], "tag": self.tag}, folder / "best.pt"
                )

    def on_train_end(self, net, **kwargs) -> None:
        if getattr(net, "interrupted_", False) and self.snapshots_["best"] is not None:
            bare_module(net).load_state_dict(self.snapshots_["best"])


def plain_history(history) -> list:
    """A skorch History as plain lists, dicts and numbers (numpy scalars converted), so
    it can be stored without pickle (JSON, weights-only checkpoints)."""
    return json.loads(json.dumps(history.to_list(), default=_plain))


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"history holds a {type(value).__name__}, which cannot be stored")


def _score(row: dict) -> float:
    value = row.get("valid_loss", row.get("train_loss"))
    return float(value) if value is not None and np.isfinite(value) else np.inf


def _state_copy(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def takes_keyword(function, name: str) -> bool:
    """Whether ``function`` (or a class's ``__init__``) accepts the keyword ``name``."""
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


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


def load_checkpoint(folder: str | os.PathLike) -> dict | None:
    """The ``last.pt`` checkpoint in ``folder`` (weights-only unpickling), or None."""
    path = Path(folder) / "last.pt"
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged, or not written by sklimg
        raise ValueError(
            f"{str(path)!r} is not a readable sklimg checkpoint ({type(exc).__name__}). "
            f"Delete it to start afresh, or use another checkpoint_dir."
        ) from None
    if not isinstance(checkpoint, dict) or not {"module", "optimizer", "history", "tag"} <= set(
        checkpoint
    ):
        raise ValueError(
            f"{str(path)!r} is not an sklimg checkpoint. Delete it to start afresh, or use "
            f"another checkpoint_dir."
        )
    return checkpoint


def _without_training_state(item, memo: dict):
    """A callback (or (name, callback) pair) copied without training-only attributes."""
    if isinstance(item, tuple):
        return (item[0], _without_training_state(item[1], memo))
    names = (*_TRAINING_ONLY_ATTRIBUTES, *getattr(item, "training_only_attributes", ()))
    heavy = [n for n in names if getattr(item, n, None) is not None]
    if not heavy:
        return item
    if id(item) not in memo:
        copied = copy.copy(item)
        for name in heavy:
            setattr(copied, name, None)
        memo[id(item)] = copied
    return memo[id(item)]


def _silent(*args, **kwargs) -> None:
    return None


_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _print_epoch_row(text: str) -> None:
    """``print`` for skorch's epoch table, without the colour codes it puts around
    each best value where they would show as raw escapes: in a pipe or a log file
    (notebooks render them), or when ``NO_COLOR`` is set."""
    plain = not sys.stdout.isatty() and "ipykernel" not in sys.modules
    if plain or os.environ.get("NO_COLOR"):
        text = _ANSI_CODE.sub("", text)
    print(text, flush=True)


@dataclass
class TrainingPlan:
    """Everything :func:`build_net` needs, resolved by the classifier from its params."""

    n_classes: int
    device: str
    lr: float = 2e-3
    optimizer: Any = "adamw"
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    max_epochs: int = 15
    batch_size: int = 64
    predict_batch_size: int = 256
    class_weights: np.ndarray | None = None
    label_smoothing: float = 0.0
    ema_decay: float | None = None
    mix: str | None = None
    mix_alpha: float | None = None
    gradient_accumulation_steps: int = 1
    gradient_clip: float | None = None
    validation_fraction: float | None = None
    early_stopping: bool = False
    patience: int = 5
    seed: int = 0
    verbose: int = 0
    num_workers: int = 0
    expected_shape: tuple[int, ...] | None = None
    backbone_lr_scale: float = 1.0
    unfreeze_after: int | None = None
    steps_per_epoch: int = 1
    first_epoch: int = 0
    amp: bool = False
    compile: bool = False
    accelerator: Any = None
    checkpoint_dir: str | None = None
    checkpoint_tag: str = ""
    callbacks: list = field(default_factory=list)


def _one_cycle(optimizer, *, peak_lr: float, **kwargs) -> torch.optim.lr_scheduler.OneCycleLR:
    """``OneCycleLR`` peaking at each parameter group's own rate: ``peak_lr`` times the
    group's ``lr_scale`` (as in timm's parameter groups). A single ``max_lr`` would give
    every group the same peak, erasing ``backbone_lr_scale``."""
    max_lr = [peak_lr * group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, **kwargs)


class StepScheduler(LRScheduler):
    """skorch's ``LRScheduler``, stepping per batch only after the optimizer stepped:
    with gradient accumulation, once per group of batches."""

    def on_batch_end(self, net, training, **kwargs):
        if getattr(net, "optimizer_stepped", True):
            super().on_batch_end(net, training, **kwargs)


def _scheduler(plan: TrainingPlan) -> LRScheduler | None:
    # An explicit last_epoch: a new fit (or warm start) starts the schedule afresh,
    # a resumed one continues it (skorch would otherwise continue from the history).
    if plan.lr_schedule == "cosine":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.CosineAnnealingLR,
            T_max=plan.max_epochs,
            last_epoch=plan.first_epoch - 1,
        )
    if plan.lr_schedule == "onecycle":
        # Optimizer steps: an epoch's batches (each process's share of them, which
        # accelerate evens out, unless it splits every batch between the processes) in
        # groups of the accumulation's size (sklimg's or the accelerator's; either
        # steps after an epoch's last batch).
        batches, accumulation = plan.steps_per_epoch, plan.gradient_accumulation_steps
        if plan.accelerator is not None:
            if not plan.accelerator.split_batches:
                batches = -(-batches // plan.accelerator.num_processes)
            accumulation = plan.accelerator.gradient_accumulation_steps
        steps = -(-batches // accumulation)
        return StepScheduler(
            policy=_one_cycle,
            peak_lr=plan.lr,
            epochs=plan.max_epochs,
            steps_per_epoch=steps,
            last_epoch=plan.first_epoch * steps - 1,
            step_every="batch",
        )
    return None


def build_net(module: nn.Module, plan: TrainingPlan) -> NeuralNetClassifier:
    """Configure the skorch net that trains ``module``; see :class:`ImageClassifier`."""
    if isinstance(plan.optimizer, str):
        optimizer_cls, optimizer_kwargs = OPTIMIZERS[plan.optimizer]
    else:
        optimizer_cls, optimizer_kwargs = plan.optimizer, {}
    callbacks: list[tuple[str, Any]] = []
    if plan.ema_decay is not None:
        # First: at the end of an epoch, the callbacks after it see the average.
        callbacks.append(("weight_average", WeightAverage(plan.ema_decay)))
    scheduler = _scheduler(plan)
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    if plan.gradient_clip is not None:
        callbacks.append(("gradient_clip", GradientNormClipping(plan.gradient_clip)))
    if plan.early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=plan.patience,
                    load_best=True,
                    sink=print if plan.verbose else _silent,
                ),
            )
        )
    if plan.unfreeze_after is not None:
        callbacks.append(("unfreeze_backbone", UnfreezeBackbone(plan.unfreeze_after)))
    callbacks.append(("guard", TrainingGuard(plan.checkpoint_dir, plan.checkpoint_tag)))
    callbacks.append(("precise_bn", PreciseBatchNorm()))
    if plan.verbose >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.extend(
        item if isinstance(item, tuple) else (f"user_{i}", item)
        for i, item in enumerate(plan.callbacks)
    )
    extra: dict[str, Any] = {f"optimizer__{k}": v for k, v in optimizer_kwargs.items()}
    if plan.weight_decay or takes_keyword(optimizer_cls, "weight_decay"):
        # e.g. LBFGS has none (the classifier refuses a non-zero weight_decay for it).
        extra["optimizer__weight_decay"] = plan.weight_decay
    if plan.backbone_lr_scale != 1.0:
        extra["optimizer__param_groups"] = [
            (
                "backbone.*",
                {"lr": plan.lr * plan.backbone_lr_scale, "lr_scale": plan.backbone_lr_scale},
            )
        ]
    if plan.class_weights is not None:
        extra["criterion__weight"] = torch.as_tensor(plan.class_weights, dtype=torch.float32)
    if plan.accelerator is None:
        net_cls, iterator = InferenceModeNet, ImageBatchLoader
        placement: dict[str, Any] = {
            "device": plan.device,
            # skorch calls any sink but print whatever verbose says.
            "callbacks__print_log__sink": _print_epoch_row if plan.verbose else _silent,
        }
    else:
        # accelerate places modules and batches; its DataLoaders shard the batches.
        net_cls, iterator = AcceleratedImageNet, image_data_loader
        placement = {"device": None, "accelerator": plan.accelerator, "unwrap_after_train": False}
    net = net_cls(
        module=module,
        criterion=nn.CrossEntropyLoss,
        criterion__label_smoothing=plan.label_smoothing,
        optimizer=optimizer_cls,
        lr=plan.lr,
        max_epochs=plan.max_epochs,
        batch_size=plan.batch_size,
        iterator_train=iterator,
        iterator_valid=iterator,
        iterator_train__shuffle=True,
        iterator_train__drop_singleton=True,
        iterator_valid__batch_size=plan.predict_batch_size,
        **{
            f"{iterator}__{key}": value
            for iterator in ("iterator_train", "iterator_valid")
            for key, value in (
                ("num_workers", plan.num_workers),
                ("expected_shape", plan.expected_shape),
                ("pin_memory", plan.device.startswith("cuda")),
            )
        },
        train_split=(
            ValidSplit(plan.validation_fraction, stratified=True, random_state=plan.seed)
            if plan.validation_fraction
            else None
        ),
        callbacks=callbacks,
        classes=np.arange(plan.n_classes),
        compile=plan.compile,
        verbose=plan.verbose,
        **placement,
        **extra,
    )
    net.amp = plan.amp
    net.mix, net.mix_alpha = plan.mix, plan.mix_alpha
    net.accumulation_steps = plan.gradient_accumulation_steps
    return net
