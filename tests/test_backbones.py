import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sklimg import ImageClassifier
from sklimg.backbones import (
    BackboneSpec,
    get_backbone,
    list_backbones,
    load_weights_file,
    register_backbone,
    resolve_backbone,
    resolve_weights,
)
from sklimg.exceptions import UnknownBackboneError, WeightsError

REQUIRED = [
    "cnn_small",
    "test_cnn",
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg11_bn",
    "vgg16_bn",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "convnext_tiny",
]


def test_required_backbones_registered():
    assert set(REQUIRED) <= set(list_backbones())


def test_list_backbones_filters():
    assert list_backbones("resnet*") == ["resnet18", "resnet34", "resnet50"]
    assert list_backbones("vgg*_bn") == ["vgg11_bn", "vgg16_bn"]
    pretrained = list_backbones(pretrained=True)
    assert "resnet18" in pretrained and "cnn_small" not in pretrained
    assert "cnn_small" in list_backbones(pretrained=False)


def test_unknown_backbone_suggests_close_matches():
    with pytest.raises(UnknownBackboneError, match=r"Unknown backbone 'resnet81'.*'resnet18'"):
        get_backbone("resnet81")
    with pytest.raises(UnknownBackboneError, match="list_backbones"):
        get_backbone("zzzz")


def test_register_duplicate_raises_and_overwrite():
    spec = BackboneSpec("test_dup_backbone", builder=lambda **kw: nn.Flatten(), in_chans=None)
    register_backbone(spec)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone(spec)
    assert register_backbone(spec, overwrite=True) is spec
    with pytest.raises(TypeError, match="expects a BackboneSpec"):
        register_backbone("resnet18")
    for bad in (None, "", "a+b"):
        with pytest.raises(ValueError, match="must be a non-empty string without '\\+'"):
            register_backbone(BackboneSpec(bad, builder=lambda **kw: nn.Flatten(), in_chans=None))
    assert "resnet18" in list_backbones()  # nothing unsortable was registered


@pytest.mark.parametrize("backbone", ["test_cnn", "cnn_small", nn.Sequential(nn.Flatten())])
def test_weights_of_another_architecture_are_a_weights_error(backbone, tmp_path, small_digits):
    X, y = small_digits
    path = tmp_path / "other.pth"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(WeightsError, match=r"do not match .*unexpected keys \['weight', 'bias'\]"):
        ImageClassifier(backbone, weights=path, max_epochs=1).fit(X, y)


@pytest.mark.parametrize(
    "kwargs", [{"widths": ()}, {"widths": (-1,)}, {"widths": (8, 2.5)}, {"stem_width": 0}]
)
def test_small_cnn_sizes_must_be_positive_ints(kwargs, small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="SmallCNN needs .* of positive ints"):
        ImageClassifier("cnn_small", backbone_kwargs=kwargs, max_epochs=1).fit(X, y)


@pytest.mark.parametrize("name", [*REQUIRED, "mobilenet_v3_large"])
@pytest.mark.parametrize("small_input", [True, False])
def test_every_backbone_builds_with_declared_feature_dim(name, small_input):
    spec = get_backbone(name)
    size = 8 if small_input else 64
    module = spec.build(in_chans=spec.in_chans or 3, small_input=small_input).eval()
    # The stages Grad-CAM chooses from: named modules whose outputs are feature maps,
    # each no larger than the one before.
    names = spec.feature_map_names(module)
    modules = dict(module.named_modules())
    assert len(names) >= 2 and set(names) <= set(modules)
    sides = []
    hooks = [
        modules[n].register_forward_hook(lambda m, a, out: sides.append(out.shape[-2:]))
        for n in names
    ]
    with torch.inference_mode():
        out = module(torch.rand(2, 3, size, size))
    for hook in hooks:
        hook.remove()
    assert out.shape == (2, spec.feature_dim)
    assert len(sides) == len(names)
    assert all(a[0] >= b[0] and a[1] >= b[1] for a, b in itertools.pairwise(sides))


def test_plan_input_decisions():
    resnet = get_backbone("resnet18")
    # From scratch, small images: native size with the stride-1 stem.
    assert resnet.plan_input((28, 28), pretrained=False) == (None, True)
    # From scratch, images below the minimum are upsampled to it.
    assert resnet.plan_input((4, 4), pretrained=False) == ((8, 8), True)
    # From scratch, large images: the stock stem.
    assert resnet.plan_input((96, 96), pretrained=False) == (None, False)
    # Pretrained: the size the weights were trained at, stock stem.
    assert resnet.plan_input((28, 28), pretrained=True) == ((224, 224), False)
    assert resnet.plan_input((224, 224), pretrained=True) == (None, False)
    # Explicit sizes win.
    assert resnet.plan_input((28, 28), pretrained=True, requested=64) == ((64, 64), False)
    assert resnet.plan_input((28, 28), pretrained=False, requested=(32, 48)) == ((32, 48), True)
    assert get_backbone("cnn_small").plan_input((8, 8), pretrained=False) == (None, False)


