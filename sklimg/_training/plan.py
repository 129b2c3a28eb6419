"""How a run trains: the :class:`TrainingPlan`, the optimizers, the learning-rate
schedule, and :func:`build_net`, which turns a plan into the skorch net.

The neural route (:mod:`sklimg._fit.neural`) fills the plan from the classifier's
parameters and what the fit resolved; everything the net is built with is in it, so a
run is described by one value. :func:`lr_scheduler` is the one place where the
learning-rate schedule of a run is decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, GradientNormClipping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from torch import nn

from sklimg._torch_data import ImageBatchLoader, image_data_loader, n_batches
from sklimg._training.callbacks import (
    PreciseBatchNorm,
    StepScheduler,
    TrainingGuard,
    UnfreezeBackbone,
    WeightAverage,
)
from sklimg._training.net import AcceleratedImageNet, InferenceModeNet, print_epoch_row, silent
from sklimg.utils._introspection import takes_keyword

__all__ = ["OPTIMIZERS", "PURPOSES", "TrainingPlan", "build_net", "lr_scheduler"]

#: Optimizer names accepted by ``ImageClassifier(optimizer=...)`` and their defaults.
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "adamw": (torch.optim.AdamW, {}),
    "adam": (torch.optim.Adam, {}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}

#: What a net is built for: a fit, one partial_fit call, the learning-rate range test,
#: or predicting with a loaded model.
PURPOSES = ("fit", "partial_fit", "range_test", "predict")


@dataclass(frozen=True)
class TrainingPlan:
    """Everything :func:`build_net` needs, resolved from the classifier's parameters."""

    n_classes: int
    device: str
    purpose: str = "fit"
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
    #: ``(train, valid)`` indices held out by group (fit's ``groups``); ``None``: a
    #: stratified ``validation_fraction``, split by skorch.
    validation_split: tuple[np.ndarray, np.ndarray] | None = None
    early_stopping: bool = False
    patience: int = 5
    seed: int = 0
    verbose: int = 0
    num_workers: int = 0
    expected_shape: tuple[int, ...] | None = None
    backbone_lr_scale: float = 1.0
    unfreeze_after: int | None = None
    #: Images an epoch trains on (the validation split left out), for schedules that
    #: step per batch.
    train_images: int = 0
    #: Epochs already done by the run this one resumes (a checkpoint's).
    first_epoch: int = 0
    amp: bool = False
    compile: bool = False
    accelerator: Any = None
    checkpoint_dir: str | None = None
    checkpoint_tag: str = ""
    callbacks: list = field(default_factory=list)
    #: For partial_fit nets: the classifier's training settings they were built with.
    incremental: dict | bool = False


def _train_split(plan: TrainingPlan) -> ValidSplit | None:
    """skorch's split of the training images: the grouped indices given, a stratified
    fraction, or none."""
    if plan.validation_split is not None:
        return ValidSplit([plan.validation_split])  # one (train, valid) split, as given
    if plan.validation_fraction:
        return ValidSplit(plan.validation_fraction, stratified=True, random_state=plan.seed)
    return None


def _one_cycle(optimizer, *, peak_lr: float, **kwargs) -> torch.optim.lr_scheduler.OneCycleLR:
    """``OneCycleLR`` peaking at each parameter group's own rate: ``peak_lr`` times the
    group's ``lr_scale`` (as in timm's parameter groups). A single ``max_lr`` would give
    every group the same peak, erasing ``backbone_lr_scale``."""
    max_lr = [peak_lr * group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, **kwargs)


def optimizer_steps_per_epoch(plan: TrainingPlan) -> int:
    """Optimizer steps in an epoch of ``plan``: its training batches (each process's
    share of them, which accelerate evens out, unless it splits every batch between
    the processes) in groups of the accumulation's size (sklimg's or the
    accelerator's; either steps after an epoch's last batch)."""
    batches = n_batches(plan.train_images, plan.batch_size, drop_singleton=True)
    accumulation = plan.gradient_accumulation_steps
    if plan.accelerator is not None:
        if not plan.accelerator.split_batches:
            batches = -(-batches // plan.accelerator.num_processes)
        accumulation = plan.accelerator.gradient_accumulation_steps
    return -(-batches // accumulation)


def lr_scheduler(plan: TrainingPlan) -> LRScheduler | None:
    """The learning-rate schedule of a run, or None for a constant ``lr``.

    Only fits follow ``lr_schedule``: a partial_fit call trains at ``lr`` (a schedule
    needs the number of calls, which only the caller knows), the range test sets the
    rate of each step itself, and a net for prediction does not train. A new fit (or
    warm start) starts the schedule afresh and a resumed one continues it, from its
    ``first_epoch`` (skorch would otherwise continue from the history).
    """
    if plan.purpose != "fit" or plan.lr_schedule == "constant":
        return None
    if plan.lr_schedule == "cosine":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.CosineAnnealingLR,
            T_max=plan.max_epochs,
            last_epoch=plan.first_epoch - 1,
        )
    steps = optimizer_steps_per_epoch(plan)  # "onecycle", stepped per optimizer step
    return StepScheduler(
        policy=_one_cycle,
        peak_lr=plan.lr,
        epochs=plan.max_epochs,
        steps_per_epoch=steps,
        last_epoch=plan.first_epoch * steps - 1,
        step_every="batch",
    )


def _callbacks(plan: TrainingPlan) -> list[tuple[str, Any]]:
    """sklimg's callbacks for ``plan``, in the order they run, then the user's."""
    callbacks: list[tuple[str, Any]] = []
    if plan.ema_decay is not None:
        # First: at the end of an epoch, the callbacks after it see the average.
        callbacks.append(("weight_average", WeightAverage(plan.ema_decay)))
    scheduler = lr_scheduler(plan)
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    if plan.gradient_clip is not None:
        callbacks.append(("gradient_clip", GradientNormClipping(plan.gradient_clip)))
    if plan.early_stopping:
        stopping = EarlyStopping(
            monitor="valid_loss",
            patience=plan.patience,
            load_best=True,
            sink=print if plan.verbose else silent,
        )
        callbacks.append(("early_stopping", stopping))
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
    return callbacks


def build_net(module: nn.Module, plan: TrainingPlan) -> InferenceModeNet:
    """The skorch net that trains (and predicts with) ``module`` as ``plan`` says.

    Parameters
    ----------
    module : torch.nn.Module
        The network, or a :class:`~sklimg._network.HeadOnly` view of it.
    plan : TrainingPlan

    Returns
    -------
    net : InferenceModeNet or AcceleratedImageNet
        Not initialised.
    """
    if isinstance(plan.optimizer, str):
        optimizer_cls, optimizer_kwargs = OPTIMIZERS[plan.optimizer]
    else:
        optimizer_cls, optimizer_kwargs = plan.optimizer, {}
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
            "callbacks__print_log__sink": print_epoch_row if plan.verbose else silent,
        }
    else:
        # accelerate places modules and batches; its DataLoaders shard the batches.
        net_cls, iterator = AcceleratedImageNet, image_data_loader
        placement = {"device": None, "accelerator": plan.accelerator, "unwrap_after_train": False}
    return net_cls(
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
        train_split=_train_split(plan),
        callbacks=_callbacks(plan),
        classes=np.arange(plan.n_classes),
        compile=plan.compile,
        verbose=plan.verbose,
        amp=plan.amp,
        mix=plan.mix,
        mix_alpha=plan.mix_alpha,
        accumulation_steps=plan.gradient_accumulation_steps,
        incremental=plan.incremental,
        **placement,
        **extra,
    )
