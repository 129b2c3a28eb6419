"""Saving and loading: small pickles that load anywhere, and a safe format that never
unpickles and rejects modified files."""

import io
import json
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import pytest

import sklimg
from sklimg import ImageClassifier
from sklimg.exceptions import ModelFileError, VersionMismatchWarning

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, y = small_digits
    names = np.array([f"digit-{d}" for d in range(10)])
    return ImageClassifier(**FAST, validation_fraction=0.2).fit(X, names[y]), X


def test_safe_round_trip_gives_identical_probabilities(fitted, tmp_path):
    clf, X = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    # On the device it was trained on: another device computes with other kernels.
    loaded = sklimg.load(path, device=str(clf.net_.device))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.get_params() == clf.get_params()
    assert loaded.input_shape_ == clf.input_shape_ and loaded.finetune_ == clf.finetune_
    assert len(loaded.history_) == len(clf.history_)
    assert loaded.history_[-1, "valid_acc"] == clf.history_[-1, "valid_acc"]


def test_safe_format_holds_json_and_tensors_only(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["sklimg.json", "weights.safetensors"]
        config = json.loads(archive.read("sklimg.json"))
    assert config["architecture"]["backbone"] == "test_cnn"
    assert config["classes"][0] == "digit-0"


def _rewrite(path, member, transform):
    with zipfile.ZipFile(path) as archive:
        contents = {n: archive.read(n) for n in archive.namelist()}
    contents[member] = transform(contents[member])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def _edit_config(**changes):
    def transform(raw):
        config = json.loads(raw)
        config.update(changes)
        return json.dumps(config).encode()

    return transform


def _reseal(path):
    """Record a digest that matches the edited contents, as a tool writing files by
    hand would: what is left to catch is the content itself."""
    from sklimg.persistence import _digest

    with zipfile.ZipFile(path) as archive:
        weights = archive.read("weights.safetensors")
    _rewrite(
        path, "sklimg.json", lambda raw: _edit_config(sha256=_digest(json.loads(raw), weights))(raw)
    )


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda p: _rewrite(p, "weights.safetensors", lambda b: b[:-8] + b"\x00" * 8), "modified"),
        (lambda p: _rewrite(p, "sklimg.json", _edit_config(classes=["digit-9"] * 10)), "modified"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable"),
        (lambda p: p.write_bytes(b"\x80\x04K\x01."), "not a readable"),  # a pickle
        (lambda p: _rewrite(p, "sklimg.json", lambda b: b"{not json"), "not valid JSON"),
        (lambda p: _rewrite(p, "sklimg.json", _edit_config(format_version=99)), "version 99"),
        (
            lambda p: _rewrite(p, "sklimg.json", _edit_config(estimator="os.system")),
            "unknown estimator",
        ),
        (
            lambda p: _rewrite(p, "sklimg.json", _edit_config(label_type="function")),
            "unknown label",
        ),
        (lambda p: _rewrite(p, "sklimg.json", _edit_config(format="zip")), "not an sklimg model"),
    ],
    ids=[
        "weights-changed",
        "classes-changed",
        "truncated",
        "pickle",
        "bad-json",
        "version",
        "type",
        "label",
        "format",
    ],
)
def test_tampered_files_fail_without_running_anything(fitted, tmp_path, tamper, match, monkeypatch):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    tamper(path)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ModelFileError, match=match):
        sklimg.load(path)


