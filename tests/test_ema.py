"""An exponential moving average of the weights: ImageClassifier(ema_decay=...)."""

from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

from sklimg import ImageClassifier
from sklimg._training.callbacks import WeightAverage, weight_average

FAST = dict(backbone="test_cnn", max_epochs=3, lr=0.03, random_state=0)


def _parameters(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_the_average_follows_the_weights_with_a_warm_up():
    module = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    net = SimpleNamespace(module_=module)
    average = WeightAverage(0.9).initialize()
    average.on_train_begin(net)
    expected = _parameters(module)
    for t in range(1, 40):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn_like(p))
        average.on_batch_end(net, training=True)
        decay = 0.0 if t == 1 else min(0.9, (1 + t) / (10 + t))  # the first update copies
        for name, value in module.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * value.detach()
    raw = _parameters(module)
    # The average stands in for the weights at the end of an epoch ...
    average.on_epoch_end(net)
    for name, value in module.named_parameters():
        torch.testing.assert_close(value, expected[name])
    assert module[1].num_batches_tracked.dtype == torch.long  # counters are copied
    # ... and the weights come back when the next epoch trains.
    average.on_epoch_begin(net)
    for name, value in module.named_parameters():
        assert torch.equal(value, raw[name])


class RecordAtEpochEnd(Callback):
    def initialize(self):
        self.states = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.states.append(_parameters(net.module_))


def test_the_classifier_keeps_and_validates_the_average(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    params = dict(FAST, validation_fraction=0.2)
    plain = ImageClassifier(**params).fit(X_train, y_train)
    record = RecordAtEpochEnd()
    clf = ImageClassifier(**params, ema_decay=0.99, callbacks=[record]).fit(X_train, y_train)
    average = weight_average(clf.net_)
    # The weights train as without the average: the same training losses.
    assert clf.history_[:, "train_loss"] == pytest.approx(plain.history_[:, "train_loss"])
    # Validation scored the average, which differs from the weights.
    assert clf.history_[:, "valid_loss"] != pytest.approx(plain.history_[:, "valid_loss"])
    # Callbacks see the average at the end of an epoch, and the classifier keeps it.
    for name, value in _parameters(average.average_.module).items():
        torch.testing.assert_close(record.states[-1][name], value)
        torch.testing.assert_close(dict(clf.net_.module_.named_parameters())[name], value)
    assert not torch.equal(
        clf.net_.module_.head.weight, dict(plain.net_.module_.named_parameters())["head.weight"]
    )
    assert clf.score(X_test, y_test) > 0.85


def test_resumed_checkpoints_train_on_from_the_weights(small_digits, tmp_path):
    X, y = small_digits
    losses = {}
    for ema_decay in (None, 0.9):
        folder = tmp_path / str(ema_decay)
        params = dict(FAST, ema_decay=ema_decay, checkpoint_dir=folder, max_epochs=2)
        ImageClassifier(**params).fit(X, y)
        checkpoint = torch.load(folder / "last.pt", weights_only=True)
        assert ("average" in checkpoint) == (ema_decay is not None)
        resumed = ImageClassifier(**{**params, "max_epochs": 4, "warm_start": True}).fit(X, y)
        losses[ema_decay] = resumed.history_[:, "train_loss"]
    # The third epoch trains from the weights themselves, not from the average that
    # the checkpoint holds as the network: the same losses as without an average.
    assert losses[0.9] == pytest.approx(losses[None])


def test_the_average_goes_on_across_partial_fit_calls_and_early_stopping(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, ema_decay=0.9)
    parts = np.array_split(np.arange(len(y)), 3)
    for part in parts:
        clf.partial_fit(X[part], y[part], classes=np.arange(10))
    average = weight_average(clf.net_)
    assert average.updates_ == sum(len(part) // 64 + (len(part) % 64 > 1) for part in parts)
    # Early stopping keeps the average of its best epoch, which validation scored.
    record = RecordAtEpochEnd()
    stopped = ImageClassifier(
        **{**FAST, "max_epochs": 12, "lr": 0.1}, ema_decay=0.9, early_stopping=True,
        patience=2, lr_schedule="constant", callbacks=[record],
    )  # fmt: skip
    stopped.fit(X, y)
    best = int(np.flatnonzero(stopped.history_[:, "valid_loss_best"])[-1])
    assert best < len(stopped.history_) - 1 < 11  # it stopped, after a worse epoch
    for name, value in _parameters(stopped.net_.module_).items():
        torch.testing.assert_close(value, record.states[best][name])


def test_models_pickle_without_the_training_copy(small_digits, tmp_path):
    X, y = small_digits
    plain = ImageClassifier(**FAST).fit(X, y)
    clf = ImageClassifier(**FAST, ema_decay=0.9).fit(X, y)
    joblib.dump(plain, tmp_path / "plain.joblib")
    joblib.dump(clf, tmp_path / "ema.joblib")
    sizes = [(tmp_path / name).stat().st_size for name in ("plain.joblib", "ema.joblib")]
    assert sizes[1] < 1.1 * sizes[0]
    loaded = joblib.load(tmp_path / "ema.joblib")
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    loaded.set_params(warm_start=True, max_epochs=1).fit(X, y)  # trains on after loading
    assert len(loaded.history_) == 4


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"ema_decay": 0.0}, InvalidParameterError, "'ema_decay' parameter"),
        ({"ema_decay": 1.0}, InvalidParameterError, "'ema_decay' parameter"),
        ({"ema_decay": "yes"}, InvalidParameterError, "'ema_decay' parameter"),
        (
            {"ema_decay": 0.99, "head": LogisticRegression()},
            ValueError,
            r"ema_decay=0.99 averages the weights.*Use head=None, or ema_decay=None",
        ),
        (
            {"ema_decay": 0.99, "backbone": "hog"},
            ValueError,
            r"ema_decay=0.99 averages the weights.*scikit-learn head",
        ),
    ],
)
def test_bad_ema_settings_fail_before_training(small_digits, params, error, match):
    X, y = small_digits
    with pytest.raises(error, match=match):
        ImageClassifier(**{**FAST, **params}).fit(X, y)


