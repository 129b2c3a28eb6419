"""``sklimg evaluate``: accuracy, the report and the pictures."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.cli.cli_helpers import CLASSES, assert_one_line_error, run, write_folder


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

    # Labels swapped, so that every image is an error: the grid with maps differs.
    swapped = tmp_path / "swapped"
    for given, wrong in zip(CLASSES, CLASSES[1:] + CLASSES[:1], strict=True):
        shutil.copytree(data[1] / given, swapped / wrong)
    plain, explained = tmp_path / "plain.png", tmp_path / "explained.png"
    assert run("evaluate", trained[0], swapped, "--errors", plain, "--n-errors", "4")[0] == 0
    code, out, err = run("evaluate", trained[0], swapped, "--errors", explained,
                         "--n-errors", "4", "--explain", "occlusion")  # fmt: skip
    assert code == 0, err
    with Image.open(plain) as a, Image.open(explained) as b:
        assert a.size == b.size and np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() > 1
    assert_one_line_error(
        *run("evaluate", trained[0], data[1], "--explain", "gradcam"), "add --errors PNG"
    )

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


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["evaluate", "{bad}/notes.txt", "{bad}/missing"], "does not exist"),
        (
            ["evaluate", "{bad}/notes.txt", "{bad}/flat", "--errors", "{bad}/no/e.png"],
            "save --errors",
        ),
        (
            ["evaluate", "{bad}/notes.txt", "{bad}/flat", "--confusion-matrix", "{bad}/cm.txt"],
            "cm.txt': pictures are saved as ",
        ),
    ],
)
def test_bad_input_fails_with_one_line(bad, args, match):
    code, out, err = run(*(a.format(bad=bad) for a in args))
    assert_one_line_error(code, out, err, match.format(bad=bad))
    assert out == ""