def test_unknown_backbone_and_parameters_are_refused(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")

    def architecture(raw):
        config = json.loads(raw)
        config["architecture"]["backbone"] = "evil_net"
        return json.dumps(config).encode()

    _rewrite(path, "sklimg.json", architecture)
    _reseal(path)
    with pytest.raises(ModelFileError, match="backbone sklimg does not know"):
        sklimg.load(path)
    path = sklimg.save(clf, tmp_path / "model2.sklimg")
    _rewrite(path, "sklimg.json", _edit_config(params={"exec": "rm -rf /"}))
    _reseal(path)
    with pytest.raises(ModelFileError, match=r"unknown parameters \['exec'\]"):
        sklimg.load(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        sklimg.load(tmp_path / "missing.sklimg")


@pytest.mark.parametrize(
    "changes",
    [
        {"fitted": {"input_shape_": [8, 8], "input_size_": [8, 8], "finetune_": "full"}},
        {"params": {"lr": "abc"}},
        {"architecture": {"backbone": "test_cnn"}},
        {"metadata": ["not", "a", "mapping"]},
    ],
    ids=["shape", "param-value", "architecture", "metadata"],
)
def test_consistent_digest_but_unusable_configuration(fitted, tmp_path, changes):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    _rewrite(path, "sklimg.json", _edit_config(**changes))
    _reseal(path)
    with pytest.raises(ModelFileError, match=r"sklimg\.json does not describe|metadata is not"):
        sklimg.load(path)


def test_what_the_safe_format_cannot_hold(small_digits, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = small_digits
    sklearn_head = ImageClassifier("test_cnn", head=LogisticRegression(max_iter=200)).fit(X, y)
    with pytest.raises(ValueError, match="scikit-learn head.*joblib.dump"):
        sklimg.save(sklearn_head, tmp_path / "a.sklimg")
    import torch

    as_class = ImageClassifier(**FAST, optimizer=torch.optim.RMSprop).fit(X, y)
    with pytest.raises(ValueError, match="optimizer=.*cannot store without pickle"):
        sklimg.save(as_class, tmp_path / "b.sklimg")
    with pytest.raises(sklimg.exceptions.NotFittedError):
        sklimg.save(ImageClassifier(), tmp_path / "c.sklimg")


def test_pickles_are_small_and_predict_the_same(fitted):
    clf, X = fitted
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    n_weights = sum(p.numel() for p in clf.net_.module_.parameters()) * 4
    # Weights, buffers and bookkeeping: no optimizer moments (2x the weights), no
    # second copy of the network held by callbacks.
    assert len(buffer.getvalue()) < 2 * n_weights + 200_000
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert len(clf.net_.optimizer_.state) > 0  # the live model keeps its optimizer


def test_pickled_model_continues_training(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, warm_start=True).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    loaded.fit(X, y)
    assert len(loaded.history_) == 4


def test_version_mismatch_warns_on_load(fitted):
    clf, _ = fitted
    state = clf.__getstate__()
    state["_sklimg_versions"] = {"sklimg": "0.0.1", "torch": "2.0.0"}
    blank = ImageClassifier.__new__(ImageClassifier)
    with pytest.warns(VersionMismatchWarning, match=r"saved with sklimg 0.0.1 \(now"):
        blank.__setstate__(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(clf))  # same versions: silent


def test_metadata_travels_with_the_model(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "m.sklimg", metadata={"image_size": [8, 8]})
    assert sklimg.load(path).sklimg_metadata_ == {"image_size": [8, 8]}
    assert sklimg.load(sklimg.save(clf, tmp_path / "n.sklimg")).sklimg_metadata_ == {}
    with pytest.raises(ValueError, match="metadata must hold only JSON values"):
        sklimg.save(clf, tmp_path / "o.sklimg", metadata={"f": object()})


def test_loaded_model_predicts_in_the_precision_it_was_saved_with(fitted, tmp_path):
    from sklearn.base import clone

    clf, _ = fitted
    amp = clone(clf).set_params(amp=True)  # what a fit on a GPU would save
    amp.__dict__.update({k: v for k, v in clf.__dict__.items() if k.endswith("_")})
    assert sklimg.load(sklimg.save(amp, tmp_path / "amp.sklimg")).net_.amp is True
    assert sklimg.load(sklimg.save(clf, tmp_path / "fp32.sklimg")).net_.amp is False
