"""The torch module sklimg trains: input adapter -> backbone -> (pool) -> head.

The adapter does, per batch and on the training device, what the backbone expects of
its input: uint8 to [0, 1], resizing, grayscale to RGB, mean/std normalisation. Keeping
it inside the module means a saved model carries its preprocessing.
:func:`build_backbone` is the one place that turns a backbone spec and training images
into that adapter and backbone, for the classifier and for ``DeepFeatures`` alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sklimg._memory import activation_bytes, check_fits
from sklimg._pixels import unit_float
from sklimg._warnings import warn
from sklimg.backbones import BackboneSpec, get_backbone, resolve_weights
from sklimg.exceptions import ImageInputError

__all__ = [
    "BuiltBackbone",
    "HeadOnly",
    "ImageNetwork",
    "InputAdapter",
    "IntermediateOutput",
    "build_backbone",
    "rebuild_network",
    "resolved_finetune",
]

# Images used to estimate the per-channel mean/std that normalise from-scratch networks.
_STATS_SAMPLE = 4096
# Images whose batch statistics initialise the BatchNorm layers of a random network.
_CALIBRATION_IMAGES = 256


class InputAdapter(nn.Module):
    """Turn a raw image batch ``(N, C, H, W)`` into what the backbone expects.

    Parameters
    ----------
    mean, std : sequence of float
        Per-channel normalisation applied after scaling to [0, 1] and channel
        repetition; one value per output channel.
    out_chans : int
        Channels the backbone takes; a single-channel batch is repeated to match.
    resize_to : tuple of int or None
        ``(H, W)`` to resize every batch to (bilinear, anti-aliased), or ``None``.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        out_chans: int,
        resize_to: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.out_chans = out_chans
        self.resize_to = tuple(resize_to) if resize_to is not None else None
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    #: Hand batches to the backbone in channels-last memory format (see ImageNetwork).
    channels_last = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = unit_float(x)
        if self.resize_to is not None and tuple(x.shape[-2:]) != self.resize_to:
            x = F.interpolate(
                x, size=self.resize_to, mode="bilinear", antialias=True, align_corners=False
            )
        if x.shape[1] != self.out_chans:
            x = x.expand(-1, self.out_chans, -1, -1)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def extra_repr(self) -> str:
        return f"out_chans={self.out_chans}, resize_to={self.resize_to}"


