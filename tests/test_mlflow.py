"""The sklimg MLflow flavour against a real local MLflow store (sqlite), started here:
log, register, load with sklimg and with pyfunc, predict from arrays and path columns."""

import pickle

import numpy as np
import pytest
from PIL import Image

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")

import sklimg.mlflow  # noqa: E402
from sklimg import ImageClassifier  # noqa: E402
from sklimg.preprocessing import Resize  # noqa: E402

# sqlalchemy 2.1 on MLflow's sqlite store (mlflow 3.17): not about sklimg.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, y = small_digits
    names = np.array([f"digit-{d}" for d in range(10)])
    return ImageClassifier(**FAST).fit(X[:200], names[y[:200]]), X[200:]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A sqlite tracking store and an artifact folder, for this test only."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("sklimg", artifact_location=str(tmp_path / "art"))
    yield experiment
    mlflow.set_tracking_uri(None)


def _no_unpickling(monkeypatch):
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))


def test_log_register_and_load_through_a_tracking_store(fitted, store, tmp_path, monkeypatch):
    clf, X = fitted
    with mlflow.start_run(experiment_id=store):
        info = sklimg.mlflow.log_model(clf, registered_model_name="digits")
    _no_unpickling(monkeypatch)
    for uri in (info.model_uri, "models:/digits/1"):
        loaded = sklimg.mlflow.load_model(uri, device="cpu")
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # pyfunc: labels from an array of images ...
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(pyfunc.predict(X), clf.predict(X))
    # ... and probabilities from a DataFrame column of image files.
    paths = []
    for i, image in enumerate(X[:20]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.uint8(np.squeeze(image) * 255)).save(paths[-1])
    proba = mlflow.pyfunc.load_model(info.model_uri, model_config={"predict_fn": "predict_proba"})
    np.testing.assert_allclose(
        proba.predict(pd.DataFrame({"path": paths})), clf.predict_proba(paths), atol=0
    )


def test_requirements_and_flavour_say_what_loading_needs(fitted, tmp_path):
    clf, _ = fitted
    sklimg.mlflow.save_model(clf, tmp_path / "m")
    requirements = (tmp_path / "m" / "requirements.txt").read_text().split()
    names = {line.split("==")[0] for line in requirements if "==" in line}
    assert {"sklimg", "torch", "torchvision", "skorch", "skops", "safetensors"} <= names
    flavour = mlflow.models.Model.load(str(tmp_path / "m")).flavors["sklimg"]
    assert flavour["classes"] == clf.classes_.tolist()
    assert (tmp_path / "m" / flavour["data"] / flavour["model_file"]).is_file()


def test_pipelines_and_scikit_learn_heads(small_digits, tmp_path, monkeypatch):
    from sklearn.pipeline import make_pipeline

    X, y = small_digits
    pipeline = make_pipeline(Resize((16, 16)), ImageClassifier("hog")).fit(X[:200], y[:200])
    sklimg.mlflow.save_model(pipeline, tmp_path / "p", predict_fn="predict_proba")
    _no_unpickling(monkeypatch)
    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "p"))
    np.testing.assert_array_equal(pyfunc.predict(X[200:]), pipeline.predict_proba(X[200:]))
    loaded = sklimg.mlflow.load_model(str(tmp_path / "p"))
    assert [name for name, _ in loaded.steps] == ["resize", "imageclassifier"]


def test_what_the_flavour_refuses(fitted, small_digits, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    clf, _ = fitted
    with pytest.raises(ValueError, match="is a FunctionTransformer.*joblib.dump"):
        sklimg.mlflow.save_model(make_pipeline(FunctionTransformer(), clf), tmp_path / "a")
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="predict_fn must be one of"):
        sklimg.mlflow.save_model(clf, tmp_path / "b", predict_fn="score")
    sklimg.mlflow.save_model(clf, tmp_path / "c")
    with pytest.raises(FileExistsError, match="it exists"):
        sklimg.mlflow.save_model(clf, tmp_path / "c")
    X, y = small_digits
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=50).fit(X[:50].reshape(50, -1), y[:50]), tmp_path / "sk"
    )
    with pytest.raises(ValueError, match=r"not saved by sklimg.mlflow.*'sklearn'"):
        sklimg.mlflow.load_model(str(tmp_path / "sk"))
