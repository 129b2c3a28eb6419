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
from sklimg.exceptions import ImageInputError
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


def test_random_erasing_zeroes_a_rectangle():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 1, size=(40, 32, 32, 3)).astype(np.float32)  # no zero pixels
    view = Augment("none", erasing=1.0).fit_transform(X)
    areas = []
    for i in range(len(X)):
        image = view[i]  # each access draws anew
        erased = np.all(image == 0, axis=-1)  # every channel of a pixel
        rows, cols = np.flatnonzero(erased.any(axis=1)), np.flatnonzero(erased.any(axis=0))
        # One filled rectangle; the rest of the image untouched.
        assert (
            erased.sum()
            == len(rows) * len(cols)
            == (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        )
        np.testing.assert_array_equal(image[~erased], X[i][~erased])
        areas.append(erased.mean())
    assert 0.02 - 0.01 <= min(areas) and max(areas) <= 0.33 + 0.02
    # Half the images at erasing=0.5; uint8 and 0-255 floats alike (0 is in any range).
    half = Augment("none", erasing=0.5).fit_transform(np.round(X * 255).astype(np.uint8))
    erased = [bool((half[i] == 0).all(axis=-1).any()) for i in range(len(X))]
    assert 10 <= sum(erased) <= 30
    Augment("light", erasing=0.25).fit(X * 255)  # no range refusal


def test_augment_param_validation():
    with pytest.raises(InvalidParameterError, match="'policy' parameter of Augment"):
        Augment("heavy").fit()
    with pytest.raises(InvalidParameterError, match="'hflip' parameter of Augment"):
        Augment(hflip=2).fit()
    with pytest.raises(InvalidParameterError, match="'erasing' parameter of Augment"):
        Augment(erasing=1.5).fit()
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


# Photometric settings (colour jitter, automatic policies) clip pixels to [0, 1].
PHOTOMETRIC = [
    Augment("standard"),
    Augment("trivialaugment"),
    Augment("randaugment"),
    Augment("light", color_jitter=0.3),
]
GEOMETRIC = [
    Augment("light"),
    Augment("standard", color_jitter=0),
    Augment("none", vflip=0.5, rotation=10, crop_scale=(0.8, 1.0), translate=0.1),
]


def _digits_0_to_16():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)  # int64 pixels 0..16
    return X.reshape(-1, 8, 8)[:60], y[:60]


@pytest.mark.parametrize("aug", PHOTOMETRIC, ids=repr)
@pytest.mark.parametrize(
    "kind, low, high",
    [("int 0-16", "0", "16"), ("float 0-255", "0", "255"), ("normalised", "-1", "1")],
)
def test_photometric_settings_refuse_pixels_outside_0_1(aug, kind, low, high):
    X, _ = _digits_0_to_16()
    X = {
        "int 0-16": X,
        "float 0-255": X * 255.0 / 16,
        "normalised": X / 8.0 - 1,
    }[kind]
    for call in (aug.fit, aug.fit_transform):
        with pytest.raises(ImageInputError) as info:
            call(X)
        message = str(info.value)
        assert f"values from {low} to {high}" in message  # what was found
        assert "work on pixels in [0, 1]" in message or "works on pixels in [0, 1]" in message
        assert "Scale the images to [0, 1]" in message and "uint8" in message  # fixes
        assert "policy='light'" in message or "color_jitter=0" in message
        assert "Normalize step after Augment" in message


def test_range_error_names_the_clipping_operation():
    X, _ = _digits_0_to_16()
    with pytest.raises(ImageInputError, match=r"colour jitter \(color_jitter=0.2\)"):
        Augment("standard").fit(X)
    with pytest.raises(ImageInputError, match=r"automatic policy 'randaugment'.*policy='light'"):
        Augment("randaugment").fit(X)


@pytest.mark.parametrize("aug", GEOMETRIC, ids=repr)
def test_geometric_settings_keep_any_range(aug):
    X, _ = _digits_0_to_16()
    for images in (X, X * 255.0 / 16, X / 8.0 - 1):
        view = aug.fit_transform(images)
        assert view[0].max() <= images.max() + 1e-3  # not clipped to 1
        assert view[0].max() > 1 or images[0].max() <= 1


