"""``sklimg train``: training from a folder, saving safely, and the settings it refuses
or warns about, worded in its flags."""

import errno
import json
import re
import tempfile
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image

import sklimg
from sklimg import ImageClassifier
from sklimg.cli import train
from sklimg.preprocessing import Resize, ToRGB
from tests.cli.cli_helpers import (
    CLASSES,
    FAST,
    assert_one_line_error,
    run,
    sorted_paths,
    write_folder,
)


def test_train_shows_epochs_saves_safely_and_reports_held_out_accuracy(trained):
    model_path, out, err = trained
    assert err == ""
    assert "Training test_cnn on 24 images of 3 classes (blue, green, red)" in out
    assert "10x10 RGB, 4 epochs" in out
    assert "train_loss" in out and "valid_acc" in out  # skorch's table per epoch
    assert f"Saved the model to {str(model_path)!r} (the safe sklimg format)" in out
    held_out = out.split("Held-out accuracy: ")[1]
    accuracy, n_held_out = float(held_out.split()[0]), int(held_out.split()[2])
    assert n_held_out == 6  # 25% of 24, stratified
    assert accuracy >= 0.8  # an easy task: chance is 1/3

    model = sklimg.load(model_path, device="cpu")
    assert model.sklimg_metadata_ == {"image_size": [10, 10]}
    assert model.classes_.tolist() == list(CLASSES)
    assert model.input_shape_ == (10, 10, 3)
    assert len(model.history_) == 4


@pytest.mark.filterwarnings("always:The loss")  # shown by the command, on one line
def test_train_finds_the_learning_rate_on_the_training_images(data, tmp_path, monkeypatch):
    import sklimg.cli.train

    seen = []
    real_find_lr = sklimg.cli.train.find_lr

    def recording_find_lr(clf, X, y, **kwargs):
        seen.append(list(X.source))
        return real_find_lr(clf, X, y, **kwargs)

    monkeypatch.setattr(sklimg.cli.train, "find_lr", recording_find_lr)
    out_path = tmp_path / "m.joblib"  # a pickle keeps the net's validation split
    args = ["--validation-fraction", "0.25", "--out", out_path, "--format", "joblib"]
    code, out, err = run("train", data[0], *FAST, "--lr", "find", *args)
    assert code == 0, err
    # 18 images: a curve the range test may warn about, as a one-line warning.
    assert all(line.startswith("sklimg: warning: The loss") for line in err.splitlines())
    found = re.search(r"range test on 18 training images \(\d+ steps\): lr ([\d.e+-]+)\.", out)
    assert found, out
    model = joblib.load(out_path)
    assert model.lr == pytest.approx(float(found.group(1)), rel=1e-2)
    # The range test saw the training images only, none of the held-out ones.
    trained_on = set(seen[0])
    y_encoded = np.searchsorted(
        model.classes_, [Path(p).parent.name for p in sorted_paths(data[0])]
    )
    _, valid = model.net_.get_split_datasets(np.zeros((len(y_encoded), 1), "float32"), y_encoded)
    held_out = {sorted_paths(data[0])[i] for i in valid.indices}
    assert len(trained_on) == 18 and not trained_on & held_out


def test_train_progress_bar_and_quiet(data, tmp_path):
    code, out, err = run("train", data[0], *FAST, "--epochs", "1", "-v", "--out", tmp_path / "m")
    assert code == 0
    assert "train_loss" in out
    assert "it/s" in err or "%|" in err  # tqdm's bar, on stderr

    code, out, err = run("train", data[0], *FAST, "--epochs", "1", "-q", "--out", tmp_path / "m")
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"Saved the model to {str(tmp_path / 'm')!r} (the safe sklimg format)."
    ]


