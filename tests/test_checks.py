"""The checks no parameter constraint can express (sklimg._fit.checks): refusals and
warnings worded for Python and, from the same statement, for the command line."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from skorch.callbacks import EpochScoring

from sklimg import ImageClassifier
from sklimg._fit.checks import check_head_route, network_warnings
from sklimg._statements import Refusal, SettingWarning
from sklimg.backbones import resolve_backbone
from sklimg.cli._flags import Flags
from sklimg.exceptions import ImageInputError

FAST = dict(backbone="test_cnn", max_epochs=1, random_state=0)
CLI = Flags({"mix": "--mix", "backbone": "--backbone", "validation_fraction": "--val"})


def test_a_refusal_is_one_statement_worded_for_each_audience():
    refusal = Refusal(
        "{mix} blends images; {backbone} has none.",
        {"mix": "cutmix", "backbone": "hog"},
        [{"head": None}, {"backbone": "cnn_small"}, {"mix": None}],
    )
    assert isinstance(refusal, ValueError)
    assert str(refusal) == (
        "mix='cutmix' blends images; backbone='hog' has none. Use head=None, or "
        "backbone='cnn_small', or mix=None."
    )
    # The command line has no head: that fix is left out; the others use its flags.
    assert refusal.worded(CLI) == (
        "--mix cutmix blends images; --backbone hog has none. Use --backbone cnn_small, or "
        "leave --mix out."
    )


def test_fixes_can_stand_inside_the_statement_and_settings_be_named():
    refusal = Refusal(
        "Hold out less than {validation_fraction}, use a larger {validation_fraction_name}, "
        "or {fixes}.",
        {"validation_fraction": 0.5},
        [{"validation_fraction": None, "early_stopping": False}],
    )
    assert str(refusal) == (
        "Hold out less than validation_fraction=0.5, use a larger validation_fraction, or "
        "validation_fraction=None and early_stopping=False."
    )
    # early_stopping is never on in this command: nothing to say about it.
    cli = Flags({"validation_fraction": "--val"}, fixed={"early_stopping": False})
    assert refusal.worded(cli) == (
        "Hold out less than --val 0.5, use a larger --val, or leave --val out."
    )


@pytest.mark.parametrize(
    ("setting", "what"),
    [
        ({"augment": "light"}, "augment='light' needs a neural head"),
        ({"ema_decay": 0.9}, "ema_decay=0.9 averages the weights"),
        ({"mix": "mixup"}, "mix='mixup' blends images"),
        ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps=2 sums the grad"),
    ],
)
def test_network_settings_are_refused_with_the_fix_that_applies(setting, what):
    # The user's own head: dropping it gives a neural head.
    own = ImageClassifier("test_cnn", head=LogisticRegression(), **setting)
    with pytest.raises(Refusal, match=f"{what}.*a scikit-learn head.*Use head=None, or"):
        check_head_route(own, resolve_backbone(own.backbone))
    # A classical backbone: head=None would change nothing; a deep backbone does.
    classical = ImageClassifier("hog", **setting)
    with pytest.raises(Refusal) as refused:
        check_head_route(classical, resolve_backbone("hog"))
    assert "backbone='hog' fits a scikit-learn head" in str(refused.value)
    assert "Use backbone='cnn_small', or" in str(refused.value)
    assert "head=None" not in str(refused.value)


def test_a_setting_that_does_nothing_warns_in_either_wording(small_digits):
    X, y = small_digits
    with pytest.warns(SettingWarning) as caught:
        ImageClassifier(**FAST, mix_alpha=0.4).fit(X[:64], y[:64])
    (warning,) = caught
    assert str(warning.message) == (
        "mix_alpha=0.4 has no effect without mix (MixUp or CutMix). Use mix='mixup', or "
        "mix_alpha=None."
    )
    assert warning.filename == __file__  # the user's line, not sklimg's
    cli = Flags({"mix": "--mix", "mix_alpha": "--mix-alpha"})
    assert warning.message.worded(cli) == (
        "--mix-alpha 0.4 has no effect without --mix (MixUp or CutMix). Use --mix mixup, "
        "or leave --mix-alpha out."
    )


def test_compile_on_the_cpu_warns_before_anything_compiles():
    # Three images cannot be split for validation: the fit stops right after the
    # warnings, before any network is compiled.
    X, y = np.zeros((3, 8, 8), np.float32), np.arange(3)
    clf = ImageClassifier(**FAST, compile=True, device="cpu", validation_fraction=0.5)
    with (
        pytest.warns(UserWarning, match="compile=True on the CPU: torch.compile spends"),
        pytest.raises(ImageInputError, match="Cannot hold out"),
    ):
        clf.fit(X, y)


def test_scoring_callbacks_of_a_split_that_is_not_there_warn(small_digits):
    X, y = small_digits
    f1 = EpochScoring("f1_macro", lower_is_better=False)
    with pytest.warns(UserWarning, match=r"EpochScoring\('f1_macro'\) scores the validation"):
        clf = ImageClassifier(**FAST, callbacks=[f1]).fit(X, y)
    assert "f1_macro" not in clf.history_[-1]  # what skorch does without a split
    # Scored where there are images to score.
    held_out = EpochScoring("f1_macro", lower_is_better=False)
    clf = ImageClassifier(**FAST, callbacks=[held_out], validation_fraction=0.2).fit(X, y)
    assert 0 <= clf.history_[-1, "f1_macro"] <= 1
    on_train = EpochScoring("f1_macro", lower_is_better=False, on_train=True)
    clf = ImageClassifier(**FAST, callbacks=[on_train]).fit(X, y)
    assert 0 <= clf.history_[-1, "f1_macro"] <= 1


def test_network_warnings_say_nothing_for_sound_settings(recwarn):
    network_warnings(ImageClassifier(**FAST, mix="mixup", mix_alpha=0.4), "cpu", validates=False)
    network_warnings(ImageClassifier(**FAST, compile=True), "cuda", validates=False)
    assert not recwarn.list
