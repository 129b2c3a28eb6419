"""Training controls of the classifier: progress, mixed precision, optimizers and
callbacks. (Checkpoints, the guard, the plan and the net have files of their own.)"""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklimg import ImageClassifier

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


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


def test_optimizers_without_weight_decay_and_numpy_sizes(small_digits):
    X, y = small_digits
    clf = ImageClassifier(
        "test_cnn", optimizer=torch.optim.LBFGS, weight_decay=0, lr=0.1, max_epochs=1,
        input_size=np.int64(12), random_state=0,
    ).fit(X[:32], y[:32])  # fmt: skip
    assert clf.input_size_ == (12, 12) and np.isfinite(clf.history_[-1, "train_loss"])


def test_callback_classes_and_optimizers_taking_keywords(small_digits):

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
