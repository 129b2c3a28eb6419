"""The torch module sklimg trains (sklimg._network): its input adapter, the network
built from a spec and images, its views, and the rebuild from a saved architecture."""

import numpy as np
import pytest
import torch
from torch import nn

from sklimg import ImageClassifier
from sklimg._network import InputAdapter, build_backbone, rebuild_network
from sklimg._pixels import unit_float
from sklimg._torch_data import images_to_tensor
from sklimg.backbones import get_backbone, resolve_backbone
from sklimg.exceptions import ImageInputError

FAST = dict(backbone="test_cnn", max_epochs=1, random_state=0)


def test_the_adapter_scales_uint8_as_floats_are_given():
    adapter = InputAdapter([0.5], [0.25], out_chans=3, resize_to=(8, 8))
    u8 = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    out = adapter(u8)
    torch.testing.assert_close(out, adapter(unit_float(u8)))
    assert out.shape == (2, 3, 8, 8)  # grayscale repeated, resized on the fly
    same = InputAdapter([0.5], [0.25], out_chans=1)(u8)
    torch.testing.assert_close(same, (u8.float() / 255 - 0.5) / 0.25)


def test_the_network_and_its_feature_extractor_share_their_parts(small_digits):
    X, _ = small_digits
    network = build_backbone(get_backbone("test_cnn"), X[..., None]).network(10)
    extractor = network.feature_extractor()
    assert extractor.backbone is network.backbone and extractor.adapter is network.adapter
    assert extractor.head is None and network.head.out_features == 10
    batch = images_to_tensor(X[:4, ..., None])
    network.eval()
    with torch.no_grad():
        torch.testing.assert_close(network.head(extractor(batch)), network(batch))
    network.freeze_backbone().train()
    assert not any(p.requires_grad for p in network.backbone.parameters())
    assert not network.backbone.training and network.head.training  # BatchNorm frozen too


def test_a_saved_architecture_rebuilds_the_same_network(small_digits):
    X, y = small_digits
    network = ImageClassifier(**FAST).fit(X, y).net_.module_
    rebuilt = rebuild_network(network.architecture)
    rebuilt.load_state_dict(network.state_dict(), strict=True)
    batch = images_to_tensor(X[:16, ..., None])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(batch), network.eval()(batch))


class Failing(nn.Module):
    def forward(self, x):
        raise RuntimeError("shapes do not fit")


def test_a_backbone_that_cannot_take_the_images_fails_before_training():
    with pytest.raises(ImageInputError, match=r"Backbone 'Failing' failed on a batch of shape"):
        build_backbone(resolve_backbone(Failing), np.zeros((4, 8, 8, 1), np.float32))
