"""Pretrained weights a backbone starts from: a local file, torchvision's weights API,
or a spec's own loader (weights shipped in a package).

Above the registry, as timm's ``_pretrained.py`` is above its ``_registry.py``: the
registry only records which weights a backbone has; this module finds them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sklimg.backbones._registry import list_backbones
from sklimg.backbones._weights import WEIGHT_FILE_SUFFIXES, load_weights_file
from sklimg.exceptions import WeightsError

__all__ = ["resolve_weights"]


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
        raise WeightsError(
            f"Backbone {spec.name!r} has no pretrained weights; use pretrained=False, pass "
            f"weights='/path/to/file.pth', or pick one of "
            f"{', '.join(list_backbones(pretrained=True))}."
        )
    if spec.weights_loader is not None:
        return spec.weights_loader()
    return _download_state_dict(spec, _torchvision_weights(spec, spec.pretrained_weights))
