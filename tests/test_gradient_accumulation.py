"""Gradient accumulation: ``gradient_accumulation_steps`` batches summed per optimizer
step train as one batch that many times larger."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

import sklimg
from sklimg import ImageClassifier
from sklimg._training.callbacks import weight_average
from sklimg.lr_finder import find_lr


class Tiny(nn.Module):
    """No BatchNorm, which normalises each batch alone: without it, accumulated batches
    and one large batch compute the same gradients."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x).relu().flatten(1)


class CountSteps(Callback):
    """Counts the optimizer's steps (through on_grad_computed) and the batches."""

    def initialize(self):
        self.steps_, self.batches_ = 0, 0
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.steps_ += 1

    def on_batch_end(self, net, training=False, **kwargs):
        self.batches_ += training


@pytest.fixture(scope="module")
def data(digits_split):
    X_train, _, y_train, _ = digits_split
    return X_train[:200], y_train[:200]  # 200 = 3 x 64 + 8: a shorter last group


def _fit(data, batch_size, steps, **params):
    X, y = data
    params = {"optimizer": "sgd", "lr": 0.1, "max_epochs": 6, **params}
    return ImageClassifier(
        Tiny,
        batch_size=batch_size,
        gradient_accumulation_steps=steps,
        random_state=0,
        **params,
    ).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"lr_schedule": "onecycle"},
        {"gradient_clip": 0.05},
        {"ema_decay": 0.9},
        {"optimizer": "adamw", "lr": 0.02, "label_smoothing": 0.1},
    ],
    ids=["sgd-cosine", "onecycle", "gradient_clip", "ema_decay", "adamw"],
)
def test_accumulated_batches_train_as_one_large_batch(data, params):
    large = _fit(data, 64, 1, **params)
    expected = large.predict_proba(data[0])
    for batch_size, steps in ((32, 2), (16, 4)):
        accumulated = _fit(data, batch_size, steps, **params)
        np.testing.assert_allclose(accumulated.predict_proba(data[0]), expected, atol=1e-5)
        # The history keeps each batch's own loss, not its share of the step's.
        np.testing.assert_allclose(
            accumulated.history_[:, "train_loss"], large.history_[:, "train_loss"], rtol=1e-4
        )
    # The network learned: the comparison is not between two untrained networks.
    assert large.history_[-1, "train_loss"] < 0.9 * large.history_[0, "train_loss"]


def test_a_group_of_unequal_batches_steps_on_their_images_mean(data):
    """184 = 2 x 64 + 56: the last group holds batches of 16, 16, 16 and 8 images,
    which must weigh by their images, as in the batch of 56; sample weights too."""
    X, y = data[0][:184], data[1][:184]
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    for fit_params in ({}, {"sample_weight": weights}):
        large, accumulated = (
            ImageClassifier(
                Tiny, batch_size=b, gradient_accumulation_steps=k, optimizer="sgd", lr=0.1,
                max_epochs=3, random_state=0,
            ).fit(X, y, **fit_params)
            for b, k in ((64, 1), (16, 4))
        )  # fmt: skip
        np.testing.assert_allclose(accumulated.predict_proba(X), large.predict_proba(X), atol=1e-5)


def test_unscaled_losses_would_not_match(data):
    """The comparison above can fail: batches of 32 stepping one by one (no
    accumulation) train another model than batches of 64."""
    expected = _fit(data, 64, 1).predict_proba(data[0])
    assert np.abs(_fit(data, 32, 1).predict_proba(data[0]) - expected).max() > 1e-3


def test_one_optimizer_step_per_group(data):
    counter = CountSteps()
    clf = _fit(data, 16, 4, callbacks=[counter], ema_decay=0.9, lr_schedule="onecycle")
    # 200 images in batches of 16: 13 batches per epoch, in groups of 4, 4, 4 and 1.
    epochs = clf.max_epochs
    assert counter.batches_ == 13 * epochs
    assert counter.steps_ == 4 * epochs
    assert weight_average(clf.net_).updates_ == 4 * epochs
    # One-cycle's schedule spans the optimizer steps, and ran to its end.
    schedule = dict(clf.net_.callbacks_)["lr_scheduler"].lr_scheduler_
    assert schedule.total_steps == schedule.last_epoch == 4 * epochs


