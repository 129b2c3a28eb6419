"""The torch module sklimg trains: input adapter -> backbone -> head.

The adapter does, per batch and on the training device, what the backbone expects of
its input: uint8 to [0, 1], resizing, grayscale to RGB, mean/std normalisation. Keeping
it inside the module means a saved model carries its preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ImageNetwork", "InputAdapter"]


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        if self.resize_to is not None and tuple(x.shape[-2:]) != self.resize_to:
            x = F.interpolate(
                x, size=self.resize_to, mode="bilinear", antialias=True, align_corners=False
            )
        if x.shape[1] != self.out_chans:
            x = x.expand(-1, self.out_chans, -1, -1)
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"out_chans={self.out_chans}, resize_to={self.resize_to}"


class ImageNetwork(nn.Module):
    """``head(backbone(adapter(x)))``, with :meth:`features` for the part before the head.

    Parameters
    ----------
    adapter : InputAdapter
    backbone : torch.nn.Module
        Maps the adapted batch to features ``(N, D)`` or ``(N, D, h, w)``.
    head : torch.nn.Module
        Maps features to class logits.
    """

    def __init__(self, adapter: nn.Module, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.adapter = adapter
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of a raw image batch."""
        return self.backbone(self.adapter(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_head(feature_shape: Sequence[int], n_classes: int) -> nn.Module:
    """A linear classifier for features of shape ``(D,)``, or ``(D, h, w)`` pooled first."""
    linear = nn.Linear(feature_shape[0], n_classes)
    if len(feature_shape) == 1:
        return linear
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)
