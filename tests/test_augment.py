"""Augment: new random images every training epoch, never at prediction, only on
training folds; reproducible with the classifier's random_state."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from torch import nn

from sklimg import ImageClassifier
from sklimg.preprocessing import LazyImages
from sklimg.preprocessing._augment import AUGMENT_POLICIES, Augment
from sklimg.utils._sklearn_compat import InvalidParameterError


class Recorder(nn.Module):
    """A backbone that remembers every batch it sees, by mode (train or eval)."""

    seen: list = []

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 8)

    def forward(self, x):
        Recorder.seen.append((self.training, x.detach().clone()))
        return self.linear(x.flatten(1))


@pytest.fixture
def recorder():
    Recorder.seen = []
    yield Recorder
    Recorder.seen = []


def _rows(batch):
    # Compare epochs as sets of images: shuffling changes the order, not the content.
    return sorted(map(tuple, batch.flatten(1).numpy().round(5).tolist()))


def test_training_images_change_every_epoch_and_never_at_predict(small_digits, recorder):
    X, y = small_digits
    X, y = X[:40], y[:40]
    clf = ImageClassifier(recorder, max_epochs=3, batch_size=40, random_state=0)
    pipe = make_pipeline(Augment("light", hflip=0.0), clf).fit(X, y)
    train_batches = [x for training, x in recorder.seen if training][:3]  # one per epoch
    assert len(train_batches) == 3
    assert _rows(train_batches[0]) != _rows(train_batches[1]) != _rows(train_batches[2])

    recorder.seen = []
    fitted = pipe[-1]
    proba = pipe.predict_proba(X)
    eval_batches = [x for training, x in recorder.seen if not training]
    np.testing.assert_array_equal(proba, fitted.predict_proba(X))  # Augment step skipped
    # What the network saw at predict is exactly the (normalised) input images.
    adapter = fitted.net_.module_.adapter
    expected = adapter(torch.from_numpy(X[:, None]))
    torch.testing.assert_close(eval_batches[0], expected)


def test_without_augment_epochs_see_the_same_images(small_digits, recorder):
    X, y = small_digits
    ImageClassifier(recorder, max_epochs=2, batch_size=40, random_state=0).fit(X[:40], y[:40])
    first, second = [x for training, x in recorder.seen if training][:2]
    assert _rows(first) == _rows(second)


def test_augment_transform_is_identity_and_fit_transform_is_lazy():
    X = np.random.default_rng(0).random((5, 12, 12, 3), dtype=np.float32)
    aug = Augment("standard")
    assert aug.fit(X).transform(X) is X
    view = aug.fit_transform(X)
    assert isinstance(view, LazyImages) and view.random and len(view) == 5
    torch.manual_seed(0)
    a = view[0]
    b = view[0]
    assert a.shape == X[0].shape and a.dtype == X[0].dtype
    assert not np.array_equal(a, b)  # a fresh draw on each access
    assert Augment("none").fit_transform(X) is X


@pytest.mark.parametrize("policy", sorted(AUGMENT_POLICIES))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_policy_keeps_shape_and_dtype(policy, dtype, channels):
    rng = np.random.default_rng(0)
    X = (rng.random((3, 16, 20, channels)) * (255 if dtype == np.uint8 else 1)).astype(dtype)
    image = Augment(policy).fit_transform(X)[1]  # LazyImages, or X itself for "none"
    assert image.shape == (16, 20, channels) and image.dtype == dtype


def test_explicit_parameters_override_the_preset():
    aug = Augment("standard", hflip=0.0, rotation=0.0, crop_scale=(1.0, 1.0), color_jitter=0.0)
    assert not aug.fit().settings_["hflip"]
    X = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1)
    assert aug.fit_transform(X) is X  # nothing random left
    flips = Augment("none", vflip=1.0).fit_transform(X)
    np.testing.assert_array_equal(flips[0], X[0, ::-1])


def test_augment_param_validation():
    with pytest.raises(InvalidParameterError, match="'policy' parameter of Augment"):
        Augment("heavy").fit()
    with pytest.raises(InvalidParameterError, match="'hflip' parameter of Augment"):
        Augment(hflip=2).fit()
    with pytest.raises(ValueError, match=r"crop_scale must be \(min, max\)"):
        Augment(crop_scale=(0.9, 0.5)).fit()


def test_augmented_training_is_reproducible_and_worker_independent(small_digits):
    X, y = small_digits
    params = dict(backbone="test_cnn", max_epochs=2, random_state=0, augment="light")
    a = ImageClassifier(**params, num_workers=0).fit(X, y).predict_proba(X)
    b = ImageClassifier(**params, num_workers=0).fit(X, y).predict_proba(X)
    c = ImageClassifier(**params, num_workers=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7)
    d = ImageClassifier(**{**params, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.allclose(a, d)


def test_classifier_augment_parameter_equals_pipeline_step(small_digits):
    X, y = small_digits
    base = dict(backbone="test_cnn", max_epochs=2, random_state=0)
    inline = ImageClassifier(**base, augment=Augment("light", hflip=0)).fit(X, y)
    piped = make_pipeline(Augment("light", hflip=0), ImageClassifier(**base)).fit(X, y)
    np.testing.assert_allclose(inline.predict_proba(X), piped.predict_proba(X), rtol=1e-6)
    assert clone(inline).get_params()["augment"].get_params()["hflip"] == 0


def test_only_training_folds_are_augmented(small_digits, monkeypatch):
    """cross_val_score fits on training folds (fit_transform) and scores on test folds
    (transform): count how many images go through each path."""
    X, y = small_digits
    calls = {"fit_transform": 0, "transform": 0}
    original_fit_transform, original_transform = Augment.fit_transform, Augment.transform

    def counting_fit_transform(self, X, y=None):
        calls["fit_transform"] += len(X)
        return original_fit_transform(self, X, y)

    def counting_transform(self, X):
        calls["transform"] += len(X)
        return original_transform(self, X)

    monkeypatch.setattr(Augment, "fit_transform", counting_fit_transform)
    monkeypatch.setattr(Augment, "transform", counting_transform)
    pipe = make_pipeline(Augment("light"), ImageClassifier(backbone="test_cnn", max_epochs=1))
    cross_val_score(pipe, X[:90], y[:90], cv=3)
    assert calls == {"fit_transform": 180, "transform": 90}


def test_normalize_after_augment_learns_from_the_real_images():
    from sklimg.preprocessing import Normalize

    X = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    view = Augment("standard").fit_transform(X)
    a = Normalize("fit").fit(view)
    b = Normalize("fit").fit(view)
    np.testing.assert_array_equal(a.mean_, b.mean_)
    np.testing.assert_allclose(a.mean_, [X.mean()], rtol=1e-5)
