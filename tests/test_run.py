"""The preparation every fit shares (sklimg._fit.run): the images are validated once,
whatever the route's later steps (augmentation, frozen features) do with them."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import sklimg.utils.validation as validation
from sklimg import ImageClassifier
from sklimg._fit.run import prepare, route_of
from sklimg.backbones import resolve_backbone
from sklimg.lr_finder import find_lr

FAST = dict(backbone="test_cnn", max_epochs=1, random_state=0)


@pytest.fixture
def validations(monkeypatch):
    """The number of times images are validated (check_images runs), so far."""
    calls = []
    real = validation.check_images

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(validation, "check_images", counting)
    return calls


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"augment": "light"},
        {"finetune": "head"},
        {"finetune": "head", "augment": "light"},
        {"head": LogisticRegression(max_iter=200)},
    ],
    ids=["plain", "augment", "frozen features", "frozen, augmented", "scikit-learn head"],
)
def test_a_fit_validates_the_images_once(small_digits, validations, params):
    X, y = small_digits
    ImageClassifier(**FAST, **params).fit(X, y)
    assert len(validations) == 1


@pytest.mark.filterwarnings("ignore:The loss")  # 12 steps: too few to read a curve from
def test_partial_fit_and_the_range_test_validate_once(small_digits, validations):
    X, y = small_digits
    ImageClassifier(**FAST, augment="light").partial_fit(X, y, classes=np.unique(y))
    assert len(validations) == 1
    find_lr(ImageClassifier(**FAST, augment="light"), X, y, num_iter=12)
    assert len(validations) == 2


def test_the_route_is_decided_in_one_place():
    assert route_of(None, resolve_backbone("test_cnn")) == "neural"
    assert route_of(None, resolve_backbone("hog")) == "head"
    assert route_of(object(), resolve_backbone("test_cnn")) == "head"


def test_partial_fit_calls_draw_seeds_of_their_own(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST)
    seeds = [prepare(clf, X, y, call=call).seed for call in (None, 0, 1, 2)]
    assert seeds[0] == seeds[1] == 0 and len(set(seeds[1:])) == 3