class ImageNetwork(nn.Module):
    """``head(features(x))`` where ``features(x) = pool(backbone(adapter(x)))``.

    Parameters
    ----------
    adapter : InputAdapter
    backbone : torch.nn.Module
        Maps the adapted batch to features ``(N, D)`` or ``(N, D, h, w)``.
    head : torch.nn.Module or None
        Maps pooled features ``(N, D)`` to class logits; ``None`` for a feature
        extractor.
    pool : bool, default=False
        Global-average-pool 4-D backbone outputs to ``(N, D)``.
    """

    def __init__(
        self,
        adapter: nn.Module,
        backbone: nn.Module,
        head: nn.Module | None = None,
        *,
        pool: bool = False,
    ) -> None:
        super().__init__()
        self.adapter = adapter
        self.backbone = backbone
        self.head = head
        self.pool = pool
        self.backbone_frozen = False
        # How to rebuild this network for the safe file format (see persistence).
        self.architecture: dict = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, D)`` of a raw image batch."""
        out = self.backbone(self.adapter(x))
        return out.mean(dim=(2, 3)) if self.pool else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        return features if self.head is None else self.head(features)

    def feature_extractor(self) -> ImageNetwork:
        """This network without its head, mapping images to pooled features.

        The adapter and backbone are shared, not copied, and so is the frozen state.
        """
        view = ImageNetwork(self.adapter, self.backbone, None, pool=self.pool)
        view.backbone_frozen = self.backbone_frozen
        view.training = self.training  # the flag only: the shared modules keep their modes
        return view

    def freeze_backbone(self, frozen: bool = True) -> ImageNetwork:
        """Stop (or resume) training the backbone: no gradients, BatchNorm in eval mode.

        skorch's ``Freezer`` only turns off gradients; BatchNorm layers would still
        update their running statistics in train mode (timm's ``freeze`` does the same
        as here).
        """
        self.backbone_frozen = frozen
        for param in self.backbone.parameters():
            param.requires_grad_(not frozen)
        self.backbone.train(self.training and not frozen)
        return self

    def use_channels_last(self) -> ImageNetwork:
        """Run convolutions in channels-last memory format.

        On the CPU, oneDNN's channels-last convolutions train ``cnn_small`` 1.33-1.44x
        faster than the default layout (measured side by side, 2 cores; see
        benchmarks/RESULTS.md). Values are the same up to float rounding.
        """
        self.to(memory_format=torch.channels_last)
        self.adapter.channels_last = True
        self.architecture = {**self.architecture, "channels_last": True}
        return self

    def train(self, mode: bool = True) -> ImageNetwork:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self


class HeadOnly(nn.Module):
    """A view of an :class:`ImageNetwork` that takes precomputed features.

    Trains the head on features extracted once from a frozen backbone, instead of
    forwarding every image through the backbone every epoch; the parameters are the
    network's own, so the trained network then predicts from images.
    """

    def __init__(self, network: ImageNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.head(features)


@dataclass
class BuiltBackbone:
    """What :func:`build_backbone` returns: the parts before the head."""

    adapter: InputAdapter
    backbone: nn.Module
    feature_dim: int
    pool: bool
    input_size: tuple[int, int]
    pretrained: bool
    architecture: dict

    def network(self, n_classes: int | None = None) -> ImageNetwork:
        """The full network, with a linear head for ``n_classes`` (or none)."""
        head = nn.Linear(self.feature_dim, n_classes) if n_classes else None
        network = ImageNetwork(self.adapter, self.backbone, head, pool=self.pool)
        network.architecture = {**self.architecture, "n_classes": n_classes}
        return network


class _LayerReached(Exception):
    """Ends a forward pass once the wanted layer has run."""


class IntermediateOutput(nn.Module):
    """The output of one named layer of a network; the layers after it do not run.

    Features of an intermediate layer often transfer better than the last layer's to
    images unlike the pretraining data (on 5,000 Fashion-MNIST images, an
    EfficientNet-Lite0 block in the middle scores 5 points above the ImageNet-specific
    last layer; see benchmarks/transfer.py). A forward hook on the layer records its
    output and stops the pass, so any ``nn.Module`` works, traceable or not.

    Parameters
    ----------
    network : torch.nn.Module
    layer : str
        A name from ``network.named_modules()``, e.g. ``"layer3"`` for a torchvision
        ResNet. A layer that runs several times in a pass gives its first output.
    """

    def __init__(self, network: nn.Module, layer: str) -> None:
        super().__init__()
        self.network = network
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []

        def record_and_stop(module, args, output):
            outputs.append(output)
            raise _LayerReached

        handle = self.network.get_submodule(self.layer).register_forward_hook(record_and_stop)
        try:
            self.network(x)
        except _LayerReached:
            pass
        finally:
            handle.remove()
        if not outputs:
            raise RuntimeError(f"Layer {self.layer!r} did not run in the network's forward pass.")
        return outputs[0]

    def extra_repr(self) -> str:
        # Part of the feature cache's key (module_digest): another layer, other features.
        return f"layer={self.layer!r}"


def _check_layer(backbone: nn.Module, layer: str, name: str) -> None:
    names = [n for n, _ in backbone.named_modules() if n]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=5)
        hint = f" Close matches: {close}." if close else ""
        raise ValueError(
            f"Backbone {name!r} has no layer {layer!r}.{hint} Layers are named as in "
            f"torch's named_modules(), e.g. {names[: min(8, len(names))]} (of {len(names)})."
        )


def resolved_finetune(finetune: str, pretrained: bool) -> str:
    """``finetune`` with ``"auto"`` decided: the head alone on pretrained weights, the
    whole network otherwise."""
    if finetune == "auto":
        return "head" if pretrained else "full"
    return finetune


def _check_training_memory(name, backbone, chans, size, images, batch, frozen, device) -> None:
    """Refuse a training whose activations will not fit (see :mod:`sklimg._memory`).

    Each layer's output is kept for the backward pass, which makes gradients of the
    same size: twice the forward outputs per image, plus the batch itself. A frozen
    backbone runs without gradients.
    """
    height, width = images.shape[1:3]
    activations = activation_bytes(backbone, chans, size, kept=not frozen)
    if activations is None:
        return  # the module fails on the probe: the dry run that follows says why
    per_image = (1 if frozen else 2) * activations + 4 * height * width * chans
    check_fits(
        batch * per_image,
        f"Training {name} on batches of {batch} images of {height}x{width} pixels"
        + ("" if (height, width) == tuple(size) else f" (resized to {size[0]}x{size[1]})"),
        "Shrink the images first, e.g. make_pipeline(Resize((224, 224)), "
        "ImageClassifier(...)), set input_size=224 (the network sees smaller images), or "
        "lower batch_size.",
        device,
    )


def rebuild_network(architecture: dict) -> ImageNetwork:
    """An untrained network of the recorded architecture, to load saved weights into.

    Parameters
    ----------
    architecture : dict
        ``ImageNetwork.architecture`` of the saved network.

    Returns
    -------
    network : ImageNetwork
    """
    spec = get_backbone(architecture["backbone"])
    chans = architecture["in_chans"]
    backbone = spec.build(
        in_chans=chans,
        small_input=architecture["small_input"],
        **(architecture["backbone_kwargs"] or {}),
    )
    resize_to = architecture["resize_to"]
    adapter = InputAdapter([0.0] * chans, [1.0] * chans, chans, resize_to and tuple(resize_to))
    n_classes = architecture["n_classes"]
    head = nn.Linear(architecture["feature_dim"], n_classes) if n_classes else None
    network = ImageNetwork(adapter, backbone, head, pool=architecture["pool"])
    network.architecture = dict(architecture)
    if architecture.get("channels_last"):
        network.use_channels_last()
    return network


def build_backbone(
    spec: BackboneSpec,
    images: np.ndarray,
    *,
    pretrained: bool = False,
    weights=None,
    backbone_kwargs: dict | None = None,
    input_size="auto",
    layer: str | None = None,
    train_batch: int | None = None,
    finetune: str = "auto",
    device: str = "cpu",
) -> BuiltBackbone:
    """Build the adapter and backbone for these images, checked on two of them.

    Parameters
    ----------
    spec : BackboneSpec
    images : ndarray of shape (n, H, W, C)
        The training images, or a sample of them when they are lazy: they give the
        size, the channels and, for networks trained from scratch, the mean/std.
    pretrained, weights, backbone_kwargs, input_size
        As for :class:`~sklimg.ImageClassifier`.
    layer : str or None, default=None
        Take the features from this layer of the backbone (see
        :class:`IntermediateOutput`) instead of its output.
    train_batch : int or None, default=None
        The batch the network will be trained on, on ``device``: when given, the
        memory that training needs is estimated and the work refused, before any
        image goes through the network, if it is over what is free.
    finetune : str, default="auto"
        The classifier's ``finetune``: a frozen backbone (``"head"``, or ``"auto"``
        with pretrained weights) keeps no activations for a backward pass.
    device : str, default="cpu"

    Returns
    -------
    built : BuiltBackbone

    Raises
    ------
    InsufficientMemoryError
        If training on ``train_batch`` images would need more memory than is free.
    """
    state_dict = resolve_weights(spec, pretrained=pretrained, weights=weights)
    uses_weights = state_dict is not None
    height, width, channels = images.shape[1:]
    resize_to, small_input = spec.plan_input(
        (height, width), pretrained=uses_weights, requested=input_size
    )
    if spec.in_chans is not None and channels not in (1, spec.in_chans):
        raise ImageInputError(
            f"Backbone {spec.name!r} takes {spec.in_chans} channel(s); the images have "
            f"{channels}. Convert them, e.g. with sklimg.preprocessing.Grayscale."
        )
    net_chans = spec.in_chans or channels
    backbone = spec.build(
        in_chans=net_chans,
        small_input=small_input,
        state_dict=state_dict,
        **(backbone_kwargs or {}),
    )
    if layer is not None:
        _check_layer(backbone, layer, spec.name)
        backbone = IntermediateOutput(backbone, layer)
    if train_batch is not None:  # before any work on the images' pixels
        _check_training_memory(
            spec.name,
            backbone,
            net_chans,
            resize_to or (height, width),
            images,
            train_batch,
            resolved_finetune(finetune, uses_weights) == "head",
            device,
        )
    if _already_normalised(images):
        # e.g. a Normalize step ran before: normalising again would be wrong.
        mean, std = np.zeros(net_chans), np.ones(net_chans)
    elif uses_weights and spec.mean is not None:
        mean, std = spec.mean, spec.std
        _warn_if_not_unit_range(images, spec.name)
    else:
        mean, std = _channel_stats(images)
        mean, std = np.resize(mean, net_chans), np.resize(std, net_chans)
    adapter = InputAdapter(mean, std, net_chans, resize_to)
    batch = torch.from_numpy(np.ascontiguousarray(images[:2].transpose(0, 3, 1, 2)))
    features = _dry_run(adapter, backbone, batch, spec.name)
    if not uses_weights:
        # Randomly initialised BatchNorm statistics (mean 0, variance 1) make a frozen
        # random network's features nearly constant; set them from the images, as a
        # trained network's would be. Full training recomputes them anyway.
        sample = images[:: max(1, len(images) // _CALIBRATION_IMAGES)]
        recompute_batchnorm_stats(
            nn.Sequential(adapter, backbone),
            (
                torch.from_numpy(np.ascontiguousarray(sample[i : i + 64].transpose(0, 3, 1, 2)))
                for i in range(0, len(sample), 64)
            ),
        )
    size = resize_to or (height, width)
    return BuiltBackbone(
        adapter=adapter,
        backbone=backbone,
        feature_dim=int(features.shape[1]),
        pool=features.ndim == 4,
        input_size=(int(size[0]), int(size[1])),
        pretrained=uses_weights,
        architecture={
            "backbone": spec.name,
            "backbone_kwargs": dict(backbone_kwargs or {}),
            "in_chans": int(net_chans),
            "small_input": bool(small_input),
            "resize_to": list(resize_to) if resize_to else None,
            "feature_dim": int(features.shape[1]),
            "pool": features.ndim == 4,
        },
    )


def trainable_batchnorms(module: nn.Module) -> list[_BatchNorm]:
    """BatchNorm layers whose parameters train (frozen ones keep their statistics)."""
    return [
        m
        for m in module.modules()
        if isinstance(m, _BatchNorm)
        and m.track_running_stats
        and (m.weight is None or m.weight.requires_grad)
    ]


def recompute_batchnorm_stats(
    module: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    layers: Sequence[_BatchNorm] | None = None,
    max_images: int = 2048,
) -> None:
    """Set BatchNorm running statistics to the average over ``batches`` ("precise BN").

    Parameters
    ----------
    module : torch.nn.Module
    batches : iterable of torch.Tensor
        Input batches, on the module's device.
    layers : sequence of BatchNorm or None, default=None
        The layers to recompute (default: all); the others keep their statistics.
    max_images : int, default=2048
        Images used at most (the last batch is cut to fit).
    """
    all_bn = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    layers = all_bn if layers is None else list(layers)
    if not layers:
        return
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    was_training = module.training
    module.train()
    for m in all_bn:
        if m not in layers:
            m.eval()  # statistics that must not move during the pass
    seen = 0
    try:
        with torch.no_grad():
            for xb in batches:
                if seen >= max_images:
                    break
                xb = xb[: max_images - seen]
                if len(xb) > 1:
                    module(xb)
                seen += len(xb)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        module.train(was_training)


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std in [0, 1] units, from an evenly spaced sample of images."""
    step = max(1, len(images) // _STATS_SAMPLE)
    sample = images[::step].reshape(-1, images.shape[-1])
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    mean = sample.mean(axis=0, dtype=np.float64) / scale
    std = sample.std(axis=0, dtype=np.float64) / scale
    return mean, np.where(std > 1e-6, std, 1.0)


def _already_normalised(images: np.ndarray) -> bool:
    """Float pixels below 0 mean a mean/std normalisation already happened."""
    return images.dtype != np.uint8 and float(images.min()) < -1e-3


def _warn_if_not_unit_range(images: np.ndarray, name: str) -> None:
    if images.dtype == np.uint8:
        return
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        warn(
            f"Pretrained {name!r} expects pixel values in [0, 1] (or uint8 0-255) but X "
            f"ranges over [{lo:.3g}, {hi:.3g}]; scale the images first, e.g. X / X.max()."
        )


def _dry_run(adapter: nn.Module, backbone: nn.Module, batch: torch.Tensor, name: str):
    """Forward two images before training, so a mismatch fails fast and readably."""
    backbone.eval()
    try:
        with torch.inference_mode():
            features = backbone(adapter(batch))
    except Exception as exc:
        raise ImageInputError(
            f"Backbone {name!r} failed on a batch of shape {tuple(batch.shape)} (N, C, H, "
            f"W) before training started: {exc}. Check that it accepts images of this size "
            f"and channel count, or set input_size to resize them."
        ) from exc
    finally:
        backbone.train()
    if not isinstance(features, torch.Tensor) or features.ndim not in (2, 4):
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ImageInputError(
            f"Backbone {name!r} returned {shape}; expected a tensor of features (N, D) or "
            f"(N, D, h, w). Make its forward return one of those."
        )
    return features
