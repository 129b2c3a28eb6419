"""Calibrated probabilities and the unknown answer, on real digits with a held-out
split, and images of other sources (skimage photographs, noise) as the unknown ones."""

import copy
import io
import json
import zipfile

import joblib
import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.transform import resize
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import log_loss
from sklearn.neighbors import KNeighborsClassifier

import sklimg
from sklimg import ImageClassifier
from sklimg.exceptions import ModelFileError
from sklimg.metrics import expected_calibration_error

NEURAL = dict(backbone="cnn_small", max_epochs=4, random_state=0)
# For the unknown answer on 8x8 digits: after a few epochs, cnn_small's features place
# photographs and noise among the digits (few are rejected); test_cnn's do not.
SMALL = dict(backbone="test_cnn", max_epochs=6, random_state=0)
HOG = dict(backbone="hog", backbone_kwargs={"pixels_per_cell": 4}, random_state=0)


@pytest.fixture(scope="module")
def other_images():
    """8x8 grayscale images that are not digits: patches of photographs, and noise."""
    patches = []
    for image in (skdata.camera(), skdata.coins(), skdata.moon(), skdata.text()):
        image = image.astype(np.float32) / 255
        for i in range(0, image.shape[0] - 64, 64):
            patches.append(resize(image[i : i + 64, i : i + 64], (8, 8), anti_aliasing=True))
    noise = np.random.default_rng(0).random((100, 8, 8), dtype=np.float32)
    return np.asarray(patches, dtype=np.float32), noise


@pytest.fixture(scope="module")
def knn_model(digits_split):
    X_train, _, y_train, _ = digits_split
    return ImageClassifier(**NEURAL, calibration="temperature", unknown="knn").fit(X_train, y_train)


def test_temperature_scaling_lowers_the_calibration_error(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    plain = ImageClassifier(**NEURAL, validation_fraction=0.1).fit(X_train, y_train)
    calibrated = ImageClassifier(**NEURAL, calibration="temperature").fit(X_train, y_train)
    # The same split and training: only the temperature differs.
    np.testing.assert_array_equal(plain.predict(X_test), calibrated.predict(X_test))
    before = plain.predict_proba(X_test)
    after = calibrated.predict_proba(X_test)
    classes = calibrated.classes_
    assert calibrated.temperature_ != pytest.approx(1.0, abs=0.05)
    assert expected_calibration_error(y_test, after, classes) < 0.6 * (
        expected_calibration_error(y_test, before, classes)
    )
    assert log_loss(y_test, after) < log_loss(y_test, before)
    np.testing.assert_allclose(after.sum(axis=1), 1.0)
    np.testing.assert_allclose(calibrated.predict_log_proba(X_test), np.log(after))


@pytest.mark.parametrize("params", [SMALL, HOG], ids=["neural", "classical"])
@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_unknown_images_are_rejected_and_known_ones_kept(
    digits_split, other_images, params, method
):
    X_train, X_test, y_train, _ = digits_split
    clf = ImageClassifier(**params, unknown=method, unknown_rate=0.05).fit(X_train, y_train)
    known_rejected = np.mean(clf.predict(X_test) == -1)
    assert 0.01 <= known_rejected <= 0.12  # about unknown_rate, on unseen digits
    photos, noise = other_images
    for other in (photos, noise):
        assert np.mean(clf.predict(other) == -1) >= 0.5
    # predict_proba keeps one column per class; the unknown answer is predict's.
    assert clf.predict_proba(photos).shape == (len(photos), 10)
    scores = clf.unknown_score(X_test)
    assert scores.shape == (len(X_test),)
    np.testing.assert_array_equal(clf.predict(X_test) == -1, scores > clf.unknown_threshold_)


@pytest.mark.parametrize("method", ["msp", "energy"])
def test_logit_scores_on_both_routes(digits_split, method):
    X_train, X_test, y_train, _ = digits_split
    for params in (SMALL, HOG):
        clf = ImageClassifier(**params, unknown=method).fit(X_train, y_train)
        assert 0.0 < np.mean(clf.predict(X_test) == -1) < 0.2
        assert np.isfinite(clf.unknown_score(X_test)).all()


def test_auto_picks_the_measured_best_for_the_route(digits_split):
    X_train, _, y_train, _ = digits_split
    picks = {
        "neural": ImageClassifier(**{**SMALL, "max_epochs": 1}, unknown="auto"),
        "logistic": ImageClassifier(**HOG, unknown="auto"),
        "forest": ImageClassifier(**HOG, head=RandomForestClassifier(5), unknown="auto"),
    }
    names = {k: clf.fit(X_train, y_train).unknown_detector_.name for k, clf in picks.items()}
    assert names == {"neural": "knn", "logistic": "energy", "forest": "knn"}


def test_string_labels_get_the_unknown_string(digits_split, other_images):
    X_train, _, y_train, _ = digits_split
    names = np.array([f"digit-{d}" for d in range(10)])
    clf = ImageClassifier(**HOG, unknown="knn").fit(X_train, names[y_train])
    predicted = clf.predict(other_images[1])
    assert "unknown" in predicted.tolist() and clf.unknown_label_ == "unknown"
    custom = ImageClassifier(**HOG, unknown="knn", unknown_label="other").fit(
        X_train, names[y_train]
    )
    assert "other" in custom.predict(other_images[1]).tolist()


def test_saved_and_loaded_models_give_the_same_answers(knn_model, digits_split, tmp_path):
    _, X_test, _, _ = digits_split
    path = sklimg.save(knn_model, tmp_path / "m.sklimg")
    with zipfile.ZipFile(path) as archive:
        assert "trust.safetensors" in archive.namelist()
    buffer = io.BytesIO()
    joblib.dump(knn_model, buffer)
    buffer.seek(0)
    for loaded in (sklimg.load(path, device="cpu"), joblib.load(buffer)):
        assert loaded.temperature_ == knn_model.temperature_
        assert loaded.unknown_threshold_ == knn_model.unknown_threshold_
        np.testing.assert_array_equal(loaded.unknown_score(X_test), knn_model.unknown_score(X_test))
        np.testing.assert_array_equal(loaded.predict(X_test), knn_model.predict(X_test))
        np.testing.assert_array_equal(loaded.predict_proba(X_test), knn_model.predict_proba(X_test))


def test_scikit_learn_heads_save_their_detector(digits_split, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    clf = ImageClassifier(**HOG, calibration="temperature", unknown="mahalanobis")
    clf.fit(X_train, y_train)
    loaded = sklimg.load(sklimg.save(clf, tmp_path / "m.sklimg"))
    np.testing.assert_array_equal(loaded.unknown_score(X_test), clf.unknown_score(X_test))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))


