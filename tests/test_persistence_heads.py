"""The safe format for scikit-learn heads: classical backbones and frozen deep features
with a scikit-learn model, stored without pickle and loaded with an allow-list."""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

import sklimg
from sklimg import ImageClassifier
from sklimg.exceptions import ModelFileError
from sklimg.persistence import check_storable

HOG = {"pixels_per_cell": 4}  # digits are 8x8


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _replace_head(path, head):
    """Put another fitted estimator in the file's head.skops and record a matching
    digest, as a tool writing files by hand would."""
    from sklimg.persistence import _digest

    members = _members(path)
    members["head.skops"] = sio.dumps(head)
    config = json.loads(members["sklimg.json"])
    config["sha256"] = _digest(config, members["weights.safetensors"], members["head.skops"])
    members["sklimg.json"] = json.dumps(config).encode()
    _write(path, members)


@pytest.mark.parametrize(
    "params",
    [
        {"backbone": "hog", "backbone_kwargs": HOG},
        {"backbone": "pixels", "head": RandomForestClassifier(10, random_state=0)},
        {"backbone": "test_cnn", "pretrained": False, "head": LogisticRegression(max_iter=500)},
        {"backbone": "lbp", "head": make_pipeline(StandardScaler(), SVC())},
    ],
    ids=["hog-default-head", "pixels-forest", "deep-features-logistic", "lbp-svc"],
)
def test_scikit_learn_heads_round_trip(small_digits, tmp_path, params):
    X, y = small_digits
    clf = ImageClassifier(**params, random_state=0).fit(X[:200], y[:200])
    path = sklimg.save(clf, tmp_path / "m.sklimg")
    assert set(_members(path)) == {"sklimg.json", "weights.safetensors", "head.skops"}
    loaded = sklimg.load(path, device="cpu")
    held_out = X[200:]
    np.testing.assert_array_equal(loaded.predict(held_out), clf.predict(held_out))
    for method in ("predict_proba", "decision_function"):
        if hasattr(clf, method):
            np.testing.assert_array_equal(
                getattr(loaded, method)(held_out), getattr(clf, method)(held_out)
            )
    np.testing.assert_array_equal(loaded.transform(held_out), clf.transform(held_out))
    # The head parameter comes back unfitted, equal to the one given.
    got, given = loaded.get_params(deep=False), clf.get_params(deep=False)
    if given["head"] is None:
        assert got["head"] is None
    else:
        assert repr(got["head"]) == repr(given["head"])
        assert not hasattr(got["head"], "classes_")
    assert {k: v for k, v in got.items() if k not in ("head", "device")} == {
        k: v for k, v in given.items() if k not in ("head", "device")
    }


def test_heads_sklimg_cannot_check_are_refused_when_saving(small_digits, tmp_path):
    X, y = small_digits
    clf = ImageClassifier(
        "hog", backbone_kwargs=HOG, head=HistGradientBoostingClassifier(max_iter=2)
    )
    clf.fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"holds sklearn\..*TreePredictor.*joblib\.dump"):
        sklimg.save(clf, tmp_path / "m.sklimg")
    assert not (tmp_path / "m.sklimg").exists()


def _shout(images):  # a user's function: not a scikit-learn type
    return images


def test_a_head_with_user_code_is_refused_before_training():
    head = make_pipeline(FunctionTransformer(_shout), LogisticRegression())
    with pytest.raises(ValueError, match=r"(?s)cannot store this head.*_shout.*joblib\.dump"):
        check_storable(ImageClassifier("hog", head=head), sklimg.backbones.get_backbone("hog"))
    check_storable(ImageClassifier("hog"), sklimg.backbones.get_backbone("hog"))  # the default


def test_a_substituted_head_naming_other_code_is_refused(small_digits, tmp_path, monkeypatch):
    """A head.skops naming a function outside the allow-list (here os.system, inside a
    FunctionTransformer) is refused before anything is built, and nothing unpickles."""
    X, y = small_digits
    clf = ImageClassifier("hog", backbone_kwargs=HOG).fit(X[:100], y[:100])
    path = sklimg.save(clf, tmp_path / "m.sklimg")
    evil = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    _replace_head(path, evil)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(os, "system", lambda *a, **k: pytest.fail("ran os.system"))
    with pytest.raises(ModelFileError, match=r"names types.*system"):
        sklimg.load(path)


def _forest_file(small_digits, tmp_path):
    X, y = small_digits
    clf = ImageClassifier("pixels", head=RandomForestClassifier(3, random_state=0))
    clf.fit(X[:100], y[:100])
    return clf, sklimg.save(clf, tmp_path / "m.sklimg")


@pytest.mark.parametrize(
    ("edit", "node"),
    [
        (lambda nodes: nodes["left_child"].__setitem__(0, 0), 0),  # a cycle: predict loops
        (lambda nodes: nodes["right_child"].__setitem__(0, 10**6), 0),  # out of the array
        (lambda nodes: nodes["feature"].__setitem__(0, 10**6), 0),  # not an input column
    ],
    ids=["cycle", "child-out-of-range", "feature-out-of-range"],
)
def test_decision_trees_are_checked_before_they_predict(small_digits, tmp_path, edit, node):
    clf, path = _forest_file(small_digits, tmp_path)
    forest = clf.head_
    tree = forest.estimators_[1].tree_
    state = tree.__getstate__()
    edit(state["nodes"])
    tree.__setstate__(state)
    _replace_head(path, forest)
    with pytest.raises(ModelFileError, match=rf"node {node} points outside the tree or back up"):
        sklimg.load(path)


def test_a_head_that_does_not_fit_its_model_is_refused(small_digits, tmp_path):
    X, y = small_digits
    clf, path = _forest_file(small_digits, tmp_path)
    other_classes = RandomForestClassifier(3, random_state=0).fit(
        clf.transform(X[:100]), y[:100] % 3
    )
    _replace_head(path, other_classes)
    with pytest.raises(ModelFileError, match="its head predicts the classes"):
        sklimg.load(path)
    clf, path = _forest_file(small_digits, tmp_path)
    fewer_features = RandomForestClassifier(3).fit(clf.transform(X[:100])[:, :10], y[:100])
    _replace_head(path, fewer_features)
    with pytest.raises(ModelFileError, match="its head takes 10 features"):
        sklimg.load(path)


def test_members_must_fit_the_route(small_digits, tmp_path):
    _, path = _forest_file(small_digits, tmp_path)
    members = _members(path)
    del members["head.skops"]
    _write(path, members)
    with pytest.raises(ModelFileError, match="do not fit its route 'head'"):
        sklimg.load(path)
