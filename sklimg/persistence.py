"""Saving and loading models in a safe format that never unpickles.

``joblib.dump`` / ``pickle`` work for every sklimg model (and load on any device), but
loading a pickle runs code chosen by whoever wrote the file. :func:`save` writes a zip
archive instead:

- ``sklimg.json``: format version, library versions, the estimator's parameters, the
  class labels and their dtype, the fitted shapes, the route (a neural head, or a
  scikit-learn head on frozen features), the network's architecture (a registry
  backbone name and plain numbers), the training history, and a SHA-256 digest of the
  rest of the configuration and of the other members;
- ``weights.safetensors``: the network's tensors (safetensors holds only tensors); a
  classical backbone has none;
- ``head.skops``, with a scikit-learn head only: the fitted head as a skops file,
  loaded with an allow-list of scikit-learn types (:mod:`sklimg._sklearn_store`);
- ``trust.safetensors``, with ``calibration`` or ``unknown`` only: the unknown
  detector's arrays (the k-NN reference features, the Mahalanobis means and
  precision); the temperature and threshold are in ``sklimg.json``.

:func:`load` parses JSON, tensors and the allow-listed skops schema only, checks the
digest, rebuilds the network or the classical feature extractor from the registry and
loads the weights. A damaged, edited, truncated or foreign file, or one naming a
backbone, parameter or type sklimg does not know, fails with
:class:`~sklimg.exceptions.ModelFileError` before anything is built. (The digest
detects changes, not a forger who recomputes it; what keeps a hostile file harmless is
that loading runs no code from it.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
import zipfile
from pathlib import Path, PurePath

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_numpy
from safetensors.numpy import save as save_numpy
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sklimg import _sklearn_store
from sklimg._files import atomic_write, special_file_kind, unwritable_reason
from sklimg._fit import head as head_route
from sklimg._fit import neural
from sklimg._fit.run import route_of
from sklimg._fit.state import HeadFit, NeuralFit
from sklimg._json import plain_history
from sklimg._network import rebuild_network
from sklimg._statements import Refusal
from sklimg._trust import DETECTORS, Trust
from sklimg._version import versions
from sklimg.backbones import get_backbone
from sklimg.classifier import ImageClassifier, fitted_classifier
from sklimg.exceptions import ModelFileError, UnknownBackboneError, VersionMismatchWarning
from sklimg.features import DeepFeatures
from sklimg.features._deep import loaded_deep_features
from sklimg.preprocessing import (
    Augment,
    CenterCrop,
    Grayscale,
    LoadImages,
    Normalize,
    Resize,
    ToRGB,
)
from sklimg.utils._torch_utils import resolve_device

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "sklimg-model"
# 2: the digest covers the configuration as well as the weights; 3: scikit-learn heads
# (a route, and head.skops). Version 2 files (neural heads) still load.
FORMAT_VERSION = 3
_READABLE_VERSIONS = (2, 3)
_CONFIG = "sklimg.json"
_WEIGHTS = "weights.safetensors"
_HEAD = "head.skops"
_TRUST = "trust.safetensors"
# The pipeline steps stored before a classifier: sklimg's image steps, by class name.
_PIPELINE_STEPS = {
    cls.__name__: cls
    for cls in (LoadImages, Resize, CenterCrop, ToRGB, Grayscale, Normalize, Augment)
}
_MEMBERS = {"neural": {_CONFIG, _WEIGHTS}, "head": {_CONFIG, _WEIGHTS, _HEAD}}
_LABEL_TYPES = {"int": int, "str": str, "float": float, "bool": bool}
_CLASS_DTYPE_KINDS = "biufUO"  # numpy kinds of labels: bool, ints, floats, str, object
# Marks a parameter value JSON has no type for, e.g. {"__sklimg_type__": "path", ...}.
_TAG = "__sklimg_type__"
# Limits on what a model file's members may declare (see _check_member_sizes).
_MAX_CONFIG_BYTES = 64 * 2**20
_MAX_INFLATION = 4


def save(model, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Save a fitted :class:`~sklimg.ImageClassifier`, or a pipeline ending in one, in
    the safe sklimg format.

    Parameters
    ----------
    model : ImageClassifier or Pipeline
        Fitted, with a backbone from the registry, and a neural head or a scikit-learn
        head made of scikit-learn types (the default head of a classical backbone, or
        e.g. ``SVC()``, a ``Pipeline`` of scalers and a linear model, random forests;
        not histogram gradient boosting or k-d trees, whose node arrays the loader
        cannot check). A ``Pipeline`` is stored whole when its steps before the
        classifier are sklimg's image steps (``LoadImages``, ``Resize``,
        ``CenterCrop``, ``ToRGB``, ``Grayscale``, ``Normalize``, ``Augment``) or
        ``"passthrough"``; save other pipelines with ``joblib.dump``.
    path : str or path-like
        The file to write (conventionally ``*.sklimg``), in an existing folder; written
        atomically: a failed save leaves no partial file and any previous file intact.
    metadata : dict or None, default=None
        JSON-serialisable facts to keep with the model (e.g. the image size a command
        line resized to); :func:`load` returns them as ``model.sklimg_metadata_``.

    Returns
    -------
    path : Path
        The file written.

    Raises
    ------
    ValueError
        If the model is not an :class:`~sklimg.ImageClassifier` (a pipeline, another
        estimator, a subclass) or cannot be expressed without pickle: a scikit-learn
        head holding other types, a user-defined backbone, a parameter that is an object (an
        optimizer class, a torch module, callbacks; an ``Augment`` instance is stored
        by its parameters), or labels that are not numbers or strings. Use
        ``joblib.dump`` for those.
    TypeError
        If ``path`` is not a str or path-like.
    IsADirectoryError, FileNotFoundError, NotADirectoryError
        If ``path`` is a folder, or its folder does not exist or is a file; checked
        before anything is written.

    Notes
    -----
    Parameters are stored as JSON, so :func:`load` gives back equal values, in plain
    types: numpy numbers (e.g. from a grid search over arrays) come back as Python
    numbers, tuples as lists (except ``image_shape`` and ``input_size``), paths as
    :class:`pathlib.Path`; dicts keep keys that are not strings (``class_weight={0: 1.0,
    1: 2.0}``). An ``Augment`` comes back as a new instance with the same parameters
    (``crop_scale`` as a tuple), equal by ``get_params()``. ``classes_`` keeps its
    numpy dtype.

    Examples
    --------
    >>> import sklimg
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> import tempfile, os
    >>> path = sklimg.save(clf, os.path.join(tempfile.mkdtemp(), "digits.sklimg"))
    >>> (sklimg.load(path).predict_proba(X[:5]) == clf.predict_proba(X[:5])).all()
    np.True_
    """
    steps = None
    if isinstance(model, Pipeline) and model.steps and isinstance(model[-1], ImageClassifier):
        check_is_fitted(model)
        steps = [_saved_step(name, step) for name, step in model.steps[:-1]]
        pipeline_params = {"verbose": bool(model.verbose), "classifier": model.steps[-1][0]}
        model = model[-1]
    if not isinstance(model, ImageClassifier):
        if hasattr(model, "steps"):
            hint = (
                "It saves pipelines that end in an ImageClassifier; for another "
                "pipeline, use joblib.dump"
            )
        elif hasattr(model, "best_estimator_"):
            hint = "Save the search's best_estimator_, or the whole search with joblib.dump"
        else:
            hint = "Save other estimators with joblib.dump"
        raise ValueError(
            f"sklimg.save takes a fitted sklimg.ImageClassifier, got "
            f"{type(model).__name__}. {hint} (and load pickles only from sources you trust)."
        )
    if type(model) is not ImageClassifier:
        # load() could not give the subclass back: fail now, not when loading.
        raise ValueError(
            f"sklimg.load rebuilds an ImageClassifier, not the subclass "
            f"{type(model).__name__}; save it with joblib.dump (and load only files you "
            f"trust)."
        )
    check_is_fitted(model)
    route = "head" if hasattr(model, "head_") else "neural"
    network, architecture, head = _saved_parts(model, route)
    if metadata is not None and not _is_json_value(metadata):
        raise ValueError(
            f"metadata must hold only JSON values (dicts with str keys, lists, numbers, "
            f"strings); got {metadata!r}."
        )
    path = check_save_path(path)
    # The accelerator is a runtime setting, like device: a loaded model predicts without.
    params = {**model.get_params(deep=False), "accelerator": None}
    for name, value in params.items():
        if name == "head" and value is not None:
            # The fitted head, stored in head.skops, gives it back: clone(head_).
            params[name] = {_TAG: "fitted_head"}
            continue
        try:
            params[name] = _encode(value)
        except _Unstorable:
            training_only = (
                f" ({name} only matters for training: model.set_params({name}=None) "
                f"before saving keeps the predictions)"
                if name in ("augment", "callbacks")
                else ""
            )
            raise ValueError(
                f"Parameter {name}={value!r} is an object the safe format cannot store "
                f"without pickle; use a string or number for it{training_only}, or save "
                f"with joblib.dump."
            ) from None
    classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    label_type = type(classes[0]).__name__
    if label_type not in _LABEL_TYPES:
        raise ValueError(
            f"Class labels of type {label_type} cannot be stored safely; use ints or strings."
        )
    state = {} if network is None else network.state_dict()
    weights = save_safetensors({k: v.detach().cpu().contiguous() for k, v in state.items()})
    fitted = {"input_shape_": list(model.input_shape_), "pixel_range_": list(model.pixel_range_)}
    if route == "neural":
        fitted.update(input_size_=list(model.input_size_), finetune_=model.finetune_)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": versions(),
        "estimator": type(model).__name__,
        "route": route,
        "params": params,
        "classes": classes,
        "label_type": label_type,
        "classes_dtype": np.asarray(model.classes_).dtype.str,  # e.g. "|i1", "|O", "<U7"
        "fitted": fitted,
        "architecture": architecture,
        "history": plain_history(model.history_) if route == "neural" else None,
        "metadata": metadata or {},
    }
    if steps is not None:
        config["pipeline"] = {"steps": steps, "params": pipeline_params}
    config["trust"], trust = _saved_trust(model)
    config["sha256"] = _digest(config, weights, head, trust)
    with atomic_write(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_CONFIG, json.dumps(config, indent=1))
            archive.writestr(_WEIGHTS, weights)
            if route == "head":
                archive.writestr(_HEAD, head)
            if config["trust"] is not None:
                archive.writestr(_TRUST, trust)
    return path