def _edit_trust(path, edit):
    from sklimg.persistence import _digest

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["sklimg.json"])
    edit(config, members)
    config["sha256"] = _digest(
        config,
        members["weights.safetensors"],
        members.get("head.skops", b""),
        members.get("trust.safetensors", b""),
    )
    members["sklimg.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c, m: c["trust"].update(temperature=-1.0), "temperature -1.0"),
        (lambda c, m: c["trust"]["unknown"].update(threshold="inf"), "threshold"),
        (lambda c, m: c["trust"]["unknown"].update(method="evil"), "not one sklimg sets"),
        (lambda c, m: c["trust"]["unknown"].update(label=3), "label 3"),
        (
            lambda c, m: m.update({"trust.safetensors": _knn_arrays(np.zeros((5, 3)))}),
            "holds \\(5, 3\\) features",
        ),
    ],
    ids=["temperature", "threshold", "method", "label-is-a-class", "reference-shape"],
)
def test_loading_checks_the_trust_state(knn_model, tmp_path, edit, match):
    path = sklimg.save(knn_model, tmp_path / "m.sklimg")
    _edit_trust(path, edit)
    with pytest.raises(ModelFileError, match=match):
        sklimg.load(path)


def _knn_arrays(reference):
    from safetensors.numpy import save

    return save({"reference": reference.astype(np.float32), "k": np.array([1])})


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"unknown": "knn", "unknown_rate": 0.0}, "unknown_rate"),
        ({"unknown": "knn", "unknown_rate": 1.0}, "unknown_rate"),
        ({"unknown": "knn", "unknown_label": 3}, "unknown_label=3 is one of the classes"),
        ({"unknown": "knn", "unknown_label": "x"}, "not of the classes' type"),
        ({"unknown": "oracle"}, "unknown"),
        ({"calibration": "platt"}, "calibration"),
    ],
)
def test_bad_settings_are_refused_before_training(digits_split, params, match):
    X_train, _, y_train, _ = digits_split
    clf = ImageClassifier(**NEURAL, **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X_train, y_train)
    assert not hasattr(clf, "net_")


def test_scores_need_what_the_head_has(digits_split):
    X_train, _, y_train, _ = digits_split
    forest = ImageClassifier(**HOG, head=RandomForestClassifier(5), unknown="energy")
    with pytest.raises(ValueError, match="energy.*needs the head's logits.*no decision_function"):
        forest.fit(X_train, y_train)
    neighbours = ImageClassifier(**HOG, head=KNeighborsClassifier(), calibration="temperature")
    with pytest.raises(ValueError, match="neither decision_function nor predict_log_proba"):
        neighbours.fit(X_train, y_train)
    assert not hasattr(neighbours, "head_")


