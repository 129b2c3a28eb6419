"""The catalogue of bad inputs: each fails early with the right error type and a
message that says how to fix it (the command line's cases are in test_cli.py)."""

from functools import partial

import numpy as np
import pytest
import torch

import sklimg
from sklimg import ImageClassifier
from sklimg.datasets import load_image_folder
from sklimg.exceptions import (
    DeviceError,
    ImageDtypeError,
    ImageInputError,
    ModelFileError,
    UnknownBackboneError,
    WeightsError,
)
from sklimg.features import HOG, DeepFeatures, extract_features
from sklimg.preprocessing import Augment, Normalize, Resize
from sklimg.utils._sklearn_compat import InvalidParameterError

IMAGES = np.random.default_rng(0).random((12, 8, 8), dtype=np.float32)
LABELS = np.arange(12) % 2
FAST = dict(backbone="test_cnn", max_epochs=1)
TINY = partial(DeepFeatures, "test_cnn", pretrained=False)


def fit(X=IMAGES, y=LABELS, **params):
    return lambda: ImageClassifier(**{**FAST, **params}).fit(X, y)


def fitted():
    return ImageClassifier(**FAST).fit(IMAGES, LABELS)


def predict(X):
    return lambda: fitted().predict(X)


def load_model(path_of):
    return lambda: sklimg.load(path_of())


def folder(path_of):
    return lambda: load_image_folder(path_of())


NotFitted = sklimg.exceptions.NotFittedError


