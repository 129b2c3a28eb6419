"""The sklimg command: train, predict, evaluate and backbones, end to end on image
folders written here, and one clear line for every bad input."""

import argparse
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image

import sklimg
from sklimg.cli import CommandError, build_parser, main
from sklimg.preprocessing import Resize, ToRGB

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("blue", "green", "red")
# test_cnn learns these colour classes in a few epochs; --workers 0 decodes in this
# process, which is faster than starting a worker for 24 tiny files.
FAST = ["--backbone", "test_cnn", "--epochs", "4", "--lr", "0.01", "--seed", "0"]
FAST += ["--workers", "0"]


def write_folder(root: Path, *, n=8, size=(10, 10), seed=0, classes=CLASSES) -> Path:
    """Noisy RGB images whose class is their dominant colour: root/<class>/<i>.png."""
    rng = np.random.default_rng(seed)
    for k, label in enumerate(classes):
        (root / label).mkdir(parents=True)
        for i in range(n):
            image = (rng.random((*size, 3)) * 80).astype(np.uint8)
            image[..., k % 3] += 170
            Image.fromarray(image).save(root / label / f"{i}.png")
    return root


def run(*args) -> tuple[int, str, str]:
    """``main(args)`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def run_module(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m sklimg args`` in a new process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "sklimg", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def assert_one_line_error(code, out, err, match, status=1):
    assert code == status, (out, err)
    assert err.startswith("sklimg: error: ")
    assert err.count("\n") == 1, err  # one line
    assert "Traceback" not in err
    assert match in err, err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Training and test folders of the same three classes, different images."""
    root = tmp_path_factory.mktemp("data")
    return write_folder(root / "train"), write_folder(root / "test", seed=1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A model trained by the command in this process: (model path, stdout, stderr)."""
    model = tmp_path_factory.mktemp("model") / "colours.sklimg"
    code, out, err = run("train", data[0], *FAST, "--validation-fraction", "0.25", "--out", model)
    assert code == 0, err
    return model, out, err


# ------------------------------------------------------------------------- train
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
    import sklimg.lr_finder

    seen = []
    real_find_lr = sklimg.lr_finder.find_lr

    def recording_find_lr(clf, X, y, **kwargs):
        seen.append(list(X.source))
        return real_find_lr(clf, X, y, **kwargs)

    monkeypatch.setattr(sklimg.lr_finder, "find_lr", recording_find_lr)
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


def sorted_paths(root):
    from sklimg.datasets import load_image_folder

    return list(load_image_folder(root)[0])


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
    assert_one_line_error(
        *run("predict", model, data[1], "--allow-pickle", "--tta", "flip"),
        "holds an ImageClassifier on classical features (pixels). Drop --tta",
    )
    assert_one_line_error(
        *run("train", data[0], "--backbone", "pixels", "--mix", "cutmix", "--out", model),
        "--mix changes how a network trains; backbone 'pixels' fits",
    )
    assert_one_line_error(
        *run("train", data[0], "--backbone", "pixels", "--ema-decay", "0.9", "--out", model),
        "--ema-decay changes how a network trains; backbone 'pixels' fits",
    )
    assert_one_line_error(
        *run(
            "train", data[0], "--backbone", "pixels", "--gradient-accumulation-steps", "2",
            "--out", model,
        ),
        "--gradient-accumulation-steps changes how a network trains; backbone 'pixels'",
    )  # fmt: skip
    assert_one_line_error(
        *run("train", data[0], "--backbone", "pixels", "--erasing", "0.25", "--out", model),
        "--erasing changes how a network trains; backbone 'pixels' fits",
    )


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
    assert_one_line_error(
        *run("train", data[0], *FAST, "--mix-alpha", "0.5", "--out", model),
        "--mix-alpha 0.5 sets how much --mix mixes, and --mix is none. Add --mix mixup",
    )


def test_entry_point_trains_in_a_new_process(data, tmp_path):
    model = tmp_path / "m.sklimg"
    # Default workers: images are decoded in a DataLoader worker process.
    args = ["--backbone", "test_cnn", "--epochs", "1", "--seed", "0", "-q", "--out", model]
    done = run_module("train", data[0], *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Saved the model to" in done.stdout
    assert sklimg.load(model, device="cpu").classes_.tolist() == list(CLASSES)


def test_entry_point_reports_errors_on_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model\n")
    done = run_module("predict", "notes.txt", "x.png", cwd=tmp_path)
    assert_one_line_error(done.returncode, done.stdout, done.stderr, "x.png' does not exist")


# ----------------------------------------------------------------------- predict
def read_outputs(model, *images, top_k=3):
    outputs = {}
    for fmt in ("table", "csv", "json"):
        code, out, err = run("predict", model, *images, "--format", fmt, "--top-k", top_k)
        assert code == 0, err
        outputs[fmt] = out
    return outputs


def test_predict_formats_agree_with_the_python_api(trained, data):
    model_path = trained[0]
    test_dir = data[1]
    outputs = read_outputs(model_path, test_dir / "red", test_dir / "blue" / "3.png")

    records = json.loads(outputs["json"])
    paths = [str(test_dir / "red" / f"{i}.png") for i in range(8)] + [
        str(test_dir / "blue" / "3.png")
    ]
    assert [r["path"] for r in records] == paths  # folders expanded, sorted; then the file

    model = sklimg.load(model_path, device="cpu")
    proba = model.predict_proba(paths)
    for record, row in zip(records, proba, strict=True):
        probabilities = [t["probability"] for t in record["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert probabilities == pytest.approx(np.sort(row)[::-1], abs=1e-6)
        assert record["label"] == record["top_k"][0]["label"] == model.classes_[row.argmax()]
        assert sorted(t["label"] for t in record["top_k"]) == list(CLASSES)

    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert list(rows[0]) == [
        "path",
        "label",
        "probability",
        "label_2",
        "probability_2",
        "label_3",
        "probability_3",
    ]
    for row, record in zip(rows, records, strict=True):
        assert row["path"] == record["path"] and row["label"] == record["label"]
        assert float(row["probability"]) == pytest.approx(record["probability"], abs=1e-6)
        assert row["label_3"] == record["top_k"][2]["label"]

    lines = outputs["table"].splitlines()
    assert lines[0].split() == ["path", "top", "1", "top", "2", "top", "3"]
    assert len(lines) == 2 + len(records)
    first = records[0]["top_k"][0]
    assert f"{first['label']} ({first['probability']:.3f})" in lines[2]
    # Mostly right on new images of an easy task.
    assert sum(r["label"] == "red" for r in records[:8]) >= 6


def test_predict_and_evaluate_with_tta_agree_with_the_python_api(trained, data):
    test_dir = data[1]
    code, out, err = run("predict", trained[0], test_dir, "--tta", "flip", "--format", "json")
    assert code == 0, err
    records = json.loads(out)
    paths = [r["path"] for r in records]
    model = sklimg.load(trained[0], device="cpu")
    plain = model.predict_proba(paths).max(axis=1)
    flipped = model.set_params(tta="flip").predict_proba(paths).max(axis=1)
    assert [r["probability"] for r in records] == pytest.approx(flipped, abs=1e-6)
    assert np.abs(flipped - plain).max() > 1e-4  # the option reached the model

    code, out, err = run("evaluate", trained[0], test_dir, "--tta", "flip", "--format", "json")
    assert code == 0, err
    labels = [Path(p).parent.name for p in paths]
    assert json.loads(out)["accuracy"] == pytest.approx(model.score(paths, labels))


def test_predict_default_table_and_top_k_beyond_the_classes(trained, data):
    code, out, _ = run("predict", trained[0], data[1] / "green" / "1.png")
    assert code == 0
    header, rule, row = out.splitlines()
    assert header.split() == ["path", "label", "probability"]
    assert set(rule) <= {"-", " "}
    assert row.split()[0] == str(data[1] / "green" / "1.png")
    assert 0 < float(row.split()[2]) <= 1

    code, out, _ = run(
        "predict", trained[0], data[1] / "green" / "1.png", "--top-k", "10", "--format", "json"
    )
    assert code == 0 and len(json.loads(out)[0]["top_k"]) == 3


def test_predict_searches_folders_recursively_skipping_hidden_and_other_files(trained, tmp_path):
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ("b/deeper/2.png", "b/1.JPG", "a.png", ".hidden/x.png", "b/.x.png"):
        Image.new("RGB", (10, 10), (200, 0, 0)).save(tmp_path / name, format="PNG")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    code, out, err = run("predict", trained[0], tmp_path, "--format", "csv")
    assert code == 0, err
    paths = [row["path"] for row in csv.DictReader(io.StringIO(out))]
    assert paths == [str(tmp_path / p) for p in ("a.png", "b/1.JPG", "b/deeper/2.png")]


# ---------------------------------------------------------------------- evaluate
def test_evaluate_prints_accuracy_and_report_and_saves_pictures(trained, data, tmp_path):
    cm, errors = tmp_path / "cm.png", tmp_path / "errors.png"
    code, out, err = run(
        "evaluate",
        trained[0],
        data[1],
        "--confusion-matrix",
        cm,
        "--errors",
        errors,
        "--normalize",
        "true",
    )
    assert code == 0, err
    accuracy = float(out.split("Accuracy: ")[1].split()[0])
    assert accuracy >= 0.8
    assert "of 24 images" in out
    assert "precision" in out and "recall" in out and all(c in out for c in CLASSES)
    assert f"Confusion matrix saved to {str(cm)!r}" in out
    for picture in (cm, errors):
        with Image.open(picture) as image:
            assert image.format == "PNG" and min(image.size) > 100

    code, out, _ = run("evaluate", trained[0], data[1], "--format", "json")
    assert code == 0
    summary = json.loads(out)
    assert summary["n_images"] == 24
    assert summary["accuracy"] == pytest.approx(summary["n_correct"] / 24)
    assert summary["accuracy"] == pytest.approx(accuracy, abs=1e-3)
    counts = np.array(summary["confusion_matrix"]["counts"])
    assert summary["confusion_matrix"]["labels"] == list(CLASSES)
    assert counts.sum() == 24 and np.trace(counts) == summary["n_correct"]
    assert summary["report"]["red"]["support"] == 8


def test_evaluate_warns_about_classes_the_model_never_saw(trained, tmp_path):
    root = write_folder(tmp_path / "data", n=2, classes=("red", "purple"))
    code, out, err = run("evaluate", trained[0], root, "--format", "json")
    assert code == 0
    assert err.startswith("sklimg: warning: ") and "['purple']" in err
    summary = json.loads(out)
    assert summary["confusion_matrix"]["labels"] == [*CLASSES, "purple"]
    assert summary["report"]["purple"]["recall"] == 0


# --------------------------------------------------------------------- backbones
def test_backbones_table_and_json():
    code, out, _ = run("backbones")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    resnet18 = next(line for line in lines if line.startswith("resnet18 "))
    assert "224x224" in resnet18 and "512" in resnet18 and "ImageNet (torchvision)" in resnet18

    code, out, _ = run("backbones", "--pattern", "*cnn*", "--format", "json")
    assert code == 0
    records = json.loads(out)
    assert [r["name"] for r in records] == ["cnn_small", "test_cnn"]
    assert records[1] == {
        "name": "test_cnn",
        "kind": "deep",
        "input_size": None,
        "feature_dim": 16,
        "pretrained_weights": None,
        "description": sklimg.backbones.get_backbone("test_cnn").description,
    }


# -------------------------------------------------------------------------- help
def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **action.choices}


@pytest.mark.parametrize("command", list(subcommands()))
def test_help_documents_every_option_with_its_default_and_examples(command):
    parser = subcommands()[command]
    code, out, _ = run(*([command] if command else []), "--help")
    assert code == 0
    assert "examples:" in out and f"sklimg {command}".strip() in out.split("examples:")[1]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert all(name in out for name in action.choices)
            continue
        names = action.option_strings or [action.metavar]
        assert all(name in out for name in names), names
        if action.option_strings and action.dest not in ("help", "version"):
            assert "(default: " in action.help, action.dest


def test_version():
    code, out, _ = run("--version")
    assert (code, out) == (0, f"sklimg {sklimg.__version__}\n")


# ------------------------------------------------------------------ bad inputs
@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """Folders and files that the command must refuse."""
    root = tmp_path_factory.mktemp("bad")
    (root / "empty").mkdir()
    (root / "no_images" / "cat").mkdir(parents=True)
    (root / "no_images" / "cat" / "notes.txt").write_text("text")
    (root / "flat").mkdir()
    for i in range(2):
        Image.new("RGB", (8, 8)).save(root / "flat" / f"{i}.png")
    write_folder(root / "mixed", n=2)
    Image.new("RGB", (16, 12)).save(root / "mixed" / "red" / "big.png")
    write_folder(root / "corrupt", n=2)
    (root / "corrupt" / "red" / "broken.png").write_bytes(b"\x89PNG not really")
    write_folder(root / "tiny", n=2)
    (root / "notes.txt").write_text("hello\n")
    joblib.dump({"a": 1}, root / "dict.joblib")
    joblib.dump({"a": 1}, root / "dict.joblib.z", compress=3)
    (root / "images").mkdir()
    (root / "images" / "readme.md").write_text("no images here")
    return root


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
        (["train", "{bad}/flat", "--backbone", "hog"], "--format joblib"),
        (["train", "{bad}/flat", "--backbone", "hog", "--lr", "find"], "--lr find tunes a"),
        (["train", "{bad}/flat", "--out", "{bad}/nowhere/m.sklimg"], "'{bad}/nowhere' does not"),
        (["train", "{bad}/flat", "--out", "{bad}/empty"], "is a folder"),
        (["predict", "{bad}/notes.txt", "{bad}/flat"], "it is a text file"),
        (["predict", "{bad}/dict.joblib", "{bad}/flat"], "is a pickle file"),
        (["predict", "{bad}/dict.joblib.z", "{bad}/flat"], "zlib-compressed pickle"),
        (["predict", "{bad}/dict.joblib", "{bad}/flat", "--allow-pickle"], "holds a dict"),
        (["predict", "{bad}/missing.sklimg", "{bad}/flat"], "does not exist"),
        (["predict", "{bad}/flat/0.png", "{bad}/flat/1.png"], "the model comes first"),
        (["predict", "{bad}/notes.txt", "{bad}/flat/9.png"], "'{bad}/flat/9.png' does not"),
        (["predict", "{bad}/notes.txt", "{bad}/images"], "holds no image files"),
        (["evaluate", "{bad}/notes.txt", "{bad}/missing"], "does not exist"),
        (
            ["evaluate", "{bad}/notes.txt", "{bad}/flat", "--errors", "{bad}/no/e.png"],
            "save --errors",
        ),
        (
            ["evaluate", "{bad}/notes.txt", "{bad}/flat", "--confusion-matrix", "{bad}/cm.txt"],
            "cm.txt': pictures are saved as ",
        ),
        (["backbones", "--pattern", "nothing*"], "No backbone name matches 'nothing*'"),
    ],
)
def test_bad_input_fails_with_one_line(bad, args, match):
    code, out, err = run(*(a.format(bad=bad) for a in args))
    assert_one_line_error(code, out, err, match.format(bad=bad))
    assert out == ""


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "d", "--epochs", "ten"], "--epochs: expected a positive integer, got 'ten'"),
        (["train", "d", "--epochs", "0"], "got '0'"),
        (["train", "d", "--lr", "-1"], "--lr: expected a positive number or 'find'"),
        (["train", "d", "--lr", "fast"], "got 'fast'"),
        (["train", "d", "--validation-fraction", "1"], "strictly between 0 and 1"),
        (["train", "d", "--image-size", "64x"], "HEIGHTxWIDTH"),
        (["train", "d", "--image-size", "100000"], "at most 100,000,000"),
        (["train", "d", "--augment", "wild"], "invalid choice: 'wild'"),
        (["train", "d", "--mix", "blend"], "invalid choice: 'blend'"),
        (["train", "d", "--mix-alpha", "0"], "--mix-alpha: expected a positive number"),
        (["train", "d", "--ema-decay", "1"], "--ema-decay: expected a fraction strictly"),
        (["train", "d", "--gradient-accumulation-steps", "0"], "got '0'"),
        (["train", "d", "--erasing", "0"], "--erasing: expected a probability above 0"),
        (["train", "d", "--erasing", "1.5"], "at most 1 (e.g. 0.25), got '1.5'"),
        (["train", "d", "-v", "-q"], "not allowed with argument"),
        (["predict", "m.sklimg"], "required: IMAGE_OR_DIR"),
        (["predict", "m", "x.png", "--format", "xml"], "invalid choice: 'xml'"),
        (["fit", "d"], "invalid choice: 'fit'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_command_line_fails_with_one_line_and_status_2(args, match):
    code, out, err = run(*args)
    assert_one_line_error(code, out, err, match, status=2)
    assert "--help' )" not in err and "--help')" in err


def test_debug_shows_the_error_itself(bad):
    with pytest.raises(CommandError, match="text file"):
        main(["predict", str(bad / "notes.txt"), str(bad / "flat"), "--debug"])
    with pytest.raises(CommandError, match="text file"):
        main(["--debug", "predict", str(bad / "notes.txt"), str(bad / "flat")])