@pytest.mark.parametrize(
    "params", [SMALL, {**SMALL, "calibration": "temperature"}, HOG], ids=["neural", "T", "hog"]
)
def test_probabilities_and_unknown_scores_in_one_pass(digits_split, params):
    """predict_proba(return_unknown_score=True) gives predict_proba and unknown_score,
    from one pass over the images (one forward pass of the network), and predict
    agrees with both."""
    X_train, X_test, y_train, _ = digits_split
    clf = ImageClassifier(**params, unknown="msp").fit(X_train, y_train)
    proba, scores = clf.predict_proba(X_test, return_unknown_score=True)
    np.testing.assert_allclose(proba, clf.predict_proba(X_test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores, clf.unknown_score(X_test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    predicted = clf.predict(X_test)
    known = scores <= clf.unknown_threshold_
    assert 0 < known.mean() < 1
    assert (predicted[~known] == -1).all()
    assert (predicted[known] == clf.classes_[np.argmax(proba[known], axis=1)]).all()
    if hasattr(clf, "net_"):
        calls = []  # the first convolution's: one per batch of images through the network
        first = next(m for m in clf.net_.module_.modules() if isinstance(m, torch.nn.Conv2d))
        hook = first.register_forward_hook(lambda *_: calls.append(1))
        try:
            clf.predict_proba(X_test[:10], return_unknown_score=True)
        finally:
            hook.remove()
        assert len(calls) == 1


def test_unknown_scores_with_the_probabilities_need_the_setting(digits_split):
    X_train, X_test, y_train, _ = digits_split
    with pytest.raises(NotFittedError):
        ImageClassifier(unknown="knn").predict_proba(X_test, return_unknown_score=True)
    clf = ImageClassifier(**HOG).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"fitted with unknown=None. Fit it with unknown="):
        clf.predict_proba(X_test, return_unknown_score=True)


def test_unknown_score_needs_a_fit_and_the_setting(digits_split):
    with pytest.raises(NotFittedError):
        ImageClassifier(unknown="knn").unknown_score(digits_split[1])
    assert not hasattr(ImageClassifier(), "unknown_score")


def test_partial_fit_is_not_there_with_what_needs_held_out_images():
    clf = ImageClassifier(**NEURAL, calibration="temperature")
    assert not hasattr(clf, "partial_fit")
    assert hasattr(clf.set_params(calibration=None), "partial_fit")


def test_a_refit_without_trust_forgets_it(knn_model, digits_split):
    X_train, X_test, y_train, _ = digits_split
    model = copy.deepcopy(knn_model).set_params(unknown=None, calibration=None, max_epochs=1)
    model.fit(X_train, y_train)
    assert not hasattr(model, "unknown_threshold_") and not hasattr(model, "temperature_")
    assert -1 not in model.predict(X_test)


def test_the_held_out_split_is_the_one_skorch_validates_on():
    from skorch.dataset import ValidSplit

    from sklimg._fit.trust import held_out

    y = np.repeat(np.arange(5), [30, 20, 40, 10, 25])
    skorch_train, skorch_valid = ValidSplit(0.1, stratified=True, random_state=7)(
        np.zeros((len(y), 1), np.float32), y
    )
    train, valid = held_out(y, 0.1, 7)
    np.testing.assert_array_equal(valid, skorch_valid.indices)
    np.testing.assert_array_equal(train, skorch_train.indices)


def test_a_mahalanobis_state_that_is_not_a_precision_is_refused():
    from sklimg._trust import Mahalanobis

    means, precision = np.zeros((2, 3)), -np.eye(3)
    with pytest.raises(ValueError, match="not positive definite"):
        Mahalanobis.from_arrays({"means": means, "precision": precision}, 3)
    detector = Mahalanobis.from_arrays({"means": means, "precision": 4 * np.eye(3)}, 3)
    np.testing.assert_allclose(detector.score(np.ones((1, 3)), None, 1.0), [2 * np.sqrt(3)])


def test_a_scikit_learn_head_gives_rows_that_sum_to_one(digits_split):
    """A head fitted on float32 features answers in float32; its rows, renormalised in
    float64, pass scikit-learn's own check (log_loss warned before)."""
    from sklearn.metrics import log_loss

    X_train, X_test, y_train, y_test = digits_split
    proba = ImageClassifier(**HOG).fit(X_train, y_train).predict_proba(X_test)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert log_loss(y_test, proba) < 1.0
