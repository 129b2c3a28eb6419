"""How a run is configured (sklimg._training.plan): the schedule, the optimizer's
settings, the callbacks sklimg adds and the user's."""

import numpy as np
import pytest
from skorch.callbacks import Callback
from torch import nn

from sklimg import ImageClassifier

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


def test_onecycle_schedule_warms_up_and_anneals(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**{**FAST, "max_epochs": 3}, lr=0.01, lr_schedule="onecycle").fit(X, y)
    lrs = [lr for epoch in clf.history_ for lr in (b["event_lr"] for b in epoch["batches"])]
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1
    assert max(lrs) == pytest.approx(0.01, rel=0.05) and lrs[-1] < 1e-4


def test_compile_is_handed_to_skorch():
    from sklimg._training.plan import TrainingPlan, build_net

    net = build_net(nn.Linear(2, 2), TrainingPlan(n_classes=2, device="cpu", compile=True))
    assert net.compile is True


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
