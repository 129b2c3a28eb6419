"""The callbacks sklimg's training runs with, one concern each (as skorch's
``callbacks/`` is split): precise BatchNorm statistics, the weight average, gradual
unfreezing, the guard that loses nothing, and a scheduler that steps per optimizer step.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler
from skorch.utils import to_device
from torch import nn
from torch.optim.swa_utils import AveragedModel

from sklimg._checkpoints import write_checkpoint
from sklimg._network import HeadOnly, recompute_batchnorm_stats, trainable_batchnorms
from sklimg._torch_data import ImageBatchLoader
from sklimg._training.net import bare_module, net_device
from sklimg.exceptions import CheckpointError, TrainingDivergedError

__all__ = [
    "PreciseBatchNorm",
    "StepScheduler",
    "TrainingGuard",
    "UnfreezeBackbone",
    "WeightAverage",
    "weight_average",
]


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
        if training and getattr(net, "optimizer_stepped_", True):
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
            average = weight_average(net)
            try:
                write_checkpoint(
                    self.checkpoint_dir,
                    module=self.snapshots_["last"],
                    optimizer=net.optimizer_.state_dict(),
                    history=net.history,
                    tag=self.tag,
                    average=None if average is None else average.checkpoint_state(),
                    best=self.snapshots_["best"] if improved else None,
                )
            # torch reports a failed write of its zip container as a RuntimeError.
            except (OSError, RuntimeError) as exc:
                epoch = len(net.history)
                raise CheckpointError(
                    f"Could not write the checkpoint of epoch {epoch} to "
                    f"checkpoint_dir={str(self.checkpoint_dir)!r}: {exc}. The classifier "
                    f"keeps the weights from the end of epoch {epoch}, and no partial "
                    f"file was left. Free some space or choose another checkpoint_dir, "
                    f"then fit with warm_start=True to continue."
                ) from exc

    def on_train_end(self, net, **kwargs) -> None:
        if getattr(net, "interrupted_", False) and self.snapshots_["best"] is not None:
            bare_module(net).load_state_dict(self.snapshots_["best"])


def _score(row: dict) -> float:
    value = row.get("valid_loss", row.get("train_loss"))
    return float(value) if value is not None and np.isfinite(value) else np.inf


def _state_copy(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class StepScheduler(LRScheduler):
    """skorch's ``LRScheduler``, stepping per batch only after the optimizer stepped:
    with gradient accumulation, once per group of batches."""

    def on_batch_end(self, net, training, **kwargs):
        if getattr(net, "optimizer_stepped_", True):
            super().on_batch_end(net, training, **kwargs)
