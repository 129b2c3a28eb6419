"""ONNX export: onnxruntime gives what predict_proba gives."""

import json
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sklimg import ImageClassifier
from sklimg.exceptions import NotFittedError
from sklimg.export import export_onnx
from sklimg.preprocessing import Normalize


def _run(path, images):
    session = onnxruntime.InferenceSession(str(path))
    return session.run(None, {"images": images})[0]


def test_the_graph_gives_predict_proba_with_labels_in_its_metadata(digits_split, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    names = np.array([f"digit-{d}" for d in range(10)])
    # Resized on the fly to 16x16 (antialiased), as at fit.
    clf = ImageClassifier("test_cnn", input_size=16, max_epochs=2, random_state=0)
    clf.fit(X_train[:400], names[y_train[:400]])
    path = export_onnx(clf, tmp_path / "digits.onnx")
    for n in (1, 37):  # any batch size
        images = X_test[:n, :, :, None]
        np.testing.assert_allclose(_run(path, images), clf.predict_proba(X_test[:n]), atol=1e-5)
    metadata = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(metadata["classes"]) == clf.classes_.tolist()
    assert metadata["input_layout"] == "NHWC"
    # The classifier itself is unchanged: still predicting as before.
    assert not clf.net_.module_.training
    np.testing.assert_array_equal(
        clf.predict(X_test[:5]), clf.classes_[_run(path, X_test[:5, :, :, None]).argmax(1)]
    )


def test_uint8_colour_images_go_in_as_decoded(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 12, 12, 3), dtype=np.uint8)
    clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(images, np.arange(60) % 3)
    path = export_onnx(clf, tmp_path / "rgb.onnx", input_dtype="uint8")
    assert onnxruntime.InferenceSession(str(path)).get_inputs()[0].type == "tensor(uint8)"
    np.testing.assert_allclose(_run(path, images[:9]), clf.predict_proba(images[:9]), atol=1e-5)


def test_test_time_augmentation_is_left_out_and_says_so(small_digits, tmp_path):
    X, y = small_digits
    clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="tta='flip' is not exported"):
        path = export_onnx(clf.set_params(tta="flip"), tmp_path / "m.onnx")
    plain = clf.set_params(tta=None).predict_proba(X[:5])
    np.testing.assert_allclose(_run(path, X[:5, :, :, None]), plain, atol=1e-5)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (lambda d: ImageClassifier(), NotFittedError, "not fitted"),
        (
            lambda d: make_pipeline(Normalize(), ImageClassifier("test_cnn", max_epochs=1)).fit(*d),
            TypeError,
            r"exports an ImageClassifier; got Pipeline.*pipeline\[-1\]",
        ),
        (
            lambda d: ImageClassifier("test_cnn", head=LogisticRegression(max_iter=100)).fit(*d),
            ValueError,
            "scikit-learn head.*skl2onnx",
        ),
    ],
    ids=["unfitted", "pipeline", "sklearn-head"],
)
def test_what_cannot_be_exported_is_refused(small_digits, tmp_path, model, error, message):
    with pytest.raises(error, match=message):
        export_onnx(model(small_digits), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_dtype_and_missing_exporter(small_digits, tmp_path, monkeypatch):
    X, y = small_digits
    clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="input_dtype must be 'float32' or 'uint8'; got 'int8'"):
        export_onnx(clf, tmp_path / "m.onnx", input_dtype="int8")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "sklimg\[onnx\]"'):
        export_onnx(clf, tmp_path / "m.onnx")
