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

__all__ = ["TTA_POLICIES", "average_over_views", "check_tta", "views"]

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


def _shifted(step: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: _reflect_shift(x, step)


def _mirrored(view: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: view(x).flip(-1)


def _unmirrored(undo: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: undo(x.flip(-1))


def views(policy: str | None) -> list[tuple[float, Callable, Callable]]:
    """The views of ``policy``: ``(weight, view, undo)`` for each, where ``view`` maps
    a batch ``(N, C, H, W)`` to the view and ``undo`` maps a per-pixel result on the
    view (a saliency map) back onto the image's pixels (a shift's undo reflects the
    edge row and column it cannot recover).

    Parameters
    ----------
    policy : {None, "flip", "flip_translate"}

    Returns
    -------
    list of (float, callable, callable)
        The weights sum to 1.
    """
    check_tta(policy)
    identity = (lambda x: x, lambda x: x)
    if policy is None:
        return [(1.0, *identity)]
    pairs = [identity]
    if policy == "flip_translate":
        pairs += [(_shifted(-1), _shifted(1)), (_shifted(1), _shifted(-1))]
    # The unshifted pair weighs as much as both shifted pairs together.
    weights = [0.5] if policy == "flip" else [0.25, 0.125, 0.125]
    return [
        (weight, *pair)
        for weight, (view, undo) in zip(weights, pairs, strict=True)
        for pair in ((view, undo), (_mirrored(view), _unmirrored(undo)))
    ]


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
    if policy is None:
        return infer(x)
    return sum(weight * infer(view(x)) for weight, view, _ in views(policy))
