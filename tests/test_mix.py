"""MixUp and CutMix: the blended batches, the blended loss, and ImageClassifier(mix=...)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn
from torch.nn import functional as F

import sklimg
from sklimg import ImageClassifier
from sklimg._mix import MixedTargets, mix_batch
from sklimg._network import HeadOnly
from sklimg._torch_data import WeightedTargets

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


def _batch(n=6, size=10, dtype=torch.float32):
    """Images whose pixels each hold their image's number: which image a pixel came
    from can be read back."""
    X = torch.arange(1, n + 1, dtype=dtype).view(n, 1, 1, 1).expand(n, 1, size, size)
    return X.contiguous(), torch.arange(n) % 3


def test_mixup_blends_each_image_with_the_one_before_it():
    X, y = _batch()
    torch.manual_seed(0)
    mixed, targets = mix_batch(X, y, "mixup", alpha=0.4)
    lam = targets.lam
    assert 0 < lam < 1
    expected = lam * X + (1 - lam) * X[[5, 0, 1, 2, 3, 4]]
    torch.testing.assert_close(mixed, expected)
    assert torch.equal(targets.y, y)
    assert targets.partner.tolist() == [y[5], *y[:5].tolist()]
    # uint8 images are blended in [0, 1], as the network's input adapter scales them.
    mixed8, _ = mix_batch(X.to(torch.uint8), y, "mixup", alpha=0.4)
    assert mixed8.dtype == torch.float32 and float(mixed8.max()) <= 6 / 255 + 1e-6


def test_cutmix_pastes_a_box_whose_area_sets_lam():
    X, y = _batch(size=32, dtype=torch.uint8)
    torch.manual_seed(1)
    mixed, targets = mix_batch(X, y, "cutmix")
    assert mixed.dtype == torch.uint8  # pasting needs no blend
    for i in range(len(X)):
        own = (mixed[i] == X[i]).float().mean().item()
        partner = (mixed[i] == X[i - 1]).float().mean().item()
        assert own + partner == 1  # every pixel is one of the two
        assert own == pytest.approx(targets.lam)
    assert 0 < targets.lam < 1
    # The box lies at the same place in every image.
    assert torch.equal(mixed[0] == X[0], mixed[3] == X[3])


def test_both_methods_are_drawn_and_the_draws_repeat():
    X, y = _batch(size=16)
    kinds = set()
    for seed in range(20):
        torch.manual_seed(seed)
        mixed, _ = mix_batch(X, y, "mixup_cutmix")
        # MixUp leaves no pixel of image 0 whole; CutMix leaves most of them.
        kinds.add("cutmix" if bool((mixed[0] == X[0]).any()) else "mixup")
        torch.manual_seed(seed)
        again, _ = mix_batch(X, y, "mixup_cutmix")
        assert torch.equal(mixed, again)
    assert kinds == {"mixup", "cutmix"}


def test_alpha_sets_how_much_is_mixed():
    X, y = _batch()
    torch.manual_seed(0)
    light = [min(t.lam, 1 - t.lam) for t in (mix_batch(X, y, "mixup", 0.05)[1] for _ in range(200))]
    heavy = [min(t.lam, 1 - t.lam) for t in (mix_batch(X, y, "mixup", 5.0)[1] for _ in range(200))]
    assert np.mean(light) < 0.1 < 0.35 < np.mean(heavy)
    # Tiny alphas mix (almost) nothing: torch's Beta would return 0.5 there.
    tiny = [mix_batch(X, y, "mixup", 1e-6)[1].lam for _ in range(50)]
    assert max(min(lam, 1 - lam) for lam in tiny) < 1e-3


def test_numpy_alphas_from_a_grid_work(small_digits):
    X, y = small_digits
    search = GridSearchCV(
        ImageClassifier(**FAST, mix="mixup"),
        {"mix_alpha": np.array([0.2, 1], dtype=np.float32)},
        cv=2,
        error_score="raise",
    )
    assert search.fit(X, y).best_params_["mix_alpha"] in (np.float32(0.2), np.float32(1))
    ImageClassifier(**FAST, mix="cutmix", mix_alpha=np.int64(1)).fit(X, y)


def test_a_step_mixes_once_whatever_the_optimizer(small_digits, monkeypatch):
    from sklimg._training import net

    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return mix_batch(*args, **kwargs)

    monkeypatch.setattr(net, "mix_batch", counting)
    X, y = small_digits
    clf = ImageClassifier(
        **{**FAST, "max_epochs": 1}, mix="mixup", optimizer=torch.optim.LBFGS, weight_decay=0,
        lr=0.1,
    )  # fmt: skip
    clf.fit(X, y)
    # LBFGS evaluates each step's loss several times, on the same mixed batch.
    assert len(calls) == clf.history_[-1, "train_batch_count"] == 5


def test_weights_per_image_travel_with_their_images():
    X, y = _batch()
    weight = torch.arange(6, dtype=torch.float32)
    _, targets = mix_batch(X, WeightedTargets(y, weight), "cutmix")
    assert isinstance(targets.partner, WeightedTargets)
    assert targets.partner.weight.tolist() == [5, 0, 1, 2, 3, 4]
    assert torch.equal(targets.partner.y, y.roll(1))


def test_the_loss_is_the_blend_of_the_two_labels_losses(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, class_weight="balanced", label_smoothing=0.1).fit(X, y)
    net = clf.net_
    logits = torch.randn(8, 10)
    a, b = torch.arange(8), torch.arange(8).roll(1)
    expected = 0.3 * net.get_loss(logits, a) + 0.7 * net.get_loss(logits, b)
    torch.testing.assert_close(net.get_loss(logits, MixedTargets(a, b, 0.3)), expected)
    # Without class weights and smoothing it is the cross-entropy with soft targets.
    plain = ImageClassifier(**FAST).fit(X, y).net_
    soft = 0.3 * F.one_hot(a, 10).float() + 0.7 * F.one_hot(b, 10).float()
    torch.testing.assert_close(
        plain.get_loss(logits, MixedTargets(a, b, 0.3)), F.cross_entropy(logits, soft)
    )


def test_the_classifier_trains_on_mixed_batches(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    params = dict(backbone="test_cnn", max_epochs=8, lr=0.03, random_state=0)
    plain = ImageClassifier(**params).fit(X_train[:1000], y_train[:1000])
    for mix in ("mixup", "cutmix", "mixup_cutmix"):
        clf = ImageClassifier(**params, mix=mix).fit(X_train[:1000], y_train[:1000])
        assert clf.score(X_test, y_test) > 0.85, mix
        # Mixed labels are harder to fit: the training loss stays well above.
        assert clf.history_[-1, "train_loss"] > 3 * plain.history_[-1, "train_loss"], mix
        assert clf.net_.mix == mix
    # The step mixes what it is given; without mix, batches pass unchanged.
    batch = (torch.from_numpy(X_train[:8, None]), torch.from_numpy(y_train[:8]))
    draws = [clf.net_.mixed(batch) for _ in range(5)]
    assert all(isinstance(targets, MixedTargets) for _, targets in draws)
    assert any(not torch.equal(mixed, batch[0]) for mixed, _ in draws)
    assert plain.net_.mixed(batch) is batch


def test_mixed_fits_repeat_and_predict_unmixed(small_digits, tmp_path):
    X, y = small_digits
    first = ImageClassifier(**FAST, mix="mixup_cutmix", mix_alpha=0.5).fit(X, y)
    second = ImageClassifier(**FAST, mix="mixup_cutmix", mix_alpha=0.5).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    # Predictions are deterministic: nothing is mixed outside training.
    np.testing.assert_array_equal(first.predict_proba(X), first.predict_proba(X))
    sklimg.save(first, tmp_path / "model.sklimg")
    loaded = sklimg.load(tmp_path / "model.sklimg")
    assert loaded.mix == "mixup_cutmix" and loaded.mix_alpha == 0.5
    np.testing.assert_allclose(loaded.predict_proba(X), first.predict_proba(X), atol=1e-6)


class _Counting(nn.Module):
    images_seen = 0

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x):
        _Counting.images_seen += len(x)
        return torch.relu(self.conv(x)).flatten(1)


def test_a_frozen_backbone_forwards_the_mixed_images_every_epoch(small_digits):
    X, y = small_digits
    _Counting.images_seen = 0
    clf = ImageClassifier(_Counting, finetune="head", mix="mixup", max_epochs=3, random_state=0)
    clf.fit(X, y)
    # Three epochs of training images, not features cached once.
    assert _Counting.images_seen >= 3 * len(X)
    assert not isinstance(clf.net_.module_, HeadOnly)


def test_mixing_goes_with_weights_partial_fit_and_warm_start(small_digits):
    X, y = small_digits
    weights = np.where(y == 3, 0.0, 1.0)
    clf = ImageClassifier(**FAST, lr=0.03, mix="cutmix").fit(X, y, sample_weight=weights)
    assert (clf.predict(X) == 3).sum() == 0  # weight 0: in no image's loss, nor partner's
    incremental = ImageClassifier(**FAST, mix="mixup")
    for part in np.array_split(np.arange(len(y)), 3):
        incremental.partial_fit(X[part], y[part], classes=np.arange(10))
    assert len(incremental.history_) == 3 and incremental.net_.mix == "mixup"
    # Changing mix between calls builds a net that mixes the new way.
    incremental.set_params(mix="cutmix").partial_fit(X, y)
    assert incremental.net_.mix == "cutmix"
    warm = ImageClassifier(**FAST, warm_start=True).fit(X, y)
    warm.set_params(mix="mixup").fit(X, y)
    assert len(warm.history_) == 4 and warm.net_.mix == "mixup"


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"mix": "mixcut"}, InvalidParameterError, "'mix' parameter"),
        ({"mix": "mixup", "mix_alpha": 0.0}, InvalidParameterError, "'mix_alpha' parameter"),
        ({"mix": "cutmix", "mix_alpha": -1}, InvalidParameterError, "'mix_alpha' parameter"),
        (
            {"mix": "mixup", "head": LogisticRegression()},
            ValueError,
            r"mix='mixup' blends images.*scikit-learn head.*Use head=None, or mix=None",
        ),
        (
            {"mix": "cutmix", "backbone": "hog"},
            ValueError,
            r"mix='cutmix' blends images.*backbone='hog' fits a scikit-learn head.*Use "
            r"backbone='cnn_small', or mix=None",
        ),
    ],
)
def test_bad_mix_settings_fail_before_training(small_digits, params, error, match):
    X, y = small_digits
    with pytest.raises(error, match=match):
        ImageClassifier(**{**FAST, **params}).fit(X, y)


def test_an_alpha_without_mix_is_said_to_do_nothing(small_digits):
    X, y = small_digits
    with pytest.warns(UserWarning, match=r"mix_alpha=0.4 has no effect without mix .*mix='mixup'"):
        ImageClassifier(**FAST, mix_alpha=0.4).fit(X, y)