def test_a_batchnorm_network_learns_with_accumulation(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = ImageClassifier(
        batch_size=16, gradient_accumulation_steps=4, max_epochs=8, random_state=0
    ).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.93


def test_partial_fit_steps_once_per_group(data):
    X, y = data
    counter = CountSteps()
    clf = ImageClassifier(
        Tiny, batch_size=16, gradient_accumulation_steps=4, callbacks=[counter], random_state=0
    )
    clf.partial_fit(X, y, classes=np.arange(10))
    clf.partial_fit(X, y)
    assert counter.steps_ == 2 * 4 and counter.batches_ == 2 * 13
    # Groups do not span calls: a call of fewer batches than a group says so.
    with pytest.warns(
        UserWarning, match=r"holds 2 batches of batch_size=16.*Pass 64 images"
    ) as record:
        clf.partial_fit(X[:20], y[:20])
    assert record[0].filename == __file__
    assert counter.steps_ == 2 * 4 + 1
    # Counted as the loader batches: 33 = 2 x 16 + 1, whose last image is dropped.
    with pytest.warns(UserWarning, match="holds 2 batches"):
        ImageClassifier(Tiny, batch_size=16, gradient_accumulation_steps=3).partial_fit(
            X[:33], y[:33], classes=np.arange(10)
        )


def test_the_range_test_steps_over_groups(data):
    """Each of find_lr's steps is a group of batches, its loss their mean: on aligned
    data (192 = 3 x 64), the same curve as batches of the group's size."""
    X, y = data[0][:192], data[1][:192]
    params = dict(optimizer="sgd", random_state=0)
    large = find_lr(ImageClassifier(Tiny, batch_size=64, **params), X, y, num_iter=30)
    accumulated = find_lr(
        ImageClassifier(Tiny, batch_size=32, gradient_accumulation_steps=2, **params),
        X,
        y,
        num_iter=30,
    )
    np.testing.assert_allclose(accumulated.lrs, large.lrs)
    np.testing.assert_allclose(accumulated.losses, large.losses, rtol=1e-4)


def test_the_setting_is_saved(data, tmp_path):
    X, y = data
    clf = ImageClassifier("test_cnn", gradient_accumulation_steps=2, max_epochs=1).fit(X, y)
    loaded = sklimg.load(sklimg.save(clf, tmp_path / "m.sklimg"))
    assert loaded.gradient_accumulation_steps == 2
    np.testing.assert_allclose(loaded.predict_proba(data[0]), clf.predict_proba(data[0]))


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"gradient_accumulation_steps": 0}, InvalidParameterError, "range \\[1, inf\\)"),
        ({"gradient_accumulation_steps": 1.5}, InvalidParameterError, "must be an int"),
        (
            {"gradient_accumulation_steps": 2, "optimizer": torch.optim.LBFGS, "weight_decay": 0},
            ValueError,
            "LBFGS evaluates the loss of one batch several times",
        ),
        (
            {"gradient_accumulation_steps": 2, "head": LogisticRegression()},
            ValueError,
            "sums the gradients of a neural head's batches; a scikit-learn head is fitted on "
            "fixed features, once. Use head=None, or gradient_accumulation_steps=1.",
        ),
    ],
    ids=["zero", "float", "lbfgs", "sklearn-head"],
)
def test_bad_settings_are_refused_before_training(data, params, error, message):
    counter = CountSteps()
    X, y = data
    with pytest.raises(error, match=message):
        ImageClassifier("test_cnn", callbacks=[counter], **params).fit(X, y)
    assert not hasattr(counter, "batches_") or counter.batches_ == 0


def test_an_accelerator_accumulates_itself(data):
    accelerate = pytest.importorskip("accelerate")
    X, y = data
    with pytest.raises(ValueError, match=r"Accelerator\(gradient_accumulation_steps=2\)"):
        ImageClassifier(
            "test_cnn",
            gradient_accumulation_steps=2,
            accelerator=accelerate.Accelerator(cpu=True),
        ).fit(X, y)


def test_the_accelerator_s_own_accumulation_steps_once_per_group(data):
    """Accelerator(gradient_accumulation_steps=4), the route for accelerate: clipping,
    the weight average and one-cycle act where it synchronises the gradients."""
    accelerate = pytest.importorskip("accelerate")
    X, y = data
    counter = CountSteps()
    clf = ImageClassifier(
        Tiny,
        batch_size=16,
        max_epochs=2,
        ema_decay=0.9,
        gradient_clip=0.05,
        lr_schedule="onecycle",
        callbacks=[counter],
        accelerator=accelerate.Accelerator(cpu=True, gradient_accumulation_steps=4),
        random_state=0,
    ).fit(X, y)
    assert counter.batches_ == 13 * 2 and counter.steps_ == 4 * 2
    assert weight_average(clf.net_).updates_ == 4 * 2
    schedule = dict(clf.net_.callbacks_)["lr_scheduler"].lr_scheduler_
    assert schedule.total_steps == schedule.last_epoch == 4 * 2
