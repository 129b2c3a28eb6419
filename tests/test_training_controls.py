"""Training you can watch and trust: progress, schedules, checkpoints and resuming,
interruption, divergence."""

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


def test_resume_from_checkpoint_continues_the_history(small_digits, tmp_path):
    X, y = small_digits
    params = dict(backbone="test_cnn", lr=0.01, random_state=0, checkpoint_dir=tmp_path)
    first = ImageClassifier(**params, max_epochs=2).fit(X, y)
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    # tta only changes predictions: resuming with another one is the same run.
    resumed = ImageClassifier(**params, max_epochs=4, warm_start=True, tta="flip").fit(X, y)
    assert len(resumed.history_) == 4
    assert resumed.history_[:2, "train_loss"] == first.history_[:, "train_loss"]
    # The schedule continued: epoch 3 starts where a 4-epoch cosine would be.
    full = ImageClassifier("test_cnn", lr=0.01, random_state=0, max_epochs=4).fit(X, y)
    assert resumed.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(
        full.net_.optimizer_.param_groups[0]["lr"], abs=1e-9
    )
    with pytest.raises(ValueError, match="written by a classifier with other parameters"):
        ImageClassifier(**{**params, "lr": 0.5}, max_epochs=4, warm_start=True).fit(X, y)


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


def test_nan_loss_stops_with_a_clear_error_and_keeps_good_weights(small_digits):
    X, y = small_digits
    Diverging.calls = 0
    clf = ImageClassifier(Diverging, max_epochs=5, batch_size=64, random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"nan in epoch 2.*end of epoch 1.*Lower"):
        clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert len(clf.history_) == 2


def test_label_smoothing_gradient_clipping_and_user_callbacks(small_digits):
    X, y = small_digits
    seen = []

    class Record(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(len(net.history))

    clf = ImageClassifier(
        **FAST, label_smoothing=0.1, gradient_clip=0.5, callbacks=[("record", Record())]
    ).fit(X, y)
    assert clf.net_.criterion_.label_smoothing == 0.1
    names = dict(clf.net_.callbacks_)
    assert names["gradient_clip"].gradient_clip_value == 0.5
    assert seen == [1, 2]


def test_onecycle_schedule_warms_up_and_anneals(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**{**FAST, "max_epochs": 3}, lr=0.01, lr_schedule="onecycle").fit(X, y)
    lrs = [lr for epoch in clf.history_ for lr in (b["event_lr"] for b in epoch["batches"])]
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1
    assert max(lrs) == pytest.approx(0.01, rel=0.05) and lrs[-1] < 1e-4


def test_verbose_two_shows_a_progress_bar(small_digits, capsys):
    X, y = small_digits
    ImageClassifier(**FAST, verbose=2).fit(X, y)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out
    assert "it/s" in captured.err or "it/s" in captured.out


def test_amp_needs_cuda(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        ImageClassifier(**FAST, amp=True).fit(X, y)


def test_compile_is_handed_to_skorch():
    from sklimg._training import TrainingPlan, build_net

    net = build_net(nn.Linear(2, 2), TrainingPlan(n_classes=2, device="cpu", compile=True))
    assert net.compile is True


def test_a_checkpoint_that_cannot_be_resumed_fails_before_training(small_digits, tmp_path):
    X, y = small_digits
    params = dict(backbone="test_cnn", max_epochs=1, random_state=0, checkpoint_dir=tmp_path)
    ImageClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="with other parameters or classes"):
        ImageClassifier(**params, warm_start=True).fit(X, y % 3)  # other classes
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable sklimg checkpoint.*Delete it"):
        ImageClassifier(**params, warm_start=True).fit(X, y)


def test_optimizers_without_weight_decay_and_numpy_sizes(small_digits):
    X, y = small_digits
    clf = ImageClassifier(
        "test_cnn", optimizer=torch.optim.LBFGS, weight_decay=0, lr=0.1, max_epochs=1,
        input_size=np.int64(12), random_state=0,
    ).fit(X[:32], y[:32])  # fmt: skip
    assert clf.input_size_ == (12, 12) and np.isfinite(clf.history_[-1, "train_loss"])


def test_callback_classes_and_optimizers_taking_keywords(small_digits):
    from skorch.callbacks import Callback

    class Noop(Callback):  # skorch instantiates callback classes itself
        pass

    class MyAdamW(torch.optim.AdamW):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)

    X, y = small_digits
    clf = ImageClassifier("test_cnn", max_epochs=1, callbacks=[Noop], optimizer=MyAdamW)
    clf.fit(X[:64], y[:64])
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 5e-4
    assert any(isinstance(cb, Noop) for _, cb in clf.net_.callbacks_)


def test_skorch_scoring_without_caching_sees_the_images_and_labels(small_digits, tmp_path):
    """skorch's EpochScoring(use_caching=False) predicts again from the dataset's X and
    scores against its y: in memory and from files, as the cached valid_acc does."""
    from PIL import Image
    from skorch.callbacks import EpochScoring

    X, y = small_digits
    paths = []
    for i, image in enumerate(np.round(X * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    for data in (X, np.array(paths)):
        scoring = [
            EpochScoring("accuracy", name="again_acc", on_train=False, use_caching=False),
            EpochScoring("accuracy", name="train_again_acc", on_train=True, use_caching=False),
        ]
        clf = ImageClassifier(
            "test_cnn", max_epochs=2, lr=0.01, validation_fraction=0.2, callbacks=scoring,
            num_workers=0, random_state=0,
        )  # fmt: skip
        clf.fit(data, y, sample_weight=np.ones(len(y)))
        np.testing.assert_allclose(clf.history_[:, "again_acc"], clf.history_[:, "valid_acc"])
        assert all(0 < acc <= 1 for acc in clf.history_[:, "train_again_acc"])


def test_checkpoints_of_classifiers_before_the_new_parameters_still_resume(monkeypatch):
    clf = ImageClassifier(**FAST)
    digest = clf._config_digest(np.arange(3))
    # A classifier of an earlier release had no mix, mix_alpha or ema_decay.
    earlier = {
        k: v
        for k, v in clf.get_params(deep=False).items()
        if k not in ("mix", "mix_alpha", "ema_decay")
    }
    monkeypatch.setattr(ImageClassifier, "get_params", lambda self, deep=True: earlier)
    assert clf._config_digest(np.arange(3)) == digest
    monkeypatch.undo()
    assert ImageClassifier(**FAST, mix="cutmix")._config_digest(np.arange(3)) != digest


def test_resuming_a_finished_checkpoint_gives_the_finished_model(small_digits, tmp_path):
    X, y = small_digits
    params = dict(FAST, lr=0.01, checkpoint_dir=tmp_path)
    finished = ImageClassifier(**params).fit(X, y)
    resumed = ImageClassifier(**params, warm_start=True).fit(X, y)  # nothing left to train
    assert len(resumed.history_) == 2
    # BatchNorm statistics recomputed as at the end of training (over other shuffled
    # batches: close, not equal), not those of the checkpoint, written before (0.037
    # apart).
    np.testing.assert_allclose(resumed.predict_proba(X), finished.predict_proba(X), atol=0.01)


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
