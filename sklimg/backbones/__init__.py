"""Backbones: networks that turn images into feature vectors.

Look them up by name (``list_backbones("resnet*")``, ``get_backbone("resnet18")``) or
register your own with :func:`register_backbone`. The classical ones (``"hog"``,
``"lbp"``, ``"color_histogram"``, ``"pixels"``) are registered by
:mod:`sklimg.features`, where their transformers live; ``import sklimg`` registers
both.
"""

from sklimg.backbones import (  # noqa: F401  (registers the built-in networks)
    _efficientnet_lite,
    _small,
    _torchvision,
)
from sklimg.backbones._pretrained import resolve_weights
from sklimg.backbones._registry import (
    BackboneSpec,
    get_backbone,
    list_backbones,
    register_backbone,
    resolve_backbone,
)
from sklimg.backbones._small import SmallCNN, TinyCNN
from sklimg.backbones._weights import load_weights_file

__all__ = [
    "BackboneSpec",
    "SmallCNN",
    "TinyCNN",
    "get_backbone",
    "list_backbones",
    "load_weights_file",
    "register_backbone",
    "resolve_backbone",
    "resolve_weights",
]
