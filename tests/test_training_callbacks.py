"""The training callbacks (sklimg._training.callbacks): the guard that loses nothing
(best and last weights, divergence, Ctrl-C) and precise BatchNorm statistics; the weight
average and gradual unfreezing have their own test files (test_ema.py, test_routes.py)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sklimg import ImageClassifier
from sklimg.exceptions import TrainingDivergedError, TrainingInterruptedWarning

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


class InterruptAt(Callback):
    """Simulates Ctrl-C at the end of an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def _params(clf):
    return {k: v.detach().clone() for k, v in clf.net_.module_.named_parameters()}


class Diverging(nn.Module):
    """A backbone whose output becomes NaN once it has trained for a while."""

    calls = 0

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 8)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        if self.training:
            Diverging.calls += 1
            if Diverging.calls > 5:  # during the second epoch
                out = out * float("nan")
        return out


def test_interrupted_fit_keeps_the_best_weights(small_digits, tmp_path):
    X, y = small_digits
    clf = ImageClassifier(
        "test_cnn", max_epochs=10, lr=0.01, validation_fraction=0.2, random_state=0,
        checkpoint_dir=tmp_path, callbacks=[InterruptAt(4)],
    )  # fmt: skip
    with pytest.warns(TrainingInterruptedWarning, match="interrupted after 4 complete epoch"):
        clf.fit(X, y)
    assert len(clf.history_) == 4
    best = torch.load(tmp_path / "best.pt", weights_only=True)["module"]
    for name, value in _params(clf).items():  # BatchNorm buffers are recomputed after
        torch.testing.assert_close(value, best[name])
    assert clf.score(X, y) > 0.3


def test_nan_loss_stops_with_a_clear_error_and_keeps_good_weights(small_digits):
    X, y = small_digits
    Diverging.calls = 0
    clf = ImageClassifier(Diverging, max_epochs=5, batch_size=64, random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"nan in epoch 2.*end of epoch 1.*Lower"):
        clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert len(clf.history_) == 2


def test_weights_that_overflow_without_a_nan_loss_are_caught(small_digits):
    X, y = small_digits

    class Overflow(Callback):
        """Overflows a weight after the last step of epoch 2, whose losses were all
        finite (as a huge learning rate can)."""

        def on_epoch_begin(self, net, **kwargs):
            self.steps = 0

        def on_batch_end(self, net, training=False, **kwargs):
            self.steps += training
            if training and len(net.history) == 2 and self.steps == 5:  # 300 images / 64
                with torch.no_grad():
                    net.module_.head.bias.fill_(float("inf"))

    clf = ImageClassifier(**FAST, lr=0.01, callbacks=[Overflow()])
    with pytest.raises(TrainingDivergedError, match=r"weights became infinite or NaN in epoch 2"):
        clf.fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_partial_fit_trains_on_after_a_diverged_call(small_digits, ema_decay):
    X, y = small_digits
    clf = ImageClassifier(**FAST, lr=0.03, ema_decay=ema_decay)
    parts = np.array_split(np.arange(len(y)), 3)
    clf.partial_fit(X[parts[0]], y[parts[0]], classes=np.arange(10))
    corrupt = X[parts[1]].copy()
    corrupt[0, 0, 0] = 3e38  # one broken pixel: the loss becomes NaN
    with pytest.warns(UserWarning), pytest.raises(TrainingDivergedError):
        clf.partial_fit(corrupt, y[parts[1]])
    # The optimizer's moments (and the average) start afresh: the next call trains.
    clf.partial_fit(X[parts[2]], y[parts[2]])
    assert np.isfinite(clf.history_[-1, "train_loss"])
    assert np.isfinite(clf.predict_proba(X)).all()


def test_batchnorm_statistics_match_the_final_weights(digits_split):
    """Few steps leave exponential running statistics near their initial values; the
    precise-BN pass at the end of training makes eval-mode predictions match what the
    network learned (4 epochs on 300 digits: ~0.16 held-out without it)."""
    X_train, X_test, y_train, y_test = digits_split
    clf = ImageClassifier(max_epochs=4, random_state=0).fit(X_train[:300], y_train[:300])
    assert clf.score(X_test, y_test) >= 0.85


def test_frozen_batchnorm_keeps_its_statistics(small_digits):
    from sklimg._training.callbacks import PreciseBatchNorm

    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    bn = clf.net_.module_.backbone[1]
    bn.weight.requires_grad_(False)
    before = bn.running_mean.clone()
    from sklimg._torch_data import ImageTensorDataset, images_to_tensor

    dataset = ImageTensorDataset(images_to_tensor(X[..., None]), torch.as_tensor(y))
    PreciseBatchNorm().on_train_end(clf.net_, X=dataset, y=y)
    torch.testing.assert_close(bn.running_mean, before)
    other = clf.net_.module_.backbone[5]
    assert other.momentum == 0.3  # restored after the pass


def test_precise_batchnorm_uses_at_most_max_images():
    from sklimg._network import recompute_batchnorm_stats

    network = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(2))
    batches = [torch.randn(1500, 2) for _ in range(3)]
    seen = []
    network.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    recompute_batchnorm_stats(network, batches, max_images=2048)
    assert seen == [1500, 548]
