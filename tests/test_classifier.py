import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from sklimg import ImageClassifier
from sklimg.exceptions import (
    DeviceError,
    ImageDtypeError,
    ImageInputError,
    NotFittedError,
    UnknownBackboneError,
)
from sklimg.utils._sklearn_compat import InvalidParameterError

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)
# Runs that must repeat to the last digit: on CUDA, cuDNN may pick non-deterministic kernels.
EXACT = dict(FAST, device="cpu")


def test_digits_held_out_accuracy(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = ImageClassifier(max_epochs=8, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.n_classes_ == 10 and clf.input_shape_ == (8, 8, 1)
    assert clf.backbone_spec_.name == "cnn_small"
    assert len(clf.history_) == 8


def test_predict_proba_is_a_distribution(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 10) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba >= 0).all()
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)


def test_input_layouts_give_the_same_model(small_digits):
    X, y = small_digits
    reference = ImageClassifier(**EXACT).fit(X, y).predict_proba(X)
    layouts = {
        "channel axis": X[..., None],
        "flattened square": X.reshape(len(X), -1),
        "list of arrays": list(X),
    }
    for label, X_alt in layouts.items():
        proba = ImageClassifier(**EXACT).fit(X_alt, y).predict_proba(X_alt)
        np.testing.assert_allclose(proba, reference, rtol=1e-5, atol=1e-6, err_msg=label)
    flat = ImageClassifier(**EXACT, image_shape=(8, 8)).fit(X.reshape(len(X), -1), y)
    np.testing.assert_allclose(flat.predict_proba(X.reshape(len(X), -1)), reference, rtol=1e-5)


def test_uint8_images_are_scaled(small_digits):
    X, y = small_digits
    X8 = np.round(X * 255).astype(np.uint8)
    a = ImageClassifier(**FAST).fit(X8, y).predict_proba(X8)
    b = ImageClassifier(**FAST).fit(X8 / np.float32(255), y).predict_proba(X8 / np.float32(255))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_rgb_images_and_grayscale_into_rgb_backbone(small_digits):
    X, y = small_digits
    rgb = np.repeat(X[:60, :, :, None], 3, axis=-1)
    clf = ImageClassifier(**FAST).fit(rgb, y[:60])
    assert clf.input_shape_ == (8, 8, 3)
    assert clf.net_.module_.backbone[0].in_channels == 3
    # resnet18 takes RGB; grayscale digits go in as they are.
    gray = ImageClassifier(backbone="resnet18", max_epochs=1, random_state=0).fit(X[:60], y[:60])
    assert gray.net_.module_.adapter.out_chans == 3
    assert gray.predict(X[:5]).shape == (5,)
    with pytest.raises(ImageInputError, match=r"fitted on images with 1 channel\(s\) but X has 3"):
        gray.predict(rgb[:5])


def test_string_and_noncontiguous_labels(small_digits):
    X, y = small_digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf = ImageClassifier(**FAST).fit(X, names[y])
    assert set(clf.predict(X)) <= set(names)
    assert list(clf.classes_) == sorted(names)
    odd = y * 10 + 5
    clf = ImageClassifier(**FAST).fit(X, odd)
    np.testing.assert_array_equal(clf.classes_, np.arange(10) * 10 + 5)


class Features(nn.Module):
    def __init__(self, width=6):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())

    def forward(self, x):
        return self.body(x).flatten(1)


class MapFeatures(Features):
    def forward(self, x):
        return self.body(x)  # (N, D, h, w): sklimg pools it


def test_user_module_class_and_instance(small_digits):
    X, y = small_digits
    clf = ImageClassifier(Features, backbone_kwargs={"width": 5}, max_epochs=1).fit(X, y)
    assert clf.net_.module_.backbone.body[0].out_channels == 5
    assert clf.backbone_spec_.name == "Features"
    instance = Features()
    before = instance.body[0].weight.detach().clone()
    clf = ImageClassifier(instance, max_epochs=2, random_state=0).fit(X, y)
    # The instance is copied, so fitting twice starts from the same weights.
    torch.testing.assert_close(instance.body[0].weight, before)
    assert clf.score(X, y) > 0.5
    pooled = ImageClassifier(MapFeatures, max_epochs=1).fit(X, y)
    assert pooled.net_.module_.pool and pooled.net_.module_.head.in_features == 6


def test_user_module_errors_are_readable(small_digits):
    X, y = small_digits

    class Wrong(nn.Module):
        def forward(self, x):
            return nn.functional.conv2d(x, torch.zeros(4, 3, 3, 3))  # expects RGB

    with pytest.raises(ImageInputError, match=r"'Wrong' failed on a batch of shape \(2, 1, 8, 8\)"):
        ImageClassifier(Wrong, max_epochs=1).fit(X, y)

    class ThreeD(nn.Module):
        def forward(self, x):
            return x[:, 0]

    with pytest.raises(
        ImageInputError, match=r"returned \(2, 8, 8\); expected a tensor of features"
    ):
        ImageClassifier(ThreeD, max_epochs=1).fit(X, y)
    with pytest.raises(
        TypeError, match="Could not build backbone 'cnn_small' with backbone_kwargs"
    ):
        ImageClassifier(backbone_kwargs={"depth": 3}).fit(X, y)


