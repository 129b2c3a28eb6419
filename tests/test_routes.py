"""The three routes: classical features, frozen features + scikit-learn head, and
fine-tuning (full, head-only on cached features, gradual), with the feature cache."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.svm import LinearSVC
from torch import nn

import sklimg._cache
import sklimg._fit.neural
from sklimg import ImageClassifier
from sklimg._torch_data import images_to_tensor
from sklimg.features import DeepFeatures
from sklimg.utils.validation import check_images

FAST = dict(max_epochs=2, random_state=0)


class Counting(nn.Module):
    """A small backbone that counts the images it is asked to process."""

    images_seen = 0

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        Counting.images_seen += len(x)
        return torch.relu(self.bn(self.conv(x))).flatten(1)


@pytest.fixture
def counting():
    Counting.images_seen = 0
    return Counting


def _backbone_state(clf):
    return {k: v.clone() for k, v in clf.net_.module_.backbone.state_dict().items()}


def test_head_finetuning_computes_features_once(small_digits, counting):
    X, y = small_digits
    clf = ImageClassifier(counting, finetune="head", max_epochs=1, random_state=0).fit(X, y)
    seen_one_epoch = counting.images_seen
    counting.images_seen = 0
    before = ImageClassifier(counting, finetune="head", max_epochs=10, random_state=0)
    before.fit(X, y)
    # Ten epochs forward the backbone exactly as often as one: features are cached.
    assert counting.images_seen == seen_one_epoch
    assert before.score(X, y) > 0.8
    assert clf.finetune_ == "head" and clf.net_.module_.backbone_frozen


def test_head_finetuning_freezes_weights_and_batchnorm(small_digits):
    X, y = small_digits
    probe = ImageClassifier(Counting, finetune="head", max_epochs=1, random_state=0).fit(X, y)
    initial = _backbone_state(probe)
    clf = ImageClassifier(Counting, finetune="head", max_epochs=4, random_state=0).fit(X, y)
    trained = _backbone_state(clf)
    for key, value in initial.items():  # weights and BatchNorm statistics alike
        torch.testing.assert_close(trained[key], value, msg=key)
    full = ImageClassifier(Counting, finetune="full", max_epochs=2, random_state=0).fit(X, y)
    assert not torch.equal(_backbone_state(full)["conv.weight"], initial["conv.weight"])


def test_gradual_unfreezes_after_freeze_epochs(small_digits):
    X, y = small_digits
    start = _backbone_state(
        ImageClassifier(Counting, finetune="head", max_epochs=1, random_state=0).fit(X, y)
    )
    frozen = ImageClassifier(
        Counting, finetune="gradual", freeze_epochs=2, max_epochs=2, random_state=0
    )
    with pytest.warns(UserWarning, match=r"stays frozen for this whole fit.*max_epochs above 2"):
        frozen_throughout = frozen.fit(X, y)
    torch.testing.assert_close(
        _backbone_state(frozen_throughout)["conv.weight"], start["conv.weight"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unfrozen = ImageClassifier(
            Counting, finetune="gradual", freeze_epochs=1, max_epochs=2, random_state=0
        ).fit(X, y)
    assert not torch.equal(_backbone_state(unfrozen)["conv.weight"], start["conv.weight"])
    assert not unfrozen.net_.module_.backbone_frozen
    # Counted over warm starts: the second one-epoch fit still ends frozen, the third
    # unfreezes, and says nothing.
    staged = ImageClassifier(
        Counting, finetune="gradual", freeze_epochs=2, max_epochs=1, warm_start=True
    )
    for _ in range(2):
        with pytest.warns(UserWarning, match="stays frozen"):
            staged.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        staged.fit(X, y)
    assert not staged.net_.module_.backbone_frozen


def test_pretrained_full_finetuning_uses_a_lower_backbone_lr(small_digits, tmp_path):
    from torchvision.models import resnet18

    X, y = small_digits
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), path)
    clf = ImageClassifier(
        "resnet18", weights=path, finetune="full", input_size=16, lr=0.01, max_epochs=1,
        lr_schedule="constant", random_state=0,
    ).fit(X[:64], y[:64])  # fmt: skip
    lrs = sorted(g["lr"] for g in clf.net_.optimizer_.param_groups)
    assert lrs == pytest.approx([0.001, 0.01])
    # One-cycle peaks at each group's own rate (OneCycleLR's single max_lr would not).
    onecycle = clone(clf).set_params(lr_schedule="onecycle").fit(X[:64], y[:64])
    peaks = sorted(g["max_lr"] for g in onecycle.net_.optimizer_.param_groups)
    assert peaks == pytest.approx([0.001, 0.01])
    auto = ImageClassifier("resnet18", weights=path, input_size=16, max_epochs=1).fit(
        X[:64], y[:64]
    )
    assert auto.finetune_ == "head"  # pretrained weights: "auto" trains the head only


def test_scikit_learn_head_on_frozen_deep_features(small_digits):
    X, y = small_digits
    clf = ImageClassifier("cnn_small", head=LogisticRegression(max_iter=2000), random_state=0)
    clf.fit(X, y)
    assert not hasattr(clf, "net_") and isinstance(clf.feature_extractor_, DeepFeatures)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    svc = ImageClassifier("cnn_small", head=LinearSVC(), random_state=0).fit(X, y)
    assert svc.predict(X).shape == (len(X),)
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as error:
        svc.predict_proba(X)
    assert "SVC(probability=True)" in str(error.value.__cause__)
    with pytest.raises(ValueError, match="augment='light' needs a neural head"):
        ImageClassifier("cnn_small", head=LogisticRegression(), augment="light").fit(X, y)


def test_scikit_learn_head_methods_follow_the_head(small_digits):
    # As for a scikit-learn Pipeline: the classifier has what its head has.
    X, y = small_digits
    svc = ImageClassifier("cnn_small", head=LinearSVC(), random_state=0)
    assert not hasattr(svc, "predict_proba") and not hasattr(svc, "predict_log_proba")
    assert hasattr(svc, "decision_function")
    svc.fit(X, y)
    scores = svc.decision_function(X)
    assert scores.shape == (len(X), 10)
    np.testing.assert_array_equal(svc.classes_[scores.argmax(axis=1)], svc.predict(X))
    hog = ImageClassifier("pixels")  # the default head: LogisticRegression
    assert hasattr(hog, "predict_proba") and hasattr(hog, "decision_function")
    neural = ImageClassifier("test_cnn", max_epochs=1)
    assert hasattr(neural, "predict_proba") and not hasattr(neural, "decision_function")
    assert not hasattr(neural.fit(X, y), "decision_function")


def test_scikit_learn_head_fits_on_the_original_labels(small_digits):
    X, y = small_digits
    names = np.array(list("abcdefghij"))[y]
    head = LogisticRegression(class_weight={"a": 5.0}, max_iter=500)
    clf = ImageClassifier("pixels", head=head).fit(X, names)
    np.testing.assert_array_equal(clf.head_.classes_, clf.classes_)
    assert set(clf.predict(X)) <= set(names)
    with pytest.raises(ValueError, match=r"head must be a scikit-learn classifier; got Ridge"):
        ImageClassifier("pixels", head=Ridge()).fit(X, y)
    with pytest.raises(ValueError, match=r"Set it there, e\.g\. head=LogisticRegression\("):
        ImageClassifier("pixels", head=LogisticRegression(), class_weight="balanced").fit(X, y)


def test_class_weight_reaches_the_default_scikit_learn_head(small_digits):
    X, y = small_digits
    plain = ImageClassifier("pixels").fit(X, y)
    weighted = ImageClassifier("pixels", class_weight={0: 100.0}).fit(X, y)
    assert weighted.head_[-1].class_weight == {0: 100.0}
    # The training digits are separable either way; the weight shows in the probabilities.
    assert weighted.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean()


def test_scikit_learn_head_on_deep_features_repeats_with_random_state(small_digits):
    X, y = small_digits

    def fit():
        head = LogisticRegression(max_iter=300)
        return ImageClassifier("cnn_small", head=head, random_state=0).fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(fit(), fit())


def test_switching_route_forgets_the_other_routes_attributes(small_digits):
    X, y = small_digits
    clf = ImageClassifier("test_cnn", max_epochs=1).fit(X, y)
    assert hasattr(clf, "finetune_")
    clf.set_params(head=LogisticRegression(max_iter=300)).fit(X, y)
    assert not hasattr(clf, "finetune_") and not hasattr(clf, "net_")


def test_deep_features_of_a_middle_layer(small_digits):
    """layer= gives that layer's pooled output; the layers after it never run."""
    X, _ = small_digits
    X = X[:20]
    extractor = DeepFeatures(
        "resnet18", pretrained=False, layer="layer2", device="cpu", random_state=0
    )
    features = extractor.fit_transform(X)
    assert features.shape == (20, 128) and extractor.n_features_out_ == 128
    network = extractor.network_
    resnet = network.backbone.network
    calls = []
    resnet.layer3.register_forward_hook(lambda *args: calls.append(1))
    with torch.inference_mode():
        x = network.adapter(images_to_tensor(check_images(X)))
        x = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
        expected = resnet.layer2(resnet.layer1(x)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(extractor.transform(X), expected, rtol=1e-4, atol=1e-5)
    assert calls == []
    whole = DeepFeatures("resnet18", pretrained=False, device="cpu", random_state=0)
    assert whole.fit_transform(X).shape == (20, 512)


def test_classical_backbones_and_switching_routes(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    hog = dict(
        backbone="hog", backbone_kwargs={"pixels_per_cell": (4, 4), "cells_per_block": (1, 1)}
    )
    clf = ImageClassifier(**hog).fit(X_train, y_train)
    # 8x8 is small for HOG (0.82 here; upsampled to 32x32 with an SVC it reaches 0.98,
    # see tests/test_features.py); the default head is a standardised logistic model.
    assert clf.score(X_test, y_test) > 0.75
    assert type(clf.feature_extractor_).__name__ == "HOG"
    # One estimator, two routes: a deep refit forgets the classical state and back.
    clf.set_params(backbone="test_cnn", backbone_kwargs=None, **FAST).fit(X_train, y_train)
    assert hasattr(clf, "net_") and not hasattr(clf, "head_")
    clf.set_params(**hog).fit(X_train, y_train)
    assert hasattr(clf, "head_") and not hasattr(clf, "net_")
    union = ImageClassifier("hog+pixels", backbone_kwargs={"hog": {"pixels_per_cell": (4, 4)}})
    assert union.fit(X_train, y_train).score(X_test, y_test) > 0.9
    with pytest.raises(ValueError, match="Only classical feature backbones combine"):
        ImageClassifier("hog+resnet18").fit(X_train[:20], y_train[:20])
    with pytest.raises(TypeError, match="keyed by part name"):
        ImageClassifier("hog+pixels", backbone_kwargs={"bins": 3}).fit(X_train[:20], y_train[:20])


def test_grid_search_switches_between_classical_and_deep(small_digits):
    X, y = small_digits
    search = GridSearchCV(
        ImageClassifier(max_epochs=2, random_state=0),
        {"backbone": ["pixels", "test_cnn"]},
        cv=3,
    ).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2


@pytest.fixture
def pretrained_tiny(tmp_path):
    """A tiny backbone with "pretrained" weights and fixed normalisation: like a real
    pretrained network, its features do not depend on the training images."""
    from sklimg.backbones import BackboneSpec, TinyCNN, get_backbone

    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(TinyCNN(in_chans=1).state_dict(), path)
    spec = BackboneSpec(
        "tiny_pretrained", builder=get_backbone("test_cnn").builder, input_size=None,
        mean=(0.3,), std=(0.4,), in_chans=None,
    )  # fmt: skip
    return dict(backbone=spec, weights=path)


@pytest.fixture
def computed(monkeypatch):
    """Counts images whose features the cache had to compute."""
    counter = {"n": 0}
    original = sklimg._cache.FeatureCache.get_or_compute

    def counting(self, digests, compute):
        def counted(indices):
            counter["n"] += len(indices)
            return compute(indices)

        return original(self, digests, counted)

    monkeypatch.setattr(sklimg._cache.FeatureCache, "get_or_compute", counting)
    return counter


def test_cache_computes_each_image_once_across_folds_and_grid_points(
    small_digits, tmp_path, computed, pretrained_tiny
):
    """A pretrained extractor does not depend on the training images, so every fold
    and grid point shares its features. (A randomly initialised one takes its
    normalisation from the training images: folds differ, grid points on one fold
    still share.)"""
    X, y = small_digits
    pretrained = dict(**pretrained_tiny, memory=tmp_path / "cache")
    clf = ImageClassifier(head=LogisticRegression(max_iter=500), **pretrained)
    search = GridSearchCV(clf, {"head__C": [0.1, 1.0, 10.0]}, cv=3).fit(X, y)
    assert computed["n"] == len(X)  # 3 grid points x 3 folds + refit: each image once
    assert search.best_score_ > 0.2
    # The neural head route (finetune="head") reads the same cache.
    head = ImageClassifier(finetune="head", **pretrained, **FAST)
    cross_val_score(head, X, y, cv=3)
    assert computed["n"] == len(X)


def test_cache_never_reuses_stale_features(small_digits, tmp_path, computed):
    X, _ = small_digits
    X = X[:60]

    def features(**params):
        return DeepFeatures("test_cnn", pretrained=False, memory=tmp_path, **params).fit_transform(
            X
        )

    a = features(random_state=0)
    assert computed["n"] == 60
    np.testing.assert_array_equal(features(random_state=0), a)
    assert computed["n"] == 60  # cached
    features(random_state=1)  # other weights
    assert computed["n"] == 120
    features(random_state=0, input_size=16)  # other preprocessing in the network
    assert computed["n"] == 180
    features(random_state=0, layer="3")  # another layer
    assert computed["n"] == 240
    DeepFeatures("test_cnn", pretrained=False, memory=tmp_path, random_state=0).fit_transform(
        X * 0.5
    )
    assert computed["n"] == 300  # other pixels


def test_cache_keys_files_by_content_and_preprocessing(tmp_path, computed, pretrained_tiny):
    from PIL import Image

    from sklimg.preprocessing import Resize

    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(path)
        paths.append(str(path))
    cache = tmp_path / "cache"
    extractor = DeepFeatures(**pretrained_tiny, memory=cache)
    extractor.fit_transform(Resize(8).fit_transform(paths))
    assert computed["n"] == 12
    extractor.fit_transform(Resize(8).fit_transform(paths))
    assert computed["n"] == 12
    extractor.fit_transform(Resize(10).fit_transform(paths))  # another resize: new digests
    assert computed["n"] == 24
    Image.fromarray(np.zeros((12, 12), dtype=np.uint8)).save(paths[0])  # a changed file
    extractor.fit_transform(Resize(8).fit_transform(paths))
    assert computed["n"] == 25


def test_warm_start_on_cached_features_uses_the_trained_backbone(small_digits, monkeypatch):
    # The head goes on learning from the features the fitted network computes, not
    # from a backbone built afresh (new statistics, new random weights).
    import sklimg.classifier

    X, y = small_digits
    seen = []
    real = sklimg._fit.neural.features_of

    def spy(network, images, **kwargs):
        seen.append(network)
        return real(network, images, **kwargs)

    monkeypatch.setattr(sklimg._fit.neural, "features_of", spy)
    clf = ImageClassifier("test_cnn", finetune="head", max_epochs=1, warm_start=True)
    clf.fit(X, y).fit(X * 0.5, y)
    assert len(seen) == 2 and seen[1].backbone is clf.net_.module_.backbone
    assert seen[1].adapter is clf.net_.module_.adapter and seen[1].backbone_frozen
    assert not any(m.training for m in clf.net_.module_.backbone.modules())  # still frozen