def test_train_resizes_mixed_sizes_and_channels_with_image_size(tmp_path):
    root = tmp_path / "mixed"
    write_folder(root, n=3, size=(12, 10))
    Image.new("RGB", (30, 20), (0, 0, 255)).save(root / "blue" / "wide.png")
    Image.new("L", (10, 12), 40).save(root / "red" / "gray.png")  # grayscale file
    code, out, err = run(
        "train", root, *FAST, "--epochs", "1", "--image-size", "8x6", "--out", tmp_path / "m.sklimg"
    )
    assert code == 0, err
    assert "8x6 RGB" in out
    model = sklimg.load(tmp_path / "m.sklimg", device="cpu")
    assert model.input_shape_ == (8, 6, 3)
    assert model.sklimg_metadata_ == {"image_size": [8, 6]}

    # Predict resizes to the recorded size and converts grayscale to the model's RGB.
    gray = root / "red" / "gray.png"
    code, out, _ = run("predict", tmp_path / "m.sklimg", gray, "--format", "json")
    assert code == 0
    expected = model.predict_proba(ToRGB().fit_transform(Resize((8, 6)).fit_transform([gray])))
    record = json.loads(out)[0]
    assert record["probability"] == pytest.approx(expected.max(), abs=1e-6)
    assert record["label"] == model.classes_[expected.argmax()]


