"""Weights from files, and matching a state dict to a model: the lowest layer of the
backbones, which imports nothing of sklimg but its exceptions."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from sklimg.exceptions import WeightsError

__all__ = ["WEIGHT_FILE_SUFFIXES", "load_matching_state_dict", "load_weights_file"]

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file.

    Pickled files are read with ``torch.load(weights_only=True)``, so loading them runs
    no code. A checkpoint that wraps the weights under ``"state_dict"`` or ``"model"``
    is unwrapped.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    state_dict : dict of str to torch.Tensor

    Raises
    ------
    WeightsError
        If the file is missing or does not hold a state dict.

    Examples
    --------
    >>> import os, tempfile
    >>> import torch
    >>> from sklimg.backbones import load_weights_file
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.pt")
    >>> torch.save({"state_dict": torch.nn.Linear(4, 2).state_dict()}, path)
    >>> sorted(load_weights_file(path))
    ['bias', 'weight']
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"Weights file {str(path)!r} does not exist"
            + (" (it is a directory)" if path.is_dir() else "")
            + "; pass the path of a .pth, .pt or .safetensors file."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"Could not read weights from {str(path)!r}: {exc}. Save them with "
            f"torch.save(model.state_dict(), path) or safetensors.torch.save_file."
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(
            f"{str(path)!r} does not hold a state dict (a mapping of parameter names to "
            f"tensors); got {type(state).__name__}."
        )
    return state


def load_matching_state_dict(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, head_attr: str | None = None
) -> None:
    """Load ``state_dict`` into ``model``, allowing only the classification head to differ.

    Raises
    ------
    WeightsError
        If keys other than the head's are missing or unexpected, or shapes differ.
    """
    head_prefix = f"{head_attr}." if head_attr else None
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not _under(k, head_prefix)]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape and not _under(k, head_prefix)
    ]
    if missing or unexpected or mismatched:
        parts = [
            f"{label} {items[:5]}{' ...' if len(items) > 5 else ''}"
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches (file vs model)", mismatched),
            )
            if items
        ]
        raise WeightsError(
            f"The weights do not match the {type(model).__name__} architecture: "
            f"{'; '.join(parts)}. Check that the file was saved from the same backbone."
        )
    model.load_state_dict(
        {
            k: v
            for k, v in state_dict.items()
            if not _under(k, head_prefix) or own[k].shape == v.shape
        },
        strict=False,
    )


def _under(key: str, prefix: str | None) -> bool:
    return prefix is not None and key.startswith(prefix)
