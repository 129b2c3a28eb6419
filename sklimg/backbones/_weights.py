"""Pretrained weights: torchvision's weights API, local files, and matching them to a model."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from sklimg.exceptions import WeightsError

__all__ = ["load_matching_state_dict", "load_weights_file", "resolve_weights"]

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


def _torchvision_weights(spec, name: str):
    from torchvision.models import get_model_weights, get_weight

    try:
        if "." in name:
            return get_weight(name)
        if spec.torchvision_name is None:
            raise KeyError(name)
        return get_model_weights(spec.torchvision_name)[name]
    except (KeyError, ValueError, AttributeError):
        choices = ""
        if spec.torchvision_name is not None:
            enum = get_model_weights(spec.torchvision_name)
            choices = f" Available for {spec.name}: " + ", ".join(
                ["DEFAULT", *(f"{enum.__name__}.{w.name}" for w in enum)]
            )
        raise WeightsError(
            f"Unknown weights {name!r} for backbone {spec.name!r}.{choices} Or pass the "
            f"path of a .pth/.pt/.safetensors file."
        ) from None


def _download_state_dict(spec, weights_enum) -> dict[str, torch.Tensor]:
    url = weights_enum.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    try:
        return weights_enum.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:
        raise WeightsError(
            f"Could not load the pretrained weights of {spec.name!r} "
            f"({type(weights_enum).__name__}.{weights_enum.name}): {exc}. "
            f"sklimg looked for the file {cached.name!r} in {str(cached.parent)!r} and then "
            f"tried to download it from {url}. Without internet, copy that file into that "
            f"folder (or set TORCH_HOME to a folder whose hub/checkpoints holds it), or pass "
            f"weights='/path/to/{cached.name}'."
        ) from exc


def resolve_weights(spec, *, pretrained: bool, weights) -> dict[str, torch.Tensor] | None:
    """The state dict a backbone should start from, or ``None`` for random init.

    Parameters
    ----------
    spec : BackboneSpec
    pretrained : bool
        Load the spec's default pretrained weights: from its ``weights_loader`` when
        it has one, else through torchvision's weights API.
    weights : str, path-like or None
        A local weights file, or a torchvision weights name (``"IMAGENET1K_V1"``,
        ``"ResNet18_Weights.DEFAULT"``); takes precedence over ``pretrained``.

    Returns
    -------
    state_dict : dict or None

    Raises
    ------
    WeightsError
        If the weights cannot be found, downloaded or read.

    Examples
    --------
    >>> import os, tempfile
    >>> import torch, torchvision
    >>> from sklimg.backbones import get_backbone, resolve_weights
    >>> spec = get_backbone("resnet18")
    >>> resolve_weights(spec, pretrained=False, weights=None) is None
    True
    >>> path = os.path.join(tempfile.mkdtemp(), "resnet18.pth")
    >>> torch.save(torchvision.models.resnet18().state_dict(), path)
    >>> state = resolve_weights(spec, pretrained=False, weights=path)
    >>> tuple(state["conv1.weight"].shape)
    (64, 3, 7, 7)
    """
    if weights is not None:
        as_path = Path(weights)
        if isinstance(weights, os.PathLike) or as_path.suffix in WEIGHT_FILE_SUFFIXES:
            return load_weights_file(as_path)
        return _download_state_dict(spec, _torchvision_weights(spec, str(weights)))
    if not pretrained:
        return None
    if spec.pretrained_weights is None:
        from sklimg.backbones._registry import list_backbones

        raise WeightsError(
            f"Backbone {spec.name!r} has no pretrained weights; use pretrained=False, pass "
            f"weights='/path/to/file.pth', or pick one of "
            f"{', '.join(list_backbones(pretrained=True))}."
        )
    if spec.weights_loader is not None:
        return spec.weights_loader()
    return _download_state_dict(spec, _torchvision_weights(spec, spec.pretrained_weights))


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
