"""torchvision classification models as backbones.

Each entry names the torchvision model, the attribute of its classification head
(replaced by ``nn.Identity`` so the model returns features), the stem change used when
it is trained from scratch on small images, and the weights ``pretrained=True`` loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from sklimg.backbones._registry import BackboneSpec, register_backbone
from sklimg.backbones._weights import load_matching_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Below this shorter side, a network trained from scratch gets the small-image stem.
SMALL_INPUT_BELOW = 64


def _resnet_small_stem(model: nn.Module) -> None:
    # CIFAR-style ResNet stem: 3x3 stride-1 convolution, no max-pool (total stride 8).
    model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()


def _vgg_small_stem(model: nn.Module) -> None:
    # Drop the first two of five max-pools (total stride 8).
    pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    for i in pools[:2]:
        model.features[i] = nn.Identity()


def _first_conv_stride_one(model: nn.Module) -> None:
    # MobileNet / EfficientNet: the stem convolution keeps full resolution (total stride 16).
    model.features[0][0].stride = (1, 1)


def _convnext_small_stem(model: nn.Module) -> None:
    # The 4x4 stride-4 patchify stem becomes a 3x3 stride-1 convolution (total stride 8).
    old = model.features[0][0]
    model.features[0][0] = nn.Conv2d(3, old.out_channels, 3, stride=1, padding=1)


@dataclass(frozen=True)
class ChildrenOf:
    """The feature maps of a backbone whose stages are the children of one container
    (``features`` of MobileNet, EfficientNet and ConvNeXt), by name: the count of
    stages is read from the built network. A class, so that specs pickle."""

    container: str

    def __call__(self, backbone: nn.Module) -> tuple[str, ...]:
        children = backbone.get_submodule(self.container).named_children()
        return tuple(f"{self.container}.{name}" for name, _ in children)


def _vgg_stages(backbone: nn.Module) -> tuple[str, ...]:
    # The activation before each pool (the pools the small-image stem removed are
    # Identity in their place): VGG's stages end there.
    layers = list(backbone.features)
    return tuple(
        f"features.{i - 1}"
        for i, layer in enumerate(layers)
        if i and isinstance(layer, nn.MaxPool2d | nn.Identity)
    )


_RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


@dataclass(frozen=True)
class TorchvisionBuilder:
    """Builds a torchvision model as a feature extractor (picklable, unlike a closure)."""

    model_name: str
    head_attr: str
    small_stem: Callable[[nn.Module], None] | None = None

    def __call__(self, *, in_chans, small_input, state_dict=None, **kwargs) -> nn.Module:
        from torchvision.models import get_model

        model = get_model(self.model_name, weights=None, **kwargs)
        if state_dict is not None:
            load_matching_state_dict(model, state_dict, head_attr=self.head_attr)
        if small_input and self.small_stem is not None:
            self.small_stem(model)
        model.set_submodule(self.head_attr, nn.Identity())
        return model


_TORCHVISION = [
    # name, head attribute, feature dim, small-image stem, min input side, feature maps,
    # description
    ("resnet18", "fc", 512, _resnet_small_stem, 8, _RESNET_STAGES,
     "ResNet-18, 11.7M parameters"),
    ("resnet34", "fc", 512, _resnet_small_stem, 8, _RESNET_STAGES,
     "ResNet-34, 21.8M parameters"),
    ("resnet50", "fc", 2048, _resnet_small_stem, 8, _RESNET_STAGES,
     "ResNet-50, 25.6M parameters"),
    ("vgg11_bn", "classifier.6", 4096, _vgg_small_stem, 8, _vgg_stages,
     "VGG-11 with BatchNorm, 132.9M"),
    ("vgg16_bn", "classifier.6", 4096, _vgg_small_stem, 8, _vgg_stages,
     "VGG-16 with BatchNorm, 138.4M"),
    ("mobilenet_v3_small", "classifier.3", 1024, _first_conv_stride_one, 8,
     ChildrenOf("features"), "MobileNetV3-Small, 2.5M parameters"),
    ("mobilenet_v3_large", "classifier.3", 1280, _first_conv_stride_one, 8,
     ChildrenOf("features"), "MobileNetV3-Large, 5.5M parameters"),
    ("efficientnet_b0", "classifier.1", 1280, _first_conv_stride_one, 8,
     ChildrenOf("features"), "EfficientNet-B0, 5.3M parameters"),
    ("convnext_tiny", "classifier.2", 768, _convnext_small_stem, 8,
     ChildrenOf("features"), "ConvNeXt-Tiny, 28.6M parameters"),
]  # fmt: skip

for _name, _head, _dim, _stem, _min_side, _maps, _desc in _TORCHVISION:
    register_backbone(
        BackboneSpec(
            name=_name,
            builder=TorchvisionBuilder(_name, _head, _stem),
            input_size=(224, 224),
            min_input_size=(_min_side, _min_side),
            feature_dim=_dim,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            in_chans=3,
            pretrained_weights="DEFAULT",
            torchvision_name=_name,
            small_input_below=SMALL_INPUT_BELOW,
            description=f"torchvision {_desc}",
            feature_maps=_maps,
        )
    )