def _saved_trust(model) -> tuple[dict | None, bytes]:
    """Calibration and the unknown answer as JSON and the detector's arrays as
    safetensors bytes; ``(None, b"")`` for a model with neither."""
    temperature = getattr(model, "temperature_", None)
    detector = getattr(model, "unknown_detector_", None)
    if temperature is None and detector is None:
        return None, b""
    unknown = None
    if detector is not None:
        label = model.unknown_label_
        unknown = {
            "method": detector.name,
            "threshold": float(model.unknown_threshold_),
            "label": label.item() if hasattr(label, "item") else label,
        }
    arrays = detector.arrays() if detector is not None else {}
    data = save_numpy({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return {"temperature": temperature, "unknown": unknown}, data


def _loaded_trust(saved, data: bytes, n_features: int, classes: np.ndarray) -> Trust | None:
    """The :class:`~sklimg._trust.Trust` :func:`_saved_trust` stored, checked (a
    ValueError for values no fit gives)."""
    if saved is None:
        return None
    if set(saved) != {"temperature", "unknown"}:
        raise ValueError(f"its trust holds {sorted(saved)}")
    temperature = saved["temperature"]
    if temperature is not None and not (
        isinstance(temperature, float) and math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"its temperature {temperature!r} is not a positive number")
    arrays = load_numpy(data)
    unknown = saved["unknown"]
    if unknown is None:
        if arrays:
            raise ValueError("it holds a detector's arrays but no unknown answer")
        return Trust(temperature=temperature, detector=None, threshold=None, unknown_label=None)
    if set(unknown) != {"method", "threshold", "label"} or unknown["method"] not in DETECTORS:
        raise ValueError(f"its unknown answer {unknown!r} is not one sklimg sets")
    threshold, label = unknown["threshold"], unknown["label"]
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise ValueError(f"its unknown threshold {threshold!r} is not a number")
    if not isinstance(label, (str, int, float)) or label in classes.tolist():
        raise ValueError(f"its unknown label {label!r} is not a label outside the classes")
    detector = DETECTORS[unknown["method"]].from_arrays(arrays, n_features)
    return Trust(
        temperature=temperature, detector=detector, threshold=float(threshold), unknown_label=label
    )


def _saved_step(name: str, step) -> dict:
    """A pipeline step before the classifier, as JSON: its class, parameters and
    fitted statistics; a ValueError for a step that is not one of sklimg's image steps."""
    if step is None or step == "passthrough":
        return {"name": name, "class": "passthrough"}
    cls = type(step).__name__
    if _PIPELINE_STEPS.get(cls) is not type(step):
        raise ValueError(
            f"The pipeline step {name!r} is a {cls}; the safe format stores pipelines "
            f"whose steps before the classifier are sklimg's image steps "
            f"({', '.join(_PIPELINE_STEPS)}). Save this pipeline with joblib.dump (and "
            f"load only files you trust)."
        )
    try:
        params = _encode(step.get_params())
    except _Unstorable as exc:
        raise ValueError(
            f"The pipeline step {name!r} has a parameter {exc.args[0]!r} the safe format "
            f"cannot store; use strings and numbers, or save with joblib.dump."
        ) from None
    entry = {"name": name, "class": cls, "params": params}
    if isinstance(step, Normalize):
        check_is_fitted(step)
        entry["fitted"] = {"mean_": step.mean_.tolist(), "std_": step.std_.tolist()}
    return entry


def _rebuilt_step(entry: dict):
    """The pipeline step :func:`_saved_step` stored (a ValueError for anything else)."""
    if entry["class"] == "passthrough":
        return entry["name"], "passthrough"
    cls = _PIPELINE_STEPS[entry["class"]]
    # JSON made the tuples of sizes and ranges lists.
    params = {
        k: tuple(v) if isinstance(v, list) else v for k, v in _decode(entry["params"]).items()
    }
    step = cls(**params)
    step._validate_params()
    if isinstance(step, Normalize):
        mean, std = (np.array(entry["fitted"][k], dtype=np.float64) for k in ("mean_", "std_"))
        if not (
            mean.ndim == std.ndim == 1
            and mean.shape == std.shape
            and np.isfinite(mean).all()
            and np.isfinite(std).all()
            and (std > 0).all()
        ):
            raise ValueError("a Normalize step's statistics are not finite positive vectors")
        step.mean_, step.std_ = mean, std
    elif isinstance(step, Augment):
        step.fit()
    return entry["name"], step


def _saved_parts(model, route: str) -> tuple:
    """What :func:`save` stores besides the parameters: the network (``None`` for a
    classical backbone), its architecture, and the scikit-learn head's skops bytes
    (``b""`` for a neural head). Raises ValueError for what it cannot store."""
    spec = model.backbone_spec_
    unregistered = ValueError(
        f"The backbone {spec.name!r} is not in the sklimg registry, so the safe format "
        f"cannot rebuild it; register it with sklimg.backbones.register_backbone, or save "
        f"with joblib.dump."
    )
    if route == "neural":
        network, head = model.net_.module_, b""
    else:
        try:
            head = _sklearn_store.dumps(model.head_)
        except _sklearn_store.UnstorableError as exc:
            cause = _unstorable_head(model.head_, exc.types)
            raise ValueError(
                f"{cause[0].upper()}{cause[1:]}; use another "
                f"head, e.g. LogisticRegression() or SVC(), or save with joblib.dump (and "
                f"load only files you trust)."
            ) from None
        extractor = model.feature_extractor_
        network = extractor.network_ if isinstance(extractor, DeepFeatures) else None
    if network is None:  # a classical backbone: rebuilt from its name and the images' channels
        try:
            registered = get_backbone(spec.name) == spec
        except UnknownBackboneError:
            registered = False
        if not registered:
            raise unregistered
        return None, {"backbone": spec.name, "in_chans": int(model.input_shape_[-1])}, head
    if not network.architecture:
        raise unregistered
    return network, dict(network.architecture), head


def _unstorable_head(head, types: list[str]) -> str:
    """Why the safe format cannot store ``head``, without the fix."""
    return (
        f"the head {' '.join(repr(head).split())} holds {', '.join(types)}, which the "
        f"safe format does not load (it loads scikit-learn's own types, and only those "
        f"whose contents it can check)"
    )


def input_steps(model) -> list:
    """The image steps that make any image what ``model`` was trained on: a resize to
    its training size (the ``image_size`` of its metadata, else its input shape) and a
    conversion to its channels; none for a model without ``input_shape_`` (a pipeline,
    which does its own preprocessing). Used by ``sklimg predict`` and ``sklimg serve``.

    Parameters
    ----------
    model : fitted ImageClassifier or Pipeline

    Returns
    -------
    list of transformers
        Unfitted; they fit on any images.
    """
    shape = getattr(model, "input_shape_", None)
    if shape is None:
        return []
    metadata = getattr(model, "sklimg_metadata_", None) or {}
    # Models saved outside the command have no metadata: their training size is the one.
    size = tuple(metadata.get("image_size", shape[:2]))
    return [Resize(size), ToRGB() if shape[-1] == 3 else Grayscale()]


def load(path: str | os.PathLike, *, device: str = "auto"):
    """Load a model saved by :func:`save`, without unpickling anything.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str, default="auto"
        Where to put the network: ``"auto"`` (CUDA when available), ``"cpu"``, ...
        A model trained on a GPU loads on a CPU-only machine. Any other value than
        ``"auto"`` also becomes the model's ``device`` parameter, so that further
        training (``partial_fit``, a warm start) stays there; with ``"auto"`` the
        saved parameter is kept.

    Returns
    -------
    model : ImageClassifier or Pipeline
        Fitted, as saved; predicts exactly as the saved one. The classifier's
        ``sklimg_metadata_`` holds the ``metadata`` given to :func:`save`.

    Raises
    ------
    ModelFileError
        If the file does not exist, is a folder, a named pipe, socket or device, is
        not an sklimg model, was modified, damaged or truncated, declares members
        larger than the file can hold (a zip bomb), has an unknown format version,
        names a backbone or parameter sklimg does not know, or holds weights that are
        not finite or do not match its class list.
    TypeError
        If ``path`` is not a str or path-like.

    Examples
    --------
    >>> import os, tempfile
    >>> import sklimg
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.sklimg")
    >>> path = sklimg.save(clf, path, metadata={"data": "digits, 100 images"})
    >>> model = sklimg.load(path, device="cpu")
    >>> model.sklimg_metadata_
    {'data': 'digits, 100 images'}
    >>> model.predict(X[:3]).shape
    (3,)
    """
    path = _file_path(path)
    kind = special_file_kind(path)
    if kind == "a folder":
        raise ModelFileError(
            f"{str(path)!r} is a folder, not a model file; pass the path of a file written "
            f"by sklimg.save, e.g. {str(path / 'model.sklimg')!r}."
        )
    if kind is not None:  # a pipe blocks in open and /dev/zero never ends
        raise ModelFileError(
            f"{str(path)!r} is {kind}, not a model file; reading it could block or never "
            f"end. Pass the path of a file written by sklimg.save."
        )
    resolved = resolve_device(device)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if names - {_TRUST} not in _MEMBERS.values():
                raise ModelFileError(
                    f"{str(path)!r} is not an sklimg model file: it holds {sorted(names)}, "
                    f"expected {[_CONFIG, _WEIGHTS]}, and {_HEAD} with a scikit-learn "
                    f"head. Models saved with joblib.dump load with joblib.load (only from "
                    f"sources you trust)."
                )
            _check_member_sizes(archive, path)
            raw_config = archive.read(_CONFIG)
            weights = archive.read(_WEIGHTS)
            head = archive.read(_HEAD) if _HEAD in names else b""
            trust = archive.read(_TRUST) if _TRUST in names else b""
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(
            f"{str(path)!r} is not a readable sklimg model file ({exc}); it may be truncated "
            f"or of another format. Save models with sklimg.save."
        ) from None
    except (FileNotFoundError, NotADirectoryError):  # no such file, or a file as folder
        raise ModelFileError(f"Model file {str(path)!r} does not exist.") from None
    try:
        config = json.loads(raw_config)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{str(path)!r}: its {_CONFIG} is not valid JSON ({exc}).") from None
    _check_config(config, path)
    expected = _MEMBERS[config.get("route", "neural")]
    if names != expected | ({_TRUST} if config.get("trust") is not None else set()):
        raise ModelFileError(
            f"{str(path)!r}: its members {sorted(names)} do not fit its route "
            f"{config.get('route', 'neural')!r}; the file is damaged or was edited."
        )
    if _digest(config, weights, head, trust) != config["sha256"]:
        raise ModelFileError(
            f"{str(path)!r}: its contents do not match the digest recorded when the model "
            f"was saved; the file was modified or damaged."
        )
    current = versions()
    if config["versions"] != current:
        warnings.warn(
            f"{str(path)!r} was saved with {config['versions']}; installed: {current}.",
            VersionMismatchWarning,
            stacklevel=2,
        )
    try:
        model = _rebuild(config, weights, head, trust, path, resolved)
    except ModelFileError:
        raise
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as exc:
        # A file with a valid digest but a configuration this sklimg cannot use (written
        # by hand or by another tool).
        raise ModelFileError(
            f"{str(path)!r}: its {_CONFIG} does not describe a model this sklimg can "
            f"rebuild ({type(exc).__name__}: {exc})."
        ) from None
    if device != "auto":
        model.set_params(device=str(device))  # a torch.device as its name, as saved
    if "pipeline" not in config:
        return model
    try:
        pipeline = config["pipeline"]
        steps = [_rebuilt_step(entry) for entry in pipeline["steps"]]
        verbose, name = pipeline["params"]["verbose"], pipeline["params"]["classifier"]
        if not (isinstance(verbose, bool) and isinstance(name, str)):
            raise TypeError(f"verbose={verbose!r}, classifier={name!r}")
        return Pipeline([*steps, (name, model)], verbose=verbose)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelFileError(
            f"{str(path)!r}: its pipeline does not describe steps this sklimg can "
            f"rebuild ({type(exc).__name__}: {exc})."
        ) from None


def _check_member_sizes(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse, before reading them, members larger than such a file can hold.

    :func:`save` stores both members uncompressed, so their sizes add up to the file's.
    A compressed member (a file zipped again by another tool) may inflate by
    :data:`_MAX_INFLATION` at most: a few megabytes that declare gigabytes (a zip bomb)
    are refused at once instead of filling the memory. Reading stops at the declared
    size, so a member cannot hold more than it declares either.
    """
    size = os.stat(path).st_size
    for info in archive.infolist():
        limit = _MAX_CONFIG_BYTES if info.filename == _CONFIG else None
        stored = info.compress_type == zipfile.ZIP_STORED
        if limit is None:
            limit = size if stored else _MAX_INFLATION * max(info.compress_size, 1)
        if info.file_size > limit or (stored and info.file_size != info.compress_size):
            raise ModelFileError(
                f"{str(path)!r}: its member {info.filename} declares {info.file_size:,} "
                f"bytes, more than a {size:,}-byte sklimg model file can hold (a damaged "
                f"file, or a zip bomb); it was not read. Save models with sklimg.save."
            )


def _check_weights(network, n_classes: int | None, path: Path) -> None:
    """Refuse weights that would predict nonsense: non-finite values, or an output
    layer of another size than the class list (``n_classes``; ``None`` for a feature
    extractor, which has no output layer)."""
    for name, tensor in network.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(
                f"{str(path)!r}: its weights {name!r} hold NaN or infinite values, so the "
                f"model would predict NaN. Save the model again from a good fit (a "
                f"diverged fit keeps its last good weights)."
            )
    outputs = network.architecture.get("n_classes")
    if outputs != n_classes:
        raise ModelFileError(
            f"{str(path)!r}: its network has {outputs} outputs but it lists {n_classes} "
            f"classes; the file was not written by sklimg.save or was edited."
        )


def _digest(config: dict, weights: bytes, head: bytes = b"", trust: bytes = b"") -> str:
    """SHA-256 of the configuration, without the digest itself, of the weights, of the
    scikit-learn head and of the unknown detector's arrays (``b""`` without them, so
    version 2 files keep their digest)."""
    body = {key: value for key, value in config.items() if key != "sha256"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    digest.update(weights)
    digest.update(head)
    digest.update(trust)
    return digest.hexdigest()


def _rebuild(config: dict, weights: bytes, head: bytes, trust: bytes, path: Path, device: str):
    """The fitted classifier a checked configuration and its members describe, rebuilt
    through the functions fit uses: the network from the registry, its net as a fit
    would configure it, or the feature extractor and the scikit-learn head, and the
    fitted state of their route."""
    unknown = set(config["params"]) - set(ImageClassifier().get_params(deep=False))
    if unknown:
        raise ModelFileError(f"{str(path)!r} names unknown parameters {sorted(unknown)}.")
    metadata = config.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{str(path)!r}: its metadata is not a mapping.")
    route = config.get("route", "neural")
    estimator = _loaded_head(head, path) if route == "head" else None
    params = {k: _decode_param(k, v, estimator) for k, v in config["params"].items()}
    params = _tuples(params)
    label = _LABEL_TYPES[config["label_type"]]
    labels = [label(c) for c in config["classes"]]
    classes = np.array(labels, dtype=config["classes_dtype"])
    if classes.tolist() != labels:  # e.g. 300 as int8, or "cat" as <U1
        raise ValueError(f"the classes {labels} do not fit dtype {classes.dtype}")
    fitted = config["fitted"]
    height, width, channels = (int(s) for s in fitted["input_shape_"])
    low, high = fitted["pixel_range_"]
    seen = {
        "classes": classes,
        "input_shape": (height, width, channels),
        "pixel_range": (float(low), float(high)),
    }
    architecture = config["architecture"]
    try:
        spec = get_backbone(architecture["backbone"])
    except UnknownBackboneError as exc:
        raise ModelFileError(
            f"{str(path)!r} needs a backbone sklimg does not know: {exc}"
        ) from None

    def network(n_classes: int | None):
        network = rebuild_network(architecture)
        try:
            network.load_state_dict(load_safetensors(weights), strict=True)
        except (SafetensorError, RuntimeError) as exc:
            raise ModelFileError(
                f"{str(path)!r}: the weights do not fit the network ({exc})."
            ) from None
        _check_weights(network, n_classes, path)
        return network

    def neural_state(model) -> NeuralFit:
        input_size = tuple(int(s) for s in fitted["input_size_"])
        net = neural.prediction_net(
            model,
            network(len(classes)),
            classes=classes,
            input_shape=seen["input_shape"],
            input_size=input_size,
            finetune=fitted["finetune_"],
            history=config["history"],
            device=device,
        )
        return NeuralFit(
            **seen,
            backbone_spec=spec,
            net=net,
            input_size=input_size,
            finetune=fitted["finetune_"],
            trust=_loaded_trust(
                config.get("trust"), trust, int(architecture["feature_dim"]), classes
            ),
        )

    def head_state(model) -> HeadFit:
        if spec.kind == "classical":
            if architecture != {"backbone": spec.name, "in_chans": channels}:
                raise ValueError(f"a classical backbone's architecture is {architecture}")
            blank = np.zeros((1, height, width, channels), np.float32)
            extractor = head_route.classical_extractor(model, spec, blank)
        else:
            if architecture.get("n_classes") is not None:
                raise ValueError("a feature extractor's network has an output layer")
            params = head_route.deep_features_params(model, spec, device, model.random_state)
            extractor = loaded_deep_features(network(None), seen["input_shape"], **params)
        _check_head(estimator, classes, extractor.n_features_out_, path)
        return HeadFit(
            **seen,
            backbone_spec=spec,
            feature_extractor=extractor,
            head=estimator,
            trust=_loaded_trust(config.get("trust"), trust, extractor.n_features_out_, classes),
        )

    return fitted_classifier(
        params, neural_state if route == "neural" else head_state, metadata=metadata
    )


def _loaded_head(head: bytes, path: Path):
    """The fitted scikit-learn head of ``head.skops``, or :class:`ModelFileError`."""
    try:
        return _sklearn_store.loads(head)
    except _sklearn_store.UnstorableError as exc:
        raise ModelFileError(
            f"{str(path)!r}: its scikit-learn head names types sklimg does not load "
            f"without pickle: {exc}. Save such heads with joblib.dump."
        ) from None
    except ValueError as exc:
        raise ModelFileError(f"{str(path)!r}: its {_HEAD} is unusable: {exc}.") from None


def _check_head(head, classes: np.ndarray, n_features: int, path: Path) -> None:
    """Refuse a scikit-learn head that does not fit its model: another class list, or
    another number of input features than the extractor gives."""
    if not hasattr(head, "predict"):
        raise ModelFileError(f"{str(path)!r}: its head {type(head).__name__} cannot predict.")
    head_classes = getattr(head, "classes_", None)
    if head_classes is None or not np.array_equal(np.asarray(head_classes), classes):
        raise ModelFileError(
            f"{str(path)!r}: its head predicts the classes {head_classes!r}, but the file "
            f"lists {classes.tolist()}; it was not written by sklimg.save or was edited."
        )
    expected = getattr(head, "n_features_in_", n_features)
    if expected != n_features:
        raise ModelFileError(
            f"{str(path)!r}: its head takes {expected} features, but its feature extractor "
            f"gives {n_features}; it was not written by sklimg.save or was edited."
        )


def _file_path(path) -> Path:
    """``path`` as a Path, or a TypeError that says what a path is."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or path-like such as 'model.sklimg', got {type(path).__name__}."
        )
    return Path(path)


def check_storable(clf, spec) -> None:
    """Refuse, before it is trained, a classifier whose model the safe format cannot
    hold: a scikit-learn head holding types other than scikit-learn's (a fitted head
    may hold more, which :func:`save` checks again).

    Raises
    ------
    Refusal
        Naming those types, with the other format as the fix.
    """
    if route_of(clf.head, spec) != "head":
        return
    head = head_route.default_head() if clf.head is None else clone(clf.head)
    types = _sklearn_store.untrusted_types(head)
    if types:
        raise Refusal(
            "{save_name} cannot store this head: " + _unstorable_head(clf.head, types) + ".",
            {"save": None},
            [{"format": "joblib"}],
        )


def check_save_path(given: str | os.PathLike, *, option: str = "path") -> Path:
    """Fail before anything is written (or trained) if ``given`` cannot become a model
    file; ``option`` names the setting in the messages (the command line's ``--out``).

    Returns
    -------
    path : Path

    Raises
    ------
    TypeError
        If ``given`` is not a str or path-like.
    IsADirectoryError, FileNotFoundError, NotADirectoryError, FileExistsError
        If it is a folder, or its folder does not exist or is a file, or it is a
        named pipe, socket or device.
    PermissionError
        If no file can be created in its folder (permissions, a read-only file
        system).
    """
    path = _file_path(given)
    given = os.fspath(given)
    # Path drops a trailing separator: "models/" must not become a file called models.
    names_folder = isinstance(given, str) and given.endswith((os.sep, os.altsep or os.sep))
    if path.is_dir() or names_folder:
        raise IsADirectoryError(
            f"Cannot save to {given!r}: it {'is' if path.is_dir() else 'names'} a folder. "
            f"Give a file name, e.g. {str(path / 'model.sklimg')!r}."
        )
    folder = path.parent
    if not folder.exists():
        raise FileNotFoundError(
            f"Cannot save to {str(path)!r}: the folder {str(folder)!r} does not exist. "
            f"Create the folder first, or choose another {option}."
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            f"Cannot save to {str(path)!r}: {str(folder)!r} is not a folder but a file."
        )
    kind = special_file_kind(path)
    if kind is not None:  # a pipe or device under that name is not replaced by a model
        raise FileExistsError(
            f"Cannot save to {str(path)!r}: it is {kind}, not a file. Choose another {option}."
        )
    reason = unwritable_reason(folder)
    if reason is not None:
        raise PermissionError(
            f"Cannot save to {str(path)!r}: no file can be created in {str(folder)!r} "
            f"({reason}). Choose another {option} in a folder you can write to."
        )
    return path


class _Unstorable(Exception):
    """A value that JSON and the tags of :func:`_encode` cannot represent."""


def _encode(value):
    """A parameter value as JSON, or :class:`_Unstorable`.

    Values that scikit-learn produces but JSON lacks become plain values (numpy
    numbers) or tagged objects that :func:`_decode` turns back (paths, dicts with keys
    that are not strings). Anything else, such as a class or a module, is refused.
    """
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, PurePath):
        return {_TAG: "path", "value": str(value)}
    if type(value) is Augment:  # its parameters are plain values (a subclass may not be)
        return {_TAG: "augment", "params": _encode(value.get_params())}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAG not in value:
            return {str(k): _encode(v) for k, v in value.items()}
        # JSON keys are strings: keep other keys, and a str key that is the tag, as pairs.
        return {_TAG: "dict", "items": [[_encode_key(k), _encode(v)] for k, v in value.items()]}
    raise _Unstorable(value)