def test_photometric_settings_accept_uint8_and_0_1_floats_with_resize_overshoot():
    from sklimg.preprocessing import Resize

    X, _ = _digits_0_to_16()
    Augment("standard").fit(X.astype(np.uint8))  # uint8 is scaled to [0, 1] on the fly
    Augment("standard").fit((X * 15).astype(np.uint8))
    unit = X / np.float32(16)
    Augment("trivialaugment").fit(unit)
    overshoot = Resize(32, interpolation="bicubic").fit_transform(unit)  # about -0.2..1.2
    assert overshoot.min() < 0 and overshoot.max() > 1
    Augment("standard").fit_transform(overshoot)[0]
    Augment("standard").fit([unit[0], unit[1, :4]])  # lists of images of different sizes


def test_lazy_images_after_normalize_are_refused_on_a_sample():
    """A lazy Normalize op before a photometric Augment: checked on decoded images."""
    from sklimg.preprocessing import Normalize

    X, _ = _digits_0_to_16()
    lazy = Normalize().fit_transform(LazyImages(list(X.astype(np.uint8) * 15)))
    assert isinstance(lazy, LazyImages)
    with pytest.raises(ImageInputError, match=r"images \(32 of 60 checked\) have values from -"):
        Augment("standard").fit(lazy)
    Augment("light").fit_transform(lazy)[0]  # geometric: fine
    Augment("standard").fit(LazyImages(list(X / np.float32(16))))


def test_classifier_augment_refuses_out_of_range_images_before_training():
    X, y = _digits_0_to_16()
    clf = ImageClassifier("test_cnn", augment="standard", max_epochs=1, random_state=0)
    with pytest.raises(ImageInputError, match=r"values from 0 to 16.*Scale the images"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_") and not hasattr(clf, "history_")
    pipe = make_pipeline(Augment("trivialaugment"), clone(clf).set_params(augment=None))
    with pytest.raises(ImageInputError, match="values from 0 to 255"):
        pipe.fit(X * 255.0 / 16, y)
    # Geometric augmentation trains on the same images.
    ImageClassifier("test_cnn", augment="light", max_epochs=1, random_state=0).fit(X, y)


@pytest.mark.parametrize("shape", [(4, 64), (64, 4), (1, 9), (9, 1), (1, 1), (2, 2)])
def test_translate_on_short_or_narrow_images(shape):
    X = np.random.default_rng(0).random((5, *shape, 1), dtype=np.float32)
    view = Augment("light", hflip=0).fit_transform(X)
    torch.manual_seed(0)
    for i in range(len(view)):
        image = view[i]
        assert image.shape == X[i].shape
        # Reflect padding then a crop: every pixel value comes from the image.
        assert np.isin(image, X[i]).all()


def test_translate_padding_is_clipped_only_along_short_sides():
    from sklimg.preprocessing._augment import AugmentOp

    op = AugmentOp(Augment("light").fit().settings_)

    def padding(height, width):
        crop = next(
            step
            for step in op._pipeline(height, width, 1).transforms
            if "Crop" in type(step).__name__
        )
        return crop.padding

    # torchvision keeps the padding as [left, right, top, bottom].
    assert padding(32, 32) == [4, 4, 4, 4]  # 1/8 of the side, as documented
    assert padding(32, 48) == [6, 6, 6, 6]  # 1/8 of the longer side
    assert padding(4, 64) == [8, 8, 3, 3]  # 3 rows of padding: fewer than 4 rows
    assert padding(64, 1) == [0, 0, 8, 8]  # no horizontal shift of one column


def test_classifier_trains_with_translate_on_short_images():
    X = np.random.default_rng(0).random((20, 4, 64), dtype=np.float32)
    y = np.arange(20) % 2
    clf = ImageClassifier("test_cnn", augment="light", max_epochs=1, random_state=0)
    assert clf.fit(X, y).predict(X).shape == (20,)