def test_train_classical_backbone_in_the_safe_format(data, tmp_path):
    model = tmp_path / "pixels.sklimg"
    options = ["--validation-fraction", "0.25", "--seed", "0"]
    code, out, err = run("train", data[0], "--backbone", "pixels", *options, "--out", model)
    assert code == 0, err
    assert "the safe sklimg format" in out
    code, out, err = run("predict", model, data[1] / "red" / "0.png", "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["label"] == "red"
    assert sklimg.load(model).head_ is not None


def test_train_classical_backbone_with_joblib_format(data, tmp_path):
    model = tmp_path / "pixels.joblib"
    options = ["--format", "joblib", "--validation-fraction", "0.25", "--seed", "0"]
    code, out, err = run("train", data[0], "--backbone", "pixels", *options, "--out", model)
    assert code == 0, err
    assert "joblib format" in out and "--allow-pickle" in out
    assert float(out.split("Held-out accuracy: ")[1].split()[0]) >= 0.8

    code, out, err = run("predict", model, data[1] / "red" / "0.png", "--allow-pickle")
    assert code == 0, err
    assert out.splitlines()[2].split()[1] == "red"
    assert_one_line_error(*run("predict", model, data[1]), "--allow-pickle")
    # The refusals of the Python API, worded in the command's flags.
    assert_one_line_error(
        *run("predict", model, data[1], "--allow-pickle", "--tta", "flip"),
        "--tta flip averages a network's outputs over views of each image; the classical "
        "backbone 'pixels' has no network. Leave --tta out.",
    )
    network_fix = "--backbone pixels fits a scikit-learn head on fixed features, once. Use "
    network_fix += "--backbone cnn_small, or leave"
    assert_one_line_error(
        *run("train", data[0], "--backbone", "pixels", "--mix", "cutmix", "--out", model),
        f"--mix cutmix blends images and labels in the batches a neural head trains on; "
        f"{network_fix} --mix out.",
    )
    assert_one_line_error(
        *run("train", data[0], "--backbone", "pixels", "--ema-decay", "0.9", "--out", model),
        f"--ema-decay 0.9 averages the weights of a network as it trains; {network_fix} "
        f"--ema-decay out.",
    )
    assert_one_line_error(
        *run(
            "train", data[0], "--backbone", "pixels", "--gradient-accumulation-steps", "2",
            "--out", model,
        ),
        f"--gradient-accumulation-steps 2 sums the gradients of a neural head's batches; "
        f"{network_fix} --gradient-accumulation-steps out.",
    )  # fmt: skip
    assert_one_line_error(
        *run("train", data[0], "--backbone", "pixels", "--erasing", "0.25", "--out", model),
        f"--erasing 0.25 needs a neural head, which sees new augmented images every epoch; "
        f"{network_fix} --erasing out.",
    )
    assert_one_line_error(
        *run(
            "train", data[0], "--backbone", "pixels", "--augment", "light", "--erasing", "0.25",
            "--out", model,
        ),
        "--augment light --erasing 0.25 needs a neural head, which sees new augmented "
        f"images every epoch; {network_fix} --augment and --erasing out.",
    )  # fmt: skip
    for code, out, err in (
        run("train", data[0], "--backbone", "pixels", "--augment", "light", "--out", model),
        run("train", data[0], "--backbone", "hog", "--lr", "find", "--out", model),
    ):
        assert_one_line_error(code, out, err, "--backbone cnn_small")
        assert "head=None" not in err and "=" not in err  # no Python in the advice


def test_train_mixes_batches(data, tmp_path):
    model = tmp_path / "mixed.sklimg"
    code, _, err = run("train", data[0], *FAST, "--mix", "mixup", "--out", model, "-q")
    assert code == 0, err
    assert sklimg.load(model).mix == "mixup"
    code, _, err = run("train", data[0], *FAST, "--mix", "none", "--out", model, "-q")
    assert code == 0, err
    assert sklimg.load(model).mix is None
    options = ["--mix", "cutmix", "--mix-alpha", "0.5", "--ema-decay", "0.9"]
    options += ["--gradient-accumulation-steps", "2", "--augment", "light", "--erasing", "0.25"]
    code, _, err = run("train", data[0], *FAST, *options, "--out", model, "-q")
    assert code == 0, err
    loaded = sklimg.load(model)
    assert (loaded.mix, loaded.mix_alpha, loaded.ema_decay) == ("cutmix", 0.5, 0.9)
    assert loaded.gradient_accumulation_steps == 2
    assert (loaded.augment.policy, loaded.augment.erasing) == ("light", 0.25)
    code, _, err = run("train", data[0], *FAST, "--erasing", "1", "--out", model, "-q")
    assert code == 0, err
    assert (sklimg.load(model).augment.policy, sklimg.load(model).augment.erasing) == ("none", 1)
    # A setting that does nothing: warned of, as in Python, in the command's flags.
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code, _, err = run("train", data[0], *FAST, "--mix-alpha", "0.5", "--out", model, "-q")
    assert code == 0, err
    assert err == (
        "sklimg: warning: --mix-alpha 0.5 has no effect without --mix (MixUp or CutMix). "
        "Use --mix mixup, or leave --mix-alpha out.\n"
    )


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "{bad}/missing"], "'{bad}/missing' does not exist"),
        (["train", "{bad}/empty"], "has no class folders"),
        (["train", "{bad}/no_images"], "Class folders without images"),
        (["train", "{bad}/flat"], "2 images directly in it"),
        (["train", "{bad}/mixed"], "differ in size (2 sizes among 7 images)"),
        (["train", "{bad}/mixed"], "Pass --image-size"),
        (["train", "{bad}/corrupt"], "broken.png"),
        (
            ["train", "{bad}/tiny", "--validation-fraction", "0.2"],
            "stratified --validation-fraction 0.2 of 6 images",
        ),
        (
            ["train", "{bad}/tiny", "--validation-fraction", "0.2"],
            "leave --validation-fraction out",
        ),
        (["train", "{bad}/flat", "--backbone", "resnet19"], "Did you mean 'resnet18'"),
        (
            ["train", "{bad}/flat", "--backbone", "hog", "--lr", "find"],
            "--lr find tunes the learning rate of a neural head",
        ),
        (["train", "{bad}/flat", "--out", "{bad}/nowhere/m.sklimg"], "'{bad}/nowhere' does not"),
        (["train", "{bad}/flat", "--out", "{bad}/empty"], "is a folder"),
        (["train", "{bad}/flat", "--out", "/sys/m.sklimg"], "no file can be created in '/sys'"),
        (["train", "{bad}/flat", "--out", "{bad}/pipe.sklimg"], "it is a named pipe (FIFO)"),
        (["train", "{bad}/fifo"], "pipe.png' is a named pipe (FIFO), not a regular image"),
        (["train", "{bad}/split"], "holds the splits ['test', 'train'] of a dataset"),
        (["train", "{bad}/split"], "Pass one split's folder, e.g. '{bad}/split/train'"),
        (["train", "{bad}/nested"], "single folder, 'photos'"),
        (
            ["train", "{bad}/flat", "--device", "cuda"],  # the tests hide any GPU
            "--device cuda but CUDA is not available on this machine (--device auto takes a "
            "GPU only where there is one). Use --device cpu, or use --device auto.",
        ),
    ],
)
def test_bad_input_fails_with_one_line(bad, args, match):
    code, out, err = run(*(a.format(bad=bad) for a in args))
    assert_one_line_error(code, out, err, match.format(bad=bad))
    assert out == ""