CASES = [
    # --- the estimator: labels
    ("labels longer than X", fit(y=np.arange(13) % 2), ImageInputError, "12 images but y has 13"),
    ("float labels with NaN", fit(y=np.where(LABELS, 1.0, np.nan)), ImageInputError, "NaN.*give"),
    ("continuous labels", fit(y=np.linspace(0, 1, 12)), ImageInputError, "integer or string"),
    ("a single class", fit(y=np.zeros(12)), ImageInputError, "at least 2 classes"),
    ("2-D labels", fit(y=np.zeros((12, 2))), ImageInputError, "1-D with one label per image"),
    ("a missing string label", fit(y=np.array(["a", "b"] * 5 + ["a", np.nan], dtype=object)),
     ImageInputError, r"y has 1 missing labels \(None or NaN\)"),
    ("str and bytes labels", fit(y=np.array(["a", b"b"] * 6, dtype=object)), ImageInputError,
     r"mixes strings with other types \(\['bytes', 'string'\]\)"),
    ("labels of mixed types", fit(y=np.array([0, "a"] * 6, dtype=object)), ImageInputError,
     r"mixes strings with other types \(\['int', 'string'\]\)"),
    # --- the estimator: images
    ("images of 0 pixels", fit(X=np.zeros((12, 0, 8))), ImageInputError, "height and width"),
    ("a 5-channel image", fit(X=np.zeros((12, 8, 8, 5))), ImageInputError, "expected 1 or 3"),
    ("channels first", fit(X=np.zeros((12, 3, 8, 8))), ImageInputError, "np.moveaxis"),
    ("NaN pixels", fit(X=np.full((12, 8, 8), np.nan)), ImageInputError, "np.nan_to_num"),
    ("strings as pixels", fit(X=np.full((12, 8, 8), "x")), ImageDtypeError, "np.asarray"),
    ("no images", fit(X=np.zeros((0, 8, 8)), y=[]), ImageInputError, "at least one image"),
    ("ragged list", fit(X=[np.zeros((8, 8))] * 11 + [np.zeros((9, 9))]), ImageInputError, "Resize"),
    ("not a square row", fit(X=np.zeros((12, 10))), ImageInputError, "pass image_shape"),
    # --- the estimator: parameters
    ("batch_size=0", fit(batch_size=0), InvalidParameterError, "'batch_size' .* must be an int"),
    ("lr=-1", fit(lr=-1), InvalidParameterError, "'lr' parameter .* range"),
    ('max_epochs="ten"', fit(max_epochs="ten"), InvalidParameterError, "'max_epochs'.*Got 'ten'"),
    ("an unknown device", fit(device="gpu"), DeviceError, "expected 'auto', 'cpu', 'cuda'"),
    ("an unknown backbone", fit(backbone="resnet-18"), UnknownBackboneError, "'resnet18'"),
    ("unknown weights", fit(backbone="resnet18", weights="IMAGENET9K"), WeightsError, "Available"),
    ("a missing weights file", fit(weights="nope.pth"), WeightsError, "does not exist"),
    ("no weights to load", fit(backbone="cnn_small", pretrained=True), WeightsError, "no pre"),
    ("amp on the CPU", fit(amp=True), ValueError, "needs a CUDA"),
    ('tta="mirror"', fit(tta="mirror"), InvalidParameterError, "'tta' parameter"),
    ("tta, classical backbone", fit(backbone="pixels", tta="flip"), ValueError, "has no network"),
    ("input_size=True", fit(input_size=True), ValueError, "input_size must be 'auto', an int"),
    ("a callback that is not one", fit(callbacks=[3]), TypeError,
     r"skorch Callbacks \(instances or classes\)"),
    ("a class that is no callback", fit(callbacks=[dict]), TypeError, "got <class 'dict'>"),
    ("LBFGS with weight decay", fit(optimizer=torch.optim.LBFGS), ValueError,
     "LBFGS has no weight_decay; set weight_decay=0"),
    ("checkpoint_dir is a file", lambda: fit(checkpoint_dir=TEXT_FILE)(), ValueError,
     "cannot hold checkpoints: .* is a file"),
    ("memory is a file", lambda: fit(memory=TEXT_FILE)(), ValueError, "is a file; pass a folder"),
    # --- predicting
    ("predict before fit", lambda: ImageClassifier().predict(IMAGES), NotFitted, "fit"),
    ("another size at predict", predict(np.zeros((2, 16, 16))), ImageInputError, "Resize"),
    ("one image as a 2-D array", predict(np.zeros((8, 10))), ImageInputError,
     r"one 8x10 image, pass it as X\[None\]"),
    ("other channels at predict", predict(np.zeros((2, 8, 8, 3))), ImageInputError, "ToRGB"),
    ("tta on a fitted classical model", lambda: fit(backbone="pixels")().set_params(
        tta="flip").predict(IMAGES), ValueError, "'pixels' has no network. Use backbone="),
    ("tta set to a typo after fit", lambda: fitted().set_params(tta="flips").predict(IMAGES),
     ValueError, r"tta must be None or one of \['flip', 'flip_translate'\]; got 'flips'"),
    # --- transformers
    ("Resize to 0 pixels", lambda: Resize(0).fit(IMAGES), InvalidParameterError, "'size'"),
    ("Normalize auto, no backbone", lambda: Normalize("auto").fit(IMAGES), ValueError, "backbone"),
    ("Augment unknown policy", lambda: Augment("heavy").fit(), InvalidParameterError, "'policy'"),
    ("HOG on images too small", lambda: HOG().fit(IMAGES), ImageInputError, "at least 16x16"),
    ("DeepFeatures on NaN", lambda: DeepFeatures().fit(IMAGES * np.nan), ImageInputError, "NaN"),
    ("DeepFeatures, unknown layer", lambda: TINY(layer="9").fit(IMAGES), ValueError, "no layer"),
    ("DeepFeatures, classical backbone", lambda: DeepFeatures("hog", pretrained=False).fit(
        IMAGES), ValueError, "'hog' is a classical backbone with no network"),
    ("extract_features, 5 channels", lambda: extract_features(
        torch.nn.Flatten(), np.zeros((3, 8, 8, 5))), ImageInputError, "expected 1 or 3"),
    ("extract_features, batch_size=0", lambda: extract_features(
        torch.nn.Flatten(), IMAGES, batch_size=0), ValueError, "positive int; got 0"),
    ("a hog backbone_kwarg typo", fit(backbone="hog", backbone_kwargs={"foo": 1}), TypeError,
     r"Could not build backbone 'hog' with backbone_kwargs=\{'foo': 1\}"),
    ("DeepFeatures, unknown tta", lambda: TINY(tta="mirror").fit(IMAGES), InvalidParameterError,
     "'tta' parameter of DeepFeatures"),
    # --- files
    ("a folder with no images", folder(lambda: EMPTY_DIR), ImageInputError, "without images"),
    ("a model of another format", load_model(lambda: TEXT_FILE), ModelFileError, "not a readable"),
]  # fmt: skip

EMPTY_DIR = TEXT_FILE = None


@pytest.fixture(autouse=True)
def _paths(tmp_path):
    global EMPTY_DIR, TEXT_FILE
    EMPTY_DIR = tmp_path / "empty"
    (EMPTY_DIR / "cats").mkdir(parents=True)
    TEXT_FILE = tmp_path / "model.sklimg"
    TEXT_FILE.write_text("this is not a model")


def test_the_catalogue_is_large_enough():
    assert len([case for case in CASES if case[1] is not None]) >= 25


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [case[1:] for case in CASES if case[1] is not None],
    ids=[case[0] for case in CASES if case[1] is not None],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
