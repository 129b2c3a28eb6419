"""An MLflow flavour for sklimg models, stored in the safe sklimg format.

``mlflow.sklearn`` cannot store sklimg models safely: with its default (skops) it
refuses sklimg's, skorch's and torch's types, and skops would unpickle the network
skorch keeps as pickle bytes anyway; with ``serialization_format="cloudpickle"`` it
writes a pickle, and the requirements it infers lack torch, torchvision and skorch.
This flavour writes the model with :func:`sklimg.save` (no pickle; a pipeline of
sklimg's image steps ending in an :class:`~sklimg.ImageClassifier` is kept whole), lists
the libraries it needs at their installed versions, and adds MLflow's generic
``python_function`` flavour, so that models loaded by ``mlflow.pyfunc.load_model``
predict from arrays of images or DataFrame columns of image paths.

Needs ``pip install "sklimg[mlflow]"``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import Model

from sklimg import persistence

__all__ = [
    "FLAVOR_NAME",
    "PREDICT_FNS",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklimg"
#: What the ``python_function`` flavour's ``predict`` returns, by ``predict_fn``.
PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba")
_DATA = "sklimg_model"  # the folder, in the MLflow model, holding the sklimg file
_MODEL_FILE = "model.sklimg"
# What loading and predicting import; each pinned to its installed version.
_REQUIREMENTS = (
    "sklimg",
    "torch",
    "torchvision",
    "skorch",
    "scikit-learn",
    "scikit-image",
    "safetensors",
    "skops",
    "pillow",
    "numpy",
)


def get_default_pip_requirements() -> list[str]:
    """The requirements a saved model lists: sklimg and what it loads with, pinned.

    Returns
    -------
    requirements : list of str
        ``"name==version"`` for sklimg, torch, torchvision, skorch, scikit-learn,
        scikit-image, safetensors, skops, pillow and numpy as installed.

    Examples
    --------
    >>> from sklimg.mlflow import get_default_pip_requirements
    >>> [r.split("==")[0] for r in get_default_pip_requirements()][:4]
    ['sklimg', 'torch', 'torchvision', 'skorch']
    """
    # A local build such as 2.14.1+cu130 is not on the package index: pin the release.
    return [f"{name}=={importlib_metadata.version(name).split('+')[0]}" for name in _REQUIREMENTS]


def save_model(
    model,
    path: str | os.PathLike,
    *,
    predict_fn: str = "predict",
    mlflow_model: Model | None = None,
    signature=None,
    input_example=None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict | None = None,
) -> None:
    """Save a fitted model as an MLflow model in a local folder.

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        What :func:`sklimg.save` takes: a fitted classifier, or a pipeline of sklimg
        image steps ending in one.
    path : str or path-like
        The folder to create; it must not exist yet (as for ``mlflow.sklearn``).
    predict_fn : {"predict", "predict_proba", "predict_log_proba"}, default="predict"
        What the ``python_function`` flavour's ``predict`` returns: labels, or an
        array of probabilities (columns in ``model.classes_`` order, which the flavour
        lists). ``mlflow.pyfunc.load_model(uri, model_config={"predict_fn": ...})``
        chooses again when loading.
    mlflow_model : mlflow.models.Model or None, default=None
        The model description to add the flavours to (``log_model`` passes its own).
    signature, input_example
        As for ``mlflow.pyfunc.save_model``.
    pip_requirements : list of str or None, default=None
        The requirements to list instead of :func:`get_default_pip_requirements`.
    extra_pip_requirements : list of str or None, default=None
        Requirements to list besides the default ones.
    metadata : dict or None, default=None
        Custom metadata for the MLmodel file.

    Raises
    ------
    ValueError
        If ``predict_fn`` is unknown, or the model is one :func:`sklimg.save` refuses
        (its message says why); checked before anything is written.
    FileExistsError
        If ``path`` exists.

    Examples
    --------
    >>> import os, tempfile
    >>> import mlflow.pyfunc
    >>> import sklimg.mlflow
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> path = os.path.join(tempfile.mkdtemp(), "digits")
    >>> sklimg.mlflow.save_model(clf, path, predict_fn="predict_proba")
    >>> probabilities = mlflow.pyfunc.load_model(path).predict(X[:3])
    >>> bool((probabilities == clf.predict_proba(X[:3])).all())
    True
    """
    if predict_fn not in PREDICT_FNS:
        raise ValueError(f"predict_fn must be one of {list(PREDICT_FNS)}; got {predict_fn!r}.")
    path = Path(path)
    if path.exists():
        raise FileExistsError(
            f"Cannot save the MLflow model to {str(path)!r}: it exists. Choose a new folder "
            f"(MLflow models are written once)."
        )
    classifier = model[-1] if hasattr(model, "steps") else model
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / _DATA
        data.mkdir()
        persistence.save(model, data / _MODEL_FILE)  # refuses, before path is created
        mlflow_model = mlflow_model if mlflow_model is not None else Model()
        if metadata is not None:
            mlflow_model.metadata = {**(mlflow_model.metadata or {}), **metadata}
        mlflow_model.add_flavor(
            FLAVOR_NAME,
            sklimg_version=importlib_metadata.version("sklimg"),
            format_version=persistence.FORMAT_VERSION,
            model_file=_MODEL_FILE,
            classes=[c.item() if hasattr(c, "item") else c for c in classifier.classes_],
            predict_fn=predict_fn,
        )
        requirements = get_default_pip_requirements() if pip_requirements is None else None
        mlflow.pyfunc.save_model(
            path,
            loader_module=__name__,
            data_path=str(data),
            mlflow_model=mlflow_model,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements if pip_requirements is not None else requirements,
            extra_pip_requirements=extra_pip_requirements,
            model_config={"predict_fn": predict_fn},
        )
    # Where pyfunc copied the data folder, for this flavour's own loader too.
    mlflow_model.flavors[FLAVOR_NAME]["data"] = mlflow_model.flavors["python_function"]["data"]
    mlflow_model.save(str(path / "MLmodel"))


def log_model(model, name: str = "model", **kwargs):
    """Log a fitted model as an MLflow model of the active run (one is started if
    none is active, as MLflow does).

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        See :func:`save_model`.
    name : str, default="model"
        The model's name in the run.
    **kwargs
        ``registered_model_name`` (registers it), ``metadata``, ``params``, ``tags``
        and the other arguments of ``mlflow.models.Model.log``, and those of
        :func:`save_model` (``predict_fn``, ``signature``, ``input_example``,
        ``pip_requirements``, ``extra_pip_requirements``).

    Returns
    -------
    model_info : mlflow.models.model.ModelInfo
        Its ``model_uri`` loads it again, with :func:`load_model` or
        ``mlflow.pyfunc.load_model``.
    """
    flavor = sys.modules[__name__]  # Model.log takes the flavour as a module
    return Model.log(artifact_path=None, name=name, flavor=flavor, model=model, **kwargs)


def load_model(model_uri: str, *, device: str = "auto", dst_path: str | None = None):
    """Load an sklimg model saved or logged by this flavour, without unpickling.

    Parameters
    ----------
    model_uri : str
        Where MLflow finds it: a local folder, ``runs:/<run_id>/model``,
        ``models:/<name>/<version>``, ...
    device : str, default="auto"
        As for :func:`sklimg.load`.
    dst_path : str or None, default=None
        Where to download the model's files (a temporary folder by default).

    Returns
    -------
    model : ImageClassifier or Pipeline
        As :func:`sklimg.load` gives it.

    Raises
    ------
    ValueError
        If the MLflow model has no sklimg flavour (say which it has).
    """
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path))
    flavors = Model.load(str(local)).flavors
    if FLAVOR_NAME not in flavors:
        raise ValueError(
            f"The MLflow model {model_uri!r} was not saved by sklimg.mlflow: its flavours "
            f"are {sorted(flavors)}. Load it with the flavour that saved it (e.g. "
            f"mlflow.pyfunc.load_model)."
        )
    conf = flavors[FLAVOR_NAME]
    return persistence.load(local / conf["data"] / conf["model_file"], device=device)


class _PythonModel:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict`` on images."""

    def __init__(self, model, predict_fn: str) -> None:
        if predict_fn not in PREDICT_FNS:
            raise ValueError(f"predict_fn must be one of {list(PREDICT_FNS)}; got {predict_fn!r}.")
        self.model = model
        self.predict_fn = predict_fn

    def get_raw_model(self):
        """The sklimg model itself."""
        return self.model

    def predict(self, model_input, params: dict | None = None) -> np.ndarray:
        """Labels or probabilities of images: an array ``(n, H, W[, C])``, a list of
        arrays or paths, a Series, or a one-column DataFrame of paths or arrays (what
        MLflow's server passes)."""
        return getattr(self.model, self.predict_fn)(model_input)


def _load_pyfunc(path: str, model_config: dict | None = None) -> _PythonModel:
    """MLflow's ``python_function`` loader: ``path`` is the flavour's data folder."""
    config = model_config or {}
    model = persistence.load(Path(path) / _MODEL_FILE)
    return _PythonModel(model, config.get("predict_fn", "predict"))
