"""MixUp and CutMix: training batches whose images are blends of two images.

MixUp (Zhang et al. 2018) averages each image with another of the batch, with a weight
``lam`` drawn from ``Beta(alpha, alpha)``; CutMix (Yun et al. 2019) pastes a box of the
other image, whose area is ``1 - lam`` of the image. The loss is the same blend of the
losses for the two images' labels, as in fastai's ``MixUp``: written this way, it
composes with what the loss already does (class weights, weights per image, label
smoothing) without soft targets. One ``lam`` per batch (timm's ``Mixup`` in mode
``"batch"``) and the batch rolled by one image for the partners (torchvision's
``v2.MixUp``/``v2.CutMix``; timm reverses the batch instead); both return soft targets
only, not the ``lam`` and the partners that the blended loss needs, hence this module.

Batches are mixed on the training device, before the network's input adapter: a blend
of the raw images is a blend of the adapted ones, since scaling, resizing and
normalising are linear.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from sklimg._pixels import unit_float

__all__ = ["MIX_ALPHAS", "MIX_POLICIES", "MixedTargets", "mix_batch"]

#: Accepted by ``ImageClassifier(mix=...)``, besides ``None``.
MIX_POLICIES = ("mixup", "cutmix", "mixup_cutmix")

#: ``alpha`` of each method when ``mix_alpha=None``: those of torchvision's reference
#: training recipes (``--mixup-alpha 0.2 --cutmix-alpha 1.0``).
MIX_ALPHAS = {"mixup": 0.2, "cutmix": 1.0}


class MixedTargets(NamedTuple):
    """The labels of a mixed batch: the loss is ``lam * loss(y) + (1 - lam) * loss(partner)``.

    ``y`` and ``partner`` are label tensors, or ``WeightedTargets`` with a weight per image.
    """

    y: object
    partner: object
    lam: float


def _rolled(targets):
    """The labels (and weights) of each image's partner: the batch rolled by one."""
    if isinstance(targets, torch.Tensor):
        return targets.roll(1, 0)
    return type(targets)(*(t.roll(1, 0) for t in targets))  # WeightedTargets


def _cut_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """A box of about ``1 - lam`` of the image, centred at a random pixel and clipped to
    the image (as in the CutMix paper and timm)."""
    ratio = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(height, ()))
    cx = int(torch.randint(width, ()))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right


def mix_batch(
    X: torch.Tensor, y, policy: str, alpha: float | None = None
) -> tuple[torch.Tensor, MixedTargets]:
    """Mix a training batch: each image with the one before it in the batch.

    Random draws come from torch's global (CPU) generator, which the classifier seeds
    (``lam`` through a numpy generator seeded from it: torch's ``Beta`` returns 0.5 for
    tiny ``alpha``, where both of its gamma draws underflow).

    Parameters
    ----------
    X : torch.Tensor
        Raw images ``(N, C, H, W)``: ``uint8`` (0-255) or float. MixUp returns float
        images, ``uint8`` ones scaled to [0, 1] as the network's input adapter does;
        CutMix keeps the dtype.
    y : torch.Tensor or WeightedTargets
        Their labels (and weights).
    policy : {"mixup", "cutmix", "mixup_cutmix"}
        ``"mixup_cutmix"`` picks one of the two for each batch, with even odds (timm's
        ``switch_prob=0.5``).
    alpha : float or None, default=None
        ``lam`` is drawn from ``Beta(alpha, alpha)``; ``None``: :data:`MIX_ALPHAS`.

    Returns
    -------
    X : torch.Tensor
        The mixed images.
    targets : MixedTargets
        The labels, their partners' and the share ``lam`` of each image's own.
    """
    if policy == "mixup_cutmix":
        policy = "cutmix" if bool(torch.rand(()) < 0.5) else "mixup"
    alpha = MIX_ALPHAS[policy] if alpha is None else float(alpha)
    rng = np.random.default_rng(int(torch.randint(2**62, ())))
    lam = float(rng.beta(alpha, alpha))
    if policy == "mixup":
        X = unit_float(X)
        X = X.lerp(X.roll(1, 0), 1.0 - lam)
    else:
        height, width = X.shape[-2:]
        top, bottom, left, right = _cut_box(height, width, lam)
        X = X.clone()
        X[..., top:bottom, left:right] = X.roll(1, 0)[..., top:bottom, left:right]
        # The share of the image that stays its own, once the box is clipped.
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return X, MixedTargets(y, _rolled(y), lam)
