"""The skorch side: optimizer, callbacks and the ``NeuralNetClassifier`` that trains.

:class:`ImageClassifier` wraps (does not subclass) skorch; this module builds the net it
keeps as ``net_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit, unpack_data
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sklimg._network import trainable_batchnorms
from sklimg._torch_data import ImageBatchLoader

__all__ = ["OPTIMIZERS", "build_net"]

#: Optimizer names accepted by ``ImageClassifier(optimizer=...)`` and their defaults.
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "adamw": (torch.optim.AdamW, {}),
    "adam": (torch.optim.Adam, {}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}


class InferenceModeNet(NeuralNetClassifier):
    """skorch's classifier with prediction under ``torch.inference_mode()``.

    ``inference_mode`` skips the version-counter and view tracking that ``no_grad``
    keeps, which makes forward passes faster; skorch's training path is unchanged.
    """

    def evaluation_step(self, batch, training=False):
        if training:
            return super().evaluation_step(batch, training=True)
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        self._set_training(False)
        with torch.inference_mode():
            return self.infer(Xi)


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
        all_bn = [m for m in net.module_.modules() if isinstance(m, _BatchNorm)]
        layers = trainable_batchnorms(net.module_)
        if not layers or X is None:
            return
        train_set, _ = net.get_split_datasets(X, y)
        momenta = [m.momentum for m in layers]
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        was_training = net.module_.training
        net.module_.train()
        for m in all_bn:
            if m not in layers:
                m.eval()  # frozen statistics must not move during the pass
        seen = 0
        with torch.no_grad():
            loader_params = {**net.get_params_for("iterator_train"), "batch_size": net.batch_size}
            for xb, _ in ImageBatchLoader(train_set, **loader_params):
                if seen >= self.max_images:
                    break
                if len(xb) > 1:
                    net.module_(xb.to(net.device))
                seen += len(xb)
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        net.module_.train(was_training)


def _silent(*args, **kwargs) -> None:
    return None


def build_net(
    module: nn.Module,
    *,
    n_classes: int,
    class_weights: np.ndarray | None,
    optimizer,
    lr: float,
    weight_decay: float,
    lr_schedule: str,
    max_epochs: int,
    batch_size: int,
    predict_batch_size: int,
    validation_fraction: float | None,
    early_stopping: bool,
    patience: int,
    device: str,
    seed: int,
    verbose: int,
    num_workers: int = 0,
    expected_shape: tuple[int, ...] | None = None,
) -> NeuralNetClassifier:
    """Configure the skorch net that trains ``module``; see :class:`ImageClassifier`."""
    if isinstance(optimizer, str):
        optimizer_cls, optimizer_kwargs = OPTIMIZERS[optimizer]
    else:
        optimizer_cls, optimizer_kwargs = optimizer, {}
    callbacks: list[tuple[str, Any]] = []
    if lr_schedule == "cosine":
        callbacks.append(
            (
                "lr_scheduler",
                LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=max_epochs),
            )
        )
    if early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=patience,
                    load_best=True,
                    sink=print if verbose else _silent,
                ),
            )
        )
    callbacks.append(("precise_bn", PreciseBatchNorm()))
    extra: dict[str, Any] = {f"optimizer__{k}": v for k, v in optimizer_kwargs.items()}
    if class_weights is not None:
        extra["criterion__weight"] = torch.as_tensor(class_weights, dtype=torch.float32)
    return InferenceModeNet(
        module=module,
        criterion=nn.CrossEntropyLoss,
        optimizer=optimizer_cls,
        lr=lr,
        optimizer__weight_decay=weight_decay,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train=ImageBatchLoader,
        iterator_valid=ImageBatchLoader,
        iterator_train__shuffle=True,
        iterator_train__drop_singleton=True,
        iterator_valid__batch_size=predict_batch_size,
        **{
            f"{iterator}__{key}": value
            for iterator in ("iterator_train", "iterator_valid")
            for key, value in (
                ("num_workers", num_workers),
                ("expected_shape", expected_shape),
                ("pin_memory", device.startswith("cuda")),
            )
        },
        train_split=(
            ValidSplit(validation_fraction, stratified=True, random_state=seed)
            if validation_fraction
            else None
        ),
        callbacks=callbacks,
        classes=np.arange(n_classes),
        device=device,
        verbose=verbose,
        **extra,
    )