def test_a_head_trained_on_cached_features_is_averaged_alone(small_digits):
    X, y = small_digits
    params = dict(FAST, finetune="head")
    plain = ImageClassifier(**params).fit(X, y)
    clf = ImageClassifier(**params, ema_decay=0.9).fit(X, y)
    average = weight_average(clf.net_)
    assert isinstance(average.average_.module, nn.Linear)  # not the frozen backbone
    for name, value in average.average_.module.named_parameters():
        torch.testing.assert_close(getattr(clf.net_.module_.head, name), value)
    assert not torch.equal(clf.net_.module_.head.weight, plain.net_.module_.head.weight)
    for name, value in plain.net_.module_.backbone.state_dict().items():
        assert torch.equal(clf.net_.module_.backbone.state_dict()[name], value), name


def test_the_average_carries_over_to_new_nets(small_digits):
    X, y = small_digits
    parts = np.array_split(np.arange(len(y)), 4)
    losses, counts = {}, {}
    for ema_decay in (None, 0.9):
        clf = ImageClassifier(**FAST, ema_decay=ema_decay)
        for k, part in enumerate(parts):
            if k == 2:  # a new net, and a new optimizer, from here on
                clf.set_params(lr=0.01)
            clf.partial_fit(X[part], y[part], classes=np.arange(10))
        losses[ema_decay] = clf.history_[:, "train_loss"]
        counts[ema_decay] = ema_decay and weight_average(clf.net_).updates_
        # A warm start goes on from the weights too, not from the average.
        clf.set_params(warm_start=True, max_epochs=1).fit(X, y)
        losses[ema_decay] += clf.history_[-1:, "train_loss"]
    assert counts[0.9] == sum(len(part) // 64 + (len(part) % 64 > 1) for part in parts)
    assert losses[0.9] == pytest.approx(losses[None])


class Tracker(Callback):
    """A user's callback whose attribute names happen to match the average's."""

    def initialize(self):
        self.average_ = 1.5
        self.raw_ = [1, 2]
        return self


def test_pickles_keep_the_attributes_of_other_callbacks(small_digits, tmp_path):
    X, y = small_digits
    clf = ImageClassifier(**FAST, callbacks=[("tracker", Tracker())]).fit(X, y)
    joblib.dump(clf, tmp_path / "model.joblib")
    tracker = dict(joblib.load(tmp_path / "model.joblib").net_.callbacks_)["tracker"]
    assert (tracker.average_, tracker.raw_) == (1.5, [1, 2])