@pytest.mark.parametrize(
    ("options", "params"),
    [
        (["--mix", "cutmix"], {"mix": "cutmix"}),
        (["--ema-decay", "0.9"], {"ema_decay": 0.9}),
        (["--gradient-accumulation-steps", "2"], {"gradient_accumulation_steps": 2}),
        (["--augment", "light"], {"augment": "light"}),
        (["--lr", "find"], {}),
    ],
)
def test_train_refuses_what_python_refuses_in_its_own_flags(data, tmp_path, options, params):
    """One decision: the refusal of the Python API, worded in the command's flags."""
    from sklimg._statements import Refusal
    from sklimg.cli import build_parser
    from sklimg.cli.train import flags
    from sklimg.lr_finder import find_lr

    X, y = np.zeros((4, 8, 8), np.float32), np.arange(4) % 2
    with pytest.raises(Refusal) as python:
        if options[0] == "--lr":
            find_lr(ImageClassifier("pixels"), X, y)
        else:
            ImageClassifier("pixels", **params).fit(X, y)
    args = ["train", str(data[0]), "--backbone", "pixels", *options, "--out", tmp_path / "m"]
    code, out, err = run(*args)
    worded = python.value.worded(flags(build_parser().parse_args(list(map(str, args)))))
    assert err == f"sklimg: error: {worded}\n"
    assert_one_line_error(code, out, err, "--backbone cnn_small")
    assert "=" not in err  # nothing in Python's terms


def test_a_trained_model_is_kept_when_its_destination_fails_late(data, tmp_path, monkeypatch):
    """The disk fills up (or the folder goes away) during training: the model is saved
    in the temporary folder, the command says where and fails."""
    out = tmp_path / "m.sklimg"
    real_save = train.save

    def save_on_a_full_disk(model, path, **kwargs):
        if Path(path) == out:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(model, path, **kwargs)

    monkeypatch.setattr(train, "save", save_on_a_full_disk)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    (tmp_path / "temporary").mkdir()
    code, _, err = run("train", data[0], *FAST, "--out", out, "-q")
    assert code == 1 and not out.exists()
    assert f"could not write '{out}'" in err and "No space left on device" in err
    kept = next((tmp_path / "temporary").glob("m-*.sklimg"))
    assert f"the trained model is saved to '{kept}' instead" in err
    assert sklimg.load(kept).predict(sorted_paths(data[1])[:2]).shape == (2,)


def test_calibration_and_the_unknown_answer_from_the_command_line(data, tmp_path):
    model = tmp_path / "m.sklimg"
    options = ["--calibration", "temperature", "--unknown", "knn", "--unknown-rate", "0.1"]
    code, out, err = run("train", data[0], "--backbone", "pixels", *options, "--out", model)
    assert code == 0, err
    clf = sklimg.load(model)
    assert clf.temperature_ > 0 and clf.unknown_label_ == "unknown"
    # A white image is unlike every coloured training image.
    white = tmp_path / "white.png"
    Image.fromarray(np.full((10, 10, 3), 255, np.uint8)).save(white)
    code, out, err = run("predict", model, data[1], white, "--format", "json")
    assert code == 0, err
    records = {Path(r["path"]).name: r for r in json.loads(out)}
    assert records["white.png"]["label"] == "unknown" and records["white.png"]["unknown"]
    known = [r for name, r in records.items() if name != "white.png"]
    assert sum(r["unknown"] for r in known) <= len(known) // 2
    assert all(r["unknown_score"] >= 0 for r in records.values())
    code, out, err = run("predict", model, white)
    assert code == 0 and out.splitlines()[2].split()[1] == "unknown"
    plot = tmp_path / "cal.png"
    code, out, err = run("evaluate", model, data[1], "--calibration-plot", plot)
    assert code == 0, err
    assert "Expected calibration error (15 bins): 0." in out and "before its temperature" in out
    assert plot.stat().st_size > 0


def test_an_unknown_label_that_is_a_class_is_refused_in_flags(data, tmp_path):
    options = ["--unknown", "knn", "--unknown-label", "red", "--out", tmp_path / "m.sklimg"]
    code, _, err = run("train", data[0], "--backbone", "pixels", *options)
    assert code != 0
    assert "--unknown-label red is one of the classes" in err
