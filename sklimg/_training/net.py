"""The skorch net sklimg trains and predicts with, and what reads it.

:class:`InferenceModeNet` is skorch's ``NeuralNetClassifier`` with sklimg's training
step (MixUp/CutMix, weights per image, gradient accumulation), prediction under
``torch.inference_mode()`` with test-time augmentation, and small pickles;
:class:`AcceleratedImageNet` trains it through Hugging Face ``accelerate``. Every
setting of its own is a constructor argument, as skorch's are, so ``get_params``,
``set_params`` and ``clone`` see them. :func:`sklimg._training.plan.build_net` builds it.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator, to_tensor
from torch import nn
from torch.nn import functional as F

from sklimg._lazy import LazyImages
from sklimg._mix import MixedTargets, mix_batch
from sklimg._network import HeadOnly
from sklimg._torch_data import ImageTensorDataset, LazyImageDataset, WeightedTargets
from sklimg._tta import average_over_views
from sklimg.exceptions import ImageInputError

__all__ = [
    "AcceleratedImageNet",
    "InferenceModeNet",
    "bare_module",
    "net_device",
    "print_epoch_row",
    "silent",
]

# Callback attributes that only matter during training and would otherwise pickle a
# second copy of the weights (an LR scheduler holds the optimizer; EarlyStopping and
# the guard hold weight snapshots).
_TRAINING_ONLY_ATTRIBUTES = ("lr_scheduler_", "best_model_weights_", "snapshots_")


class InferenceModeNet(NeuralNetClassifier):
    """skorch's classifier, with sklimg's training step, predicting under
    ``torch.inference_mode()``, pickling small.

    ``inference_mode`` skips the version-counter and view tracking that ``no_grad``
    keeps, which makes forward passes faster. Pickles leave out the optimizer's state
    (moments: twice the weights), weight copies held by callbacks and the duplicate of
    the initial module: a loaded model predicts the same and continues training with
    a fresh optimizer state.

    ``X`` for ``fit``, ``predict`` and ``predict_proba`` is what the module takes:
    raw image batches ``(N, C, H, W)`` (``uint8`` 0-255 or float, as a tensor or an
    array), or sklimg's image datasets.

    Parameters
    ----------
    *args, **kwargs
        skorch's ``NeuralNetClassifier`` parameters.
    amp : bool, default=False
        Mixed precision (bfloat16 autocast) on CUDA.
    tta : {None, "flip", "flip_translate"}, default=None
        Test-time augmentation of predictions (see ``sklimg._tta``); validation scores
        during training never use it.
    mix : {None, "mixup", "cutmix", "mixup_cutmix"}, default=None
        MixUp / CutMix of the training batches (see ``sklimg._mix``).
    mix_alpha : float or None, default=None
        Its ``Beta(alpha, alpha)``; ``None``: the method's default.
    accumulation_steps : int, default=1
        Batches whose gradients are summed before each optimizer step.
    incremental : dict or False, default=False
        For a net built by ``ImageClassifier.partial_fit`` (one epoch per call, the
        optimizer's state kept between calls): the classifier's training settings it
        was built with. ``False`` for nets built by ``fit``.

    Attributes
    ----------
    optimizer_stepped_ : bool
        Whether the optimizer stepped after the last training batch: always, except
        inside a group of accumulated batches. Callbacks that act once per step (the
        weight average, the one-cycle schedule) read it.
    interrupted_ : bool
        Whether the last ``fit_loop`` was stopped by Ctrl-C.
    """

    interrupted_ = False
    optimizer_stepped_ = True
    # Gradient accumulation while it runs: the batches of the current group done and
    # their images, the group's size in batches, and the training batches of the epoch
    # still to come (None outside an epoch's loop: find_lr's steps).
    accumulated_ = 0
    group_images_ = 0
    group_size_ = 1
    batches_left_ = None

    def __init__(
        self,
        module,
        *args,
        amp=False,
        tta=None,
        mix=None,
        mix_alpha=None,
        accumulation_steps=1,
        incremental=False,
        **kwargs,
    ):
        super().__init__(module, *args, **kwargs)
        self.amp = amp
        self.tta = tta
        self.mix = mix
        self.mix_alpha = mix_alpha
        self.accumulation_steps = accumulation_steps
        self.incremental = incremental

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
        if isinstance(X, (ImageTensorDataset, LazyImageDataset)):
            return X
        labels = None if y is None else torch.as_tensor(np.asarray(y))
        # skorch's scoring without caching passes back the X of an image dataset: a
        # tensor, or LazyImages.
        if isinstance(X, LazyImages):
            return LazyImageDataset(X, labels)
        if isinstance(X, (torch.Tensor, np.ndarray)):
            X = torch.as_tensor(X)
            # Images are checked; fewer dimensions are features (a head training on
            # cached ones) or stand-ins (skorch's split of a placeholder array).
            if X.ndim >= 3 and not isinstance(self.__dict__.get("module_"), HeadOnly):
                self._check_batches(X)
            return ImageTensorDataset(X.contiguous(), labels)
        return super().get_dataset(X, y)

    def _check_batches(self, X: torch.Tensor) -> None:
        """Raise unless ``X`` holds image batches as the module takes them: ``(N, C, H,
        W)``, of the shape the net was built for."""
        expected = self.get_params_for("iterator_valid").get("expected_shape")
        shape = tuple(X.shape[1:])
        if X.ndim == 4 and (expected is None or shape == tuple(expected)):
            return
        wanted = "(N, C, H, W)" if expected is None else f"(N, {', '.join(map(str, expected))})"
        hint = ""
        if expected is not None and shape == (*expected[1:], expected[0]):
            hint = " These look channels last: np.moveaxis(X, -1, 1) gives the module's layout."
        raise ImageInputError(
            f"This net takes image batches as its module does, {wanted} (N images, "
            f"channels first, uint8 0-255 or float); got shape {tuple(X.shape)}.{hint} "
            f"The classifier's own methods (clf.predict_proba(X)) take images as fit "
            f"took them."
        )

    def train_step(self, batch, **fit_params):
        # Mixed once per step: optimizers such as LBFGS evaluate the step's closure
        # (train_step_single) several times, on the same batch.
        batch = self.mixed(batch)
        if self.accumulation_steps == 1:
            return super().train_step(batch, **fit_params)
        if self.accumulated_ == 0:
            self._zero_grad_optimizer()
            left = self.batches_left_
            # An epoch's last group may be shorter: it steps after the epoch's last batch.
            self.group_size_ = (
                self.accumulation_steps if left is None else min(self.accumulation_steps, left)
            )
            self.group_images_ = 0
        step = self.train_step_single(batch, **fit_params)
        self.accumulated_ += 1
        if self.batches_left_ is not None:
            self.batches_left_ -= 1
        self.optimizer_stepped_ = self.accumulated_ == self.group_size_
        if self.optimizer_stepped_:
            # The gradient of the loss summed over the group's images, made their mean:
            # the step of one batch of them all, whatever the sizes of its batches.
            grads = [p.grad for _, p in self.get_all_learnable_params() if p.grad is not None]
            torch._foreach_div_(grads, float(self.group_images_))
            # Callbacks (gradient clipping) see the group's gradient, once per step.
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
            self._step_optimizer(None)
            self.accumulated_ = 0
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
        self.group_images_ += len(Xi)
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if not (training and iterator is not None and self.accumulation_steps > 1):
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        # Each epoch starts a new group (a diverged one left its group unfinished) and
        # steps after its last batch.
        self.accumulated_, self.batches_left_ = 0, len(iterator)
        try:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        finally:
            self.batches_left_ = None

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
        finally:
            # Predictions run in eval mode; so does a user's own forward pass after
            # training (in train mode it would update BatchNorm statistics).
            if "module_" in self.__dict__:
                self.module_.eval()

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
            self.callbacks__print_log__sink = silent
        return super()._initialize_callbacks()

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        # With the accelerator's own gradient accumulation, its optimizer steps only
        # where it synchronises the gradients.
        self.optimizer_stepped_ = self.accelerator.sync_gradients
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


def silent(*args, **kwargs) -> None:
    """A sink that prints nothing (skorch calls any sink but ``print`` whatever
    ``verbose`` says)."""
    return None


_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def print_epoch_row(text: str) -> None:
    """``print`` for skorch's epoch table, without the colour codes it puts around
    each best value where they would show as raw escapes: in a pipe or a log file
    (notebooks render them), or when ``NO_COLOR`` is set."""
    plain = not sys.stdout.isatty() and "ipykernel" not in sys.modules
    if plain or os.environ.get("NO_COLOR"):
        text = _ANSI_CODE.sub("", text)
    print(text, flush=True)
