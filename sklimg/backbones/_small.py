"""Small convolutional networks trained from scratch, for small images.

``cnn_small`` follows the fast-training CIFAR-10 recipes (airbench, hlb-CIFAR10): a
few 3x3 convolution groups, each ``conv -> max-pool -> BatchNorm -> GELU -> conv ->
BatchNorm -> GELU``, and a global max-pool. It keeps the resolution of small images
(no stride-2 stem) and trains about ten times faster than a ResNet-18 at 32x32.
``test_cnn`` is a tiny network so that tests run in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from torch import nn

from sklimg.backbones._registry import BackboneSpec, register_backbone
from sklimg.backbones._weights import load_matching_state_dict

__all__ = ["SmallCNN", "TinyCNN"]


# Faster than torch's 0.1, as in airbench: the running statistics that validation
# scores use keep up with the weights within a few steps.
BN_MOMENTUM = 0.3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), _bn(c_out)]


class SmallCNN(nn.Sequential):
    """A VGG-like CNN for small images, in the style of airbench.

    Parameters
    ----------
    in_chans : int, default=3
        Input channels.
    widths : sequence of int, default=(32, 64, 128)
        Channels of each convolution group; each group halves the resolution
        (``ceil_mode`` pooling, so any image size works). The last is the feature size.
    stem_width : int, default=24
        Channels of the full-resolution stem convolution.

    Examples
    --------
    >>> import torch
    >>> from sklimg.backbones import SmallCNN
    >>> SmallCNN(in_chans=1)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 128])
    """

    def __init__(
        self, in_chans: int = 3, widths: Sequence[int] = (32, 64, 128), stem_width: int = 24
    ) -> None:
        for name, values in (("widths", tuple(widths)), ("stem_width", (stem_width,))):
            if not values or not all(
                isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in values
            ):
                raise ValueError(
                    f"SmallCNN needs {name} of positive ints (e.g. widths=(32, 64, 128), "
                    f"stem_width=24); got {name}={values if name == 'widths' else stem_width!r}."
                )
        layers: list[nn.Module] = [*_conv_bn(in_chans, stem_width), nn.GELU()]
        for c_in, c_out in zip((stem_width, *widths[:-1]), widths, strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.MaxPool2d(2, ceil_mode=True),
                _bn(c_out),
                nn.GELU(),
                *_conv_bn(c_out, c_out),
                nn.GELU(),
            ]
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        super().__init__(*layers)


class TinyCNN(nn.Sequential):
    """Two convolutions and a global average pool: 16 features, for fast tests.

    Parameters
    ----------
    in_chans : int, default=3
        Input channels.

    Examples
    --------
    >>> import torch
    >>> from sklimg.backbones import TinyCNN
    >>> TinyCNN(in_chans=1)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 16])
    """

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_chans, 8, 3, padding=1, bias=False),
            _bn(8),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            _bn(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )


def _activations(backbone: nn.Module) -> tuple[str, ...]:
    # SmallCNN's and TinyCNN's stages end in an activation; their count follows
    # ``widths``, so the names are read from the built network.
    return tuple(
        name for name, layer in backbone.named_children() if isinstance(layer, nn.ReLU | nn.GELU)
    )


def _build_small_cnn(*, in_chans, small_input, state_dict=None, **kwargs):
    module = SmallCNN(in_chans=in_chans, **kwargs)
    if state_dict is not None:
        load_matching_state_dict(module, state_dict)
    return module


def _build_tiny_cnn(*, in_chans, small_input, state_dict=None):
    module = TinyCNN(in_chans=in_chans)
    if state_dict is not None:
        load_matching_state_dict(module, state_dict)
    return module


register_backbone(
    BackboneSpec(
        name="cnn_small",
        builder=_build_small_cnn,
        input_size=None,
        feature_dim=128,
        in_chans=None,
        description="airbench-style 7-conv CNN trained from scratch; best for small images",
        feature_maps=_activations,
    )
)
register_backbone(
    BackboneSpec(
        name="test_cnn",
        builder=_build_tiny_cnn,
        input_size=None,
        feature_dim=16,
        in_chans=None,
        description="tiny 2-conv CNN for tests and smoke runs",
        feature_maps=_activations,
    )
)