def test_small_stem_really_changes_the_resnet():
    spec = get_backbone("resnet18")
    small = spec.build(in_chans=3, small_input=True)
    stock = spec.build(in_chans=3, small_input=False)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, nn.Identity)
    assert stock.conv1.kernel_size == (7, 7)


class TwoLayer(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.conv(x)).flatten(1)


def test_resolve_backbone_accepts_modules_and_specs():
    spec = resolve_backbone(TwoLayer)
    assert spec.name == "TwoLayer" and spec.in_chans is None
    assert resolve_backbone(TwoLayer(width=3)).build(in_chans=1).conv.out_channels == 3
    assert resolve_backbone(TwoLayer).build(in_chans=1, width=5).conv.out_channels == 5
    assert resolve_backbone(get_backbone("resnet18")).name == "resnet18"
    with pytest.raises(TypeError, match="backbone must be a registry name"):
        resolve_backbone(3.5)
    with pytest.raises(TypeError, match="cannot be applied to a module instance"):
        resolve_backbone(TwoLayer()).build(in_chans=1, width=5)


# --------------------------------------------------------------- weights, offline
def _resnet18_reference_state():
    torch.manual_seed(123)
    from torchvision.models import resnet18

    return resnet18().state_dict()


def _torchvision_cache_file(name="resnet18-f37072fd.pth") -> Path:
    # torchvision looks for <TORCH_HOME>/hub/checkpoints/<file name of the URL>.
    return Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / name


def test_pretrained_reads_torchvision_cache_offline():
    state = _resnet18_reference_state()
    cached = _torchvision_cache_file()
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    loaded = resolve_weights(get_backbone("resnet18"), pretrained=True, weights=None)
    torch.testing.assert_close(loaded["conv1.weight"], state["conv1.weight"])
    # Short and full torchvision names resolve to the same file.
    for name in ("IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1", "DEFAULT"):
        loaded = resolve_weights(get_backbone("resnet18"), pretrained=False, weights=name)
        torch.testing.assert_close(loaded["fc.bias"], state["fc.bias"])


def test_pretrained_missing_offline_says_which_file_and_where():
    expected_dir = str(_torchvision_cache_file().parent)
    with pytest.raises(WeightsError) as info:
        resolve_weights(get_backbone("resnet18"), pretrained=True, weights=None)
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message
    assert expected_dir in message
    assert "TORCH_HOME" in message and "weights=" in message


def test_unknown_weight_name_lists_choices():
    with pytest.raises(WeightsError, match=r"Unknown weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        resolve_weights(get_backbone("resnet18"), pretrained=False, weights="IMAGENET9K")


def test_no_pretrained_weights_for_scratch_backbones():
    with pytest.raises(WeightsError, match="'cnn_small' has no pretrained weights"):
        resolve_weights(get_backbone("cnn_small"), pretrained=True, weights=None)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_round_trip(tmp_path, suffix):
    state = _resnet18_reference_state()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "epoch": 3}, path)  # a wrapped checkpoint
    loaded = load_weights_file(path)
    torch.testing.assert_close(loaded["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    module = get_backbone("resnet18").build(in_chans=3, state_dict=loaded)
    torch.testing.assert_close(module.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert isinstance(module.fc, nn.Identity)


def test_weights_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights_file(tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="it is a directory"):
        load_weights_file(tmp_path)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="Could not read weights from"):
        load_weights_file(junk)
    other = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, other)
    with pytest.raises(WeightsError, match="do not match the ResNet architecture: missing keys"):
        get_backbone("resnet18").build(in_chans=3, state_dict=load_weights_file(other))


def test_classifier_starts_from_file_weights(tmp_path, small_digits):
    X, y = small_digits
    state = _resnet18_reference_state()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    clf = ImageClassifier(
        backbone="resnet18",
        weights=path,
        input_size=32,
        max_epochs=1,
        lr=1e-12,
        random_state=0,
    ).fit(X[:40], y[:40])
    backbone = clf.net_.module_.backbone
    # lr=1e-12 leaves the weights where they started: the file's, not a random init.
    torch.testing.assert_close(backbone.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
    # Pretrained: ImageNet normalisation from the spec; grayscale repeated to RGB.
    adapter = clf.net_.module_.adapter
    np.testing.assert_allclose(adapter.mean.flatten().numpy(), get_backbone("resnet18").mean)
    assert adapter.out_chans == 3 and clf.input_size_ == (32, 32)


def test_pretrained_warns_on_unscaled_floats(tmp_path, small_digits):
    X, y = small_digits
    path = tmp_path / "resnet18.pth"
    torch.save(_resnet18_reference_state(), path)
    clf = ImageClassifier(backbone="resnet18", weights=path, input_size=16, max_epochs=1)
    with pytest.warns(UserWarning, match=r"expects pixel values in \[0, 1\]"):
        clf.fit(X[:20] * 16, y[:20])