def _encode_key(key):
    key = _encode(key)
    if not (key is None or isinstance(key, (bool, int, float, str))):
        raise _Unstorable(key)  # a tuple key would come back as an unhashable list
    return key


def _decode(value):
    """The parameter value :func:`_encode` stored (a ValueError for unknown tags)."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _TAG not in value:
        return {k: _decode(v) for k, v in value.items()}
    kind = value[_TAG]
    if kind == "path" and set(value) == {_TAG, "value"} and isinstance(value["value"], str):
        return Path(value["value"])
    if kind == "dict" and set(value) == {_TAG, "items"}:
        return {key: _decode(v) for key, v in value["items"]}
    raise ValueError(f"unknown encoded value {value!r}")


def _decode_param(name: str, value, head=None):
    """A parameter's value: :func:`_decode`, for ``augment`` (only) an ``Augment``, for
    ``head`` (only) an unfitted copy of the fitted ``head``."""
    if name == "head" and value == {_TAG: "fitted_head"}:
        if head is None:
            raise ValueError("the head parameter refers to a fitted head the file lacks")
        return clone(head)
    if not (name == "augment" and isinstance(value, dict) and value.get(_TAG) == "augment"):
        return _decode(value)
    if set(value) != {_TAG, "params"} or not isinstance(value["params"], dict):
        raise ValueError(f"unknown encoded value {value!r}")
    # Its sequence parameters (crop_scale) are tuples, which JSON made lists.
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in value["params"].items()}
    augment = Augment(**params)
    # A hand-written file could hold anything: the types, then the values (fit checks
    # them without images; the model keeps the unfitted instance).
    augment._validate_params()
    clone(augment).fit()
    return augment


def _is_json_value(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def _tuples(params: dict) -> dict:
    """JSON turns tuples into lists; give sizes and shapes back their tuple form."""
    return {
        k: tuple(v) if isinstance(v, list) and k in ("image_shape", "input_size") else v
        for k, v in params.items()
    }


def _check_config(config, path: Path) -> None:
    required = {
        "format", "format_version", "versions", "estimator", "params", "classes",
        "label_type", "classes_dtype", "fitted", "architecture", "history", "sha256",
    }  # fmt: skip
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not an sklimg model file.")
    # The version first: another version may lay its contents out differently.
    if config.get("format_version") not in _READABLE_VERSIONS:
        raise ModelFileError(
            f"{str(path)!r} has format version {config.get('format_version')}; this sklimg "
            f"reads versions {', '.join(map(str, _READABLE_VERSIONS))}. Load it with the "
            f"sklimg that saved it."
        )
    missing = required - set(config)
    if missing:
        raise ModelFileError(f"{str(path)!r} lacks {sorted(missing)}; it is damaged.")
    if config.get("route", "neural") not in _MEMBERS:
        raise ModelFileError(f"{str(path)!r} has an unknown route {config.get('route')!r}.")
    if config["estimator"] != "ImageClassifier":
        raise ModelFileError(
            f"{str(path)!r} holds an unknown estimator type {config['estimator']!r}."
        )
    if config["label_type"] not in _LABEL_TYPES:
        raise ModelFileError(f"{str(path)!r} has an unknown label type {config['label_type']!r}.")
    dtype = config["classes_dtype"]
    try:
        kind = np.dtype(dtype).kind if isinstance(dtype, str) else None
    except (TypeError, ValueError):
        kind = None
    if kind is None or kind not in _CLASS_DTYPE_KINDS:  # no structures, dates, bytes
        raise ModelFileError(f"{str(path)!r} has an unknown classes dtype {dtype!r}.")
