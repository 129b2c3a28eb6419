"""Test-time augmentation: a network's outputs averaged over mirrored and shifted views.

The views are those of the airbench CIFAR-10 recipes (Jordan 2024, arXiv:2404.00498):
``"flip"`` averages an image and its mirror; ``"flip_translate"`` also averages the
mirror pairs of the image shifted one pixel up-left and one pixel down-right (edges
reflected), and weights the unshifted pair as much as both shifted pairs together.
Views are made on the raw batch, before the network's input adapter, so they are shifts
of the image's own pixel grid whatever size the network sees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["TTA_POLICIES", "average_over_views", "check_tta"]

#: Accepted by ``ImageClassifier(tta=...)``, besides ``None``.
TTA_POLICIES = ("flip", "flip_translate")


def check_tta(policy) -> None:
    """Raise a ValueError naming the policies unless ``policy`` is one or None."""
    if policy is not None and policy not in TTA_POLICIES:
        raise ValueError(f"tta must be None or one of {list(TTA_POLICIES)}; got {policy!r}.")


def _reflect_shift(x: torch.Tensor, step: int) -> torch.Tensor:
    """``x`` (N, C, H, W) shifted by ``step`` (+1 or -1) pixels along H and W, edges
    reflected: the crop of a 1-pixel reflect padding. Indexing works for every dtype
    (reflect padding does not take uint8)."""
    for dim in (-2, -1):
        size = x.shape[dim]
        if size < 2:
            continue
        index = torch.arange(size, device=x.device) - step
        index = torch.where(index < 0, -index, index)
        index = torch.where(index >= size, 2 * (size - 1) - index, index)
        x = x.index_select(dim, index)
    return x


def _mirror_mean(infer: Callable, x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (infer(x) + infer(x.flip(-1)))


def average_over_views(infer: Callable, x: torch.Tensor, policy: str | None) -> torch.Tensor:
    """Outputs of ``infer`` for the batch ``x``, averaged over the views of ``policy``.

    Parameters
    ----------
    infer : callable
        Maps a raw image batch ``(N, C, H, W)`` to logits or features ``(N, D)``.
    x : torch.Tensor
        The raw image batch.
    policy : {None, "flip", "flip_translate"}
        ``None``: one forward pass; ``"flip"``: two; ``"flip_translate"``: six.

    Returns
    -------
    torch.Tensor
        The averaged outputs, ``(N, D)``.
    """
    check_tta(policy)
    if policy is None:
        return infer(x)
    logits = _mirror_mean(infer, x)
    if policy == "flip":
        return logits
    shifted = _mirror_mean(infer, _reflect_shift(x, -1)) + _mirror_mean(infer, _reflect_shift(x, 1))
    return 0.5 * logits + 0.25 * shifted
