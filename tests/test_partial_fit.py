"""Training in parts: partial_fit, one pass per call, as scikit-learn's incremental
estimators do."""

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import SGDClassifier
from sklearn.svm import SVC
from skorch.callbacks import Callback

from sklimg import ImageClassifier
from sklimg.exceptions import ImageInputError

FAST = dict(backbone="test_cnn", lr=0.01, batch_size=32, random_state=0)
CLASSES = np.arange(10)


@pytest.fixture(scope="module")
def digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    return X_train[:600], y_train[:600], X_test, y_test


def _chunks(n, parts):
    return np.array_split(np.arange(n), parts)


class FirstBatchLabels(Callback):
    """Notes the labels of each epoch's first training batch (its shuffle)."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training and len(self.seen_) < len(net.history):
            self.seen_.append(batch[1][:16].tolist())


def test_calls_train_one_pass_each_and_learn(digits):
    X, y, X_test, y_test = digits
    clf = ImageClassifier(**FAST, lr_schedule="cosine")
    for part in _chunks(len(y), 4):
        clf.partial_fit(X[part], y[part], classes=CLASSES)
    net = clf.net_
    steps = float(net.optimizer_.state[next(iter(net.module_.parameters()))]["step"])
    for _ in range(2):  # two more passes over all the parts
        for part in _chunks(len(y), 4):
            clf.partial_fit(X[part], y[part])
    assert len(clf.history_) == 12
    # One net, whose optimizer state goes on between calls, at the constant rate lr.
    assert clf.net_ is net
    assert float(net.optimizer_.state[next(iter(net.module_.parameters()))]["step"]) == 3 * steps
    assert net.optimizer_.param_groups[0]["lr"] == FAST["lr"]
    # Three passes in parts learn as well as three epochs of fit at a constant rate.
    whole = ImageClassifier(**FAST, max_epochs=3, lr_schedule="constant").fit(X, y)
    assert clf.score(X_test, y_test) > max(0.7, whole.score(X_test, y_test) - 0.05)
    np.testing.assert_array_equal(clf.classes_, CLASSES)


def test_a_series_of_calls_repeats_and_each_call_shuffles_afresh(digits):
    X, y, X_test, _ = digits
    runs = []
    for _ in range(2):
        recorder = FirstBatchLabels()
        clf = ImageClassifier(**FAST, callbacks=[recorder])
        for _ in range(3):
            clf.partial_fit(X[:200], y[:200], classes=CLASSES)
        runs.append((clf.predict_proba(X_test), recorder.seen_))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    first, second, third = runs[0][1]
    assert first != second and second != third  # the same images, shuffled anew


def test_partial_fit_after_fit_trains_the_fitted_network(digits):
    X, y, X_test, y_test = digits
    clf = ImageClassifier(**FAST, max_epochs=2).fit(X, y)
    network = clf.net_.module_
    before = clf.score(X_test, y_test)
    for part in _chunks(len(y), 3):
        clf.partial_fit(X[part], y[part])  # classes known from fit
    assert clf.net_.module_ is network and len(clf.history_) == 5
    assert clf.score(X_test, y_test) >= before - 0.02
    # A fit starts afresh again.
    assert len(clf.fit(X, y).history_) == 2


def test_one_class_per_call_is_fine(digits):
    X, y, X_test, _ = digits
    clf = ImageClassifier(**FAST)
    clf.partial_fit(X[y == 0], y[y == 0], classes=CLASSES)
    assert clf.classes_.tolist() == CLASSES.tolist()
    assert clf.predict_proba(X_test).shape == (len(X_test), 10)


def test_files_weights_and_augmentation_in_parts(digits, tmp_path):
    X, y, X_test, _ = digits
    paths = []
    for i, image in enumerate(np.round(X * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    paths = np.array(paths)
    weights = np.where(y == 3, 0.0, 1.0)
    for params in ({}, {"augment": "light"}):
        clf = ImageClassifier(**FAST, **params, num_workers=0)
        for _ in range(3):
            for part in _chunks(len(y), 2):
                clf.partial_fit(paths[part], y[part], classes=CLASSES, sample_weight=weights[part])
        assert (clf.predict(X_test) == 3).sum() == 0, params


def test_a_pickled_classifier_goes_on_training(digits, tmp_path):
    X, y, X_test, y_test = digits
    clf = ImageClassifier(**FAST)
    clf.partial_fit(X[:300], y[:300], classes=CLASSES)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    for _ in range(3):
        loaded.partial_fit(X, y)
    assert len(loaded.history_) == 4
    assert loaded.score(X_test, y_test) > clf.score(X_test, y_test)


def test_scikit_learn_heads_train_in_parts_when_they_can(digits):
    X, y, X_test, y_test = digits
    hog = dict(pixels_per_cell=(4, 4), cells_per_block=(1, 1))
    head = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
    clf = ImageClassifier("hog", backbone_kwargs=hog, head=head)
    for part in _chunks(len(y), 3):
        clf.partial_fit(X[part], y[part], classes=CLASSES)
    assert clf.head_ is not head and clf.head_.t_ > len(y)  # the head's own passes
    assert clf.score(X_test, y_test) > 0.6
    # Weights go to the head's partial_fit: images of 3 then weigh nothing.
    weighted = ImageClassifier("hog", backbone_kwargs=hog, head=head)
    for _ in range(3):
        weighted.partial_fit(X, y, classes=CLASSES, sample_weight=np.where(y == 3, 0.0, 1.0))
    assert (weighted.predict(X_test) == 3).sum() == 0
    # Heads without partial_fit: no partial_fit, as in a scikit-learn Pipeline.
    for clf in (ImageClassifier("hog"), ImageClassifier("test_cnn", head=SVC())):
        assert not hasattr(clf, "partial_fit")
        with pytest.raises(AttributeError, match="partial_fit"):
            clf.partial_fit(X, y, classes=CLASSES)
    assert hasattr(ImageClassifier(), "partial_fit")


def test_bad_calls_fail_before_training(digits):
    X, y, _, _ = digits
    clf = ImageClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"classes must hold every label.*at least 2; got \[0\]"):
        clf.partial_fit(X, y, classes=[0])
    with pytest.raises(ImageInputError, match=r"not among the classes \[0, 1\]: \[2, 3, 4"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ImageInputError, match="partial_fit got 1 image"):
        clf.partial_fit(X[:1], y[:1], classes=CLASSES)
    with pytest.raises(ValueError, match="class_weight='balanced' needs every label at once"):
        ImageClassifier(**FAST, class_weight="balanced").partial_fit(X, y, classes=CLASSES)
    assert not hasattr(clf, "classes_")

    clf.partial_fit(X, y, classes=CLASSES)
    with pytest.raises(ValueError, match=r"classes=\[0, 1\] differs from the classes of the"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ImageInputError, match="12"):
        clf.partial_fit(X, np.where(y == 0, 12, y))
    with pytest.raises(ImageInputError, match="size"):
        clf.partial_fit(np.zeros((4, 9, 9)), y[:4])
    clf.set_params(backbone_kwargs={"width": 32})
    with pytest.raises(
        ValueError, match=r"partial_fit goes on training .*backbone_kwargs.*Call fit"
    ):
        clf.partial_fit(X, y)
    assert len(clf.history_) == 1


def test_partial_fit_writes_checkpoints(digits, tmp_path):
    X, y, _, _ = digits
    clf = ImageClassifier(**FAST, checkpoint_dir=tmp_path)
    clf.partial_fit(X, y, classes=CLASSES)
    clf.partial_fit(X, y)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert len(saved["history"]) == 2


def test_a_dict_of_class_weights_reaches_the_loss(digits):
    X, y, _, _ = digits
    weights = {label: 1.0 + label for label in CLASSES}
    clf = ImageClassifier(**FAST, class_weight=weights).partial_fit(X, y, classes=CLASSES)
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), 1.0 + CLASSES)


def test_set_params_between_calls_apply_from_the_next_call(digits):
    X, y, _, _ = digits
    clf = ImageClassifier(**FAST).partial_fit(X, y, classes=CLASSES)
    first = clf.net_
    clf.partial_fit(X, y)
    assert clf.net_ is first  # nothing changed: the same net and optimizer
    clf.set_params(lr=0.002, optimizer="sgd", batch_size=16).partial_fit(X, y)
    net = clf.net_
    assert net is not first and net.module_ is first.module_  # the same network
    assert isinstance(net.optimizer_, torch.optim.SGD) and net.batch_size == 16
    assert net.optimizer_.param_groups[0]["lr"] == 0.002
    assert len(clf.history_) == 3


def test_calls_keep_batchnorm_statistics_learned_so_far(digits, monkeypatch):
    """Recomputing BatchNorm statistics at the end of a call would replace them with
    those of its images alone: a last call on two images would undo the rest."""
    import sklimg._training.callbacks

    recomputed = []
    real = sklimg._training.callbacks.recompute_batchnorm_stats
    monkeypatch.setattr(
        sklimg._training.callbacks,
        "recompute_batchnorm_stats",
        lambda *a, **k: recomputed.append(1) or real(*a, **k),
    )
    X, y, X_test, y_test = digits
    clf = ImageClassifier(**FAST)
    for _ in range(3):
        for part in _chunks(len(y), 3):
            clf.partial_fit(X[part], y[part], classes=CLASSES)
    before = clf.score(X_test, y_test)
    ones = np.flatnonzero(y == 1)[:2]
    clf.partial_fit(X[ones], y[ones])
    assert not recomputed
    assert clf.score(X_test, y_test) > before - 0.1
    ImageClassifier(**FAST, max_epochs=1).fit(X, y)
    assert recomputed  # fit does recompute them


def test_a_loaded_model_keeps_its_backbone_frozen(digits, tmp_path):
    import sklimg

    X, y, _, _ = digits
    clf = ImageClassifier(**FAST, finetune="head", max_epochs=2).fit(X, y)
    loaded = sklimg.load(sklimg.save(clf, tmp_path / "m.sklimg"), device="cpu")
    backbone = [p.detach().clone() for p in loaded.net_.module_.backbone.parameters()]
    loaded.partial_fit(X, y)
    loaded.set_params(warm_start=True, max_epochs=1).fit(X, y)
    for before, after in zip(backbone, loaded.net_.module_.backbone.parameters(), strict=True):
        torch.testing.assert_close(before, after)


def test_fit_refuses_to_resume_a_partial_fit_checkpoint(digits, tmp_path):
    X, y, _, _ = digits
    params = dict(FAST, max_epochs=5, checkpoint_dir=tmp_path)
    ImageClassifier(**params).partial_fit(X, y, classes=CLASSES)
    with pytest.raises(ValueError, match="was written by partial_fit.*Continue with partial_fit"):
        ImageClassifier(**params, warm_start=True).fit(X, y)


def test_later_calls_check_the_pixel_scale_and_the_head(digits):
    from sklimg.exceptions import PixelRangeWarning

    X, y, _, _ = digits
    clf = ImageClassifier(**FAST).partial_fit(X, y, classes=CLASSES)
    with pytest.warns(PixelRangeWarning):
        clf.partial_fit(X * 255, y)
    head = SGDClassifier(random_state=0)
    clf = ImageClassifier("pixels", head=head).partial_fit(X, y, classes=CLASSES)
    with pytest.raises(ValueError, match="augment='light' needs a neural head"):
        clf.set_params(augment="light").partial_fit(X, y)