def test_random_state_repeats_and_leaves_global_rng_alone(small_digits):
    X, y = small_digits
    state = torch.get_rng_state()
    a = ImageClassifier(**EXACT).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = ImageClassifier(**EXACT).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = ImageClassifier(**{**EXACT, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.allclose(a, c)


def test_warm_start_continues_training(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, warm_start=True).fit(X, y)
    first_loss = clf.history_[-1, "train_loss"]
    clf.fit(X, y)
    assert len(clf.history_) == 4
    assert clf.history_[-1, "train_loss"] < first_loss
    # The training parameters of the next fit apply; what defines the network stays.
    clf.set_params(max_epochs=1, lr=0.01, batch_size=32).fit(X, y)
    assert len(clf.history_) == 5
    assert clf.history_[-1, "event_lr"] == pytest.approx(0.01)
    assert len(clf.history_[-1, "batches"]) == 10  # 300 images in batches of 32
    with pytest.raises(ValueError, match=r"backbone: 'test_cnn' -> 'cnn_small'"):
        clf.set_params(backbone="cnn_small").fit(X, y)
    clf.set_params(backbone="test_cnn")
    with pytest.raises(ImageInputError, match=r"y has new labels \[99\]"):
        clf.fit(X, np.where(y == 0, 99, y))
    cold = ImageClassifier(**FAST).fit(X, y)
    cold.fit(X, y)
    assert len(cold.history_) == 2  # refit starts from scratch


def test_early_stopping_and_validation(small_digits):
    X, y = small_digits
    clf = ImageClassifier(
        backbone="test_cnn",
        max_epochs=60,
        lr=0.05,
        early_stopping=True,
        patience=2,
        random_state=0,
    ).fit(X, y)
    assert len(clf.history_) < 60
    assert "valid_loss" in clf.history_[-1] and "valid_acc" in clf.history_[-1]
    clf = ImageClassifier(**FAST, validation_fraction=0.2).fit(X, y)
    assert "valid_acc" in clf.history_[-1]
    assert "valid_acc" not in ImageClassifier(**FAST).fit(X, y).history_[-1]


def test_class_weight_reaches_the_loss(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, class_weight="balanced").fit(X, y)
    expected = compute_class_weight("balanced", classes=np.arange(10), y=y)
    np.testing.assert_allclose(clf.net_.criterion_.weight.cpu().numpy(), expected, rtol=1e-6)
    clf = ImageClassifier(**FAST, class_weight={3: 5.0}).fit(X, y)
    assert clf.net_.criterion_.weight[3] == 5.0 and clf.net_.criterion_.weight[0] == 1.0


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", torch.optim.RMSprop])
def test_optimizers(small_digits, optimizer):
    X, y = small_digits
    clf = ImageClassifier(**FAST, optimizer=optimizer, lr=0.01, weight_decay=1e-3).fit(X, y)
    expected = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    assert type(clf.net_.optimizer_) is expected.get(optimizer, optimizer)
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 1e-3


def test_lr_schedules(small_digits):
    X, y = small_digits
    cosine = ImageClassifier(**{**FAST, "max_epochs": 4}, lr=0.01).fit(X, y)
    assert cosine.net_.optimizer_.param_groups[0]["lr"] < 1e-6
    constant = ImageClassifier(**FAST, lr=0.01, lr_schedule="constant").fit(X, y)
    assert constant.net_.optimizer_.param_groups[0]["lr"] == 0.01


def test_verbose_prints_epoch_table(small_digits, capsys):
    X, y = small_digits
    ImageClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().out == ""
    ImageClassifier(**FAST, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "dur" in out
    # skorch colours each best value; captured output is not a terminal: no escapes.
    assert "\x1b[" not in out


def test_device_resolution(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, device="auto").fit(X, y)
    assert clf.net_.device == "cpu"  # the suite hides the GPU (conftest)
    with pytest.raises(DeviceError, match="Unknown device 'gpu0'"):
        ImageClassifier(**FAST, device="gpu0").fit(X, y)
    with pytest.raises(DeviceError, match="CUDA is not available.*device='auto'"):
        ImageClassifier(**FAST, device="cuda").fit(X, y)


# ------------------------------------------------------------- bad input, early
@pytest.mark.parametrize(
    ("X", "y", "error", "match"),
    [
        (np.zeros(10), np.arange(10) % 2, ImageInputError, "1 dimensions"),
        (np.zeros((10, 8, 8)), np.arange(9) % 2, ImageInputError, "10 images but y has 9 labels"),
        (np.full((4, 8, 8), np.nan), [0, 1, 0, 1], ImageInputError, "NaN or infinite"),
        (np.full((4, 8, 8), np.inf), [0, 1, 0, 1], ImageInputError, "NaN or infinite"),
        (np.full((4, 8, 8), "x", dtype=object), [0, 1, 0, 1], ImageDtypeError, "numeric"),
        (np.zeros((4, 8, 8)), [1, 1, 1, 1], ImageInputError, "single class"),
        (np.zeros((0, 8, 8)), [], ImageInputError, "empty"),
        ([np.zeros((8, 8)), np.zeros((9, 9))], [0, 1], ImageInputError, "Resize"),
        (np.zeros((4, 8, 8, 5)), [0, 1, 0, 1], ImageInputError, "5 channels"),
        (np.zeros((4, 8, 8)), [0, 1, np.nan, 1], ImageInputError, "NaN"),
        (np.zeros((4, 10)), [0, 1, 0, 1], ImageInputError, "image_shape"),
    ],
)
def test_bad_input_fails_before_training(X, y, error, match, monkeypatch):
    from sklimg._fit import neural

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(neural, "build_net", no_training)
    with pytest.raises(error, match=match):
        ImageClassifier(**FAST).fit(X, y)


def test_predict_errors(small_digits):
    X, y = small_digits
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ImageClassifier().predict(X)
    clf = ImageClassifier(**FAST).fit(X, y)
    with pytest.raises(ImageInputError, match=r"height x width \(8, 8\) but X has \(16, 16\)"):
        clf.predict(np.zeros((2, 16, 16)))
    with pytest.raises(ImageInputError, match="NaN"):
        clf.predict(np.full((2, 8, 8), np.nan))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lr": -1}, "'lr' parameter of ImageClassifier must be a float in the range"),
        ({"batch_size": 0}, "'batch_size' parameter of ImageClassifier must be an int"),
        ({"max_epochs": "ten"}, "'max_epochs' parameter of ImageClassifier must be an int"),
        ({"optimizer": "adagradx"}, "'optimizer' parameter of ImageClassifier must be"),
        ({"validation_fraction": 1.5}, "'validation_fraction' parameter"),
        ({"class_weight": "even"}, "'class_weight' parameter"),
        ({"backbone": 3}, "'backbone' parameter of ImageClassifier must be"),
        ({"lr_schedule": "linear"}, "'lr_schedule' parameter"),
        ({"input_size": 0}, "'input_size' parameter"),
    ],
)
def test_invalid_parameters(small_digits, params, match):
    X, y = small_digits
    with pytest.raises(InvalidParameterError, match=match):
        ImageClassifier(**params).fit(X, y)


def test_invalid_parameter_combinations(small_digits):
    X, y = small_digits
    with pytest.raises(UnknownBackboneError, match="Did you mean 'resnet18'"):
        ImageClassifier(backbone="resnet_18").fit(X, y)
    with pytest.raises(ValueError, match=r"input_size must be 'auto', an int or \(height, width\)"):
        ImageClassifier(input_size=(8, 8, 8)).fit(X, y)
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass"):
        ImageClassifier(optimizer=dict).fit(X, y)
    with pytest.raises(ImageInputError, match=r"labels that are not in y: \[42\]"):
        ImageClassifier(**FAST, class_weight={42: 2.0}).fit(X, y)
    with pytest.raises(ImageInputError, match=r"labels that are not in y: \['0'\]"):
        ImageClassifier(**FAST, class_weight={"0": 2.0}).fit(X, y)  # int labels
    for weight in (np.nan, np.inf, -1.0):
        with pytest.raises(ImageInputError, match="finite, non-negative numbers"):
            ImageClassifier(**FAST, class_weight={1: weight}).fit(X, y)
        with pytest.raises(ImageInputError, match="finite, non-negative numbers"):
            ImageClassifier("pixels", class_weight={1: weight}).fit(X, y)
    with pytest.raises(ImageInputError, match="stratified validation_fraction=0.1 of 12 images"):
        ImageClassifier(**FAST, early_stopping=True).fit(X[:12], y[:12])


def test_pixels_on_another_scale_at_predict_warn(small_digits):
    from sklimg.exceptions import PixelRangeWarning

    X, y = small_digits
    pixels = np.round(X * 255).astype(np.uint8)
    clf = ImageClassifier(**FAST).fit(pixels, y)
    assert clf.pixel_range_ == (0.0, 1.0)
    clf.predict(pixels)  # the same scale: silent (warnings are errors in the tests)
    clf.predict(X)  # floats in [0, 1]: what uint8 pixels become
    with pytest.warns(PixelRangeWarning, match=r"\[0, 1\] .* range over \[0, 255\]") as seen:
        clf.predict(pixels.astype(np.int64))
    assert seen[0].filename == __file__  # points at the caller's line, not sklimg's
    wide = ImageClassifier(**FAST).fit(X * 255, y)
    with pytest.warns(PixelRangeWarning, match=r"fitted on pixels in \[0, 255\]"):
        wide.predict(X)
    wide.predict(np.minimum(np.round(X * 255), 1.0))  # a dark 0-255 image: whole values
