"""``sklimg explain``: overlays on the images' own pixels, and the deletion test."""

import json

import numpy as np
from PIL import Image

from tests.cli.cli_helpers import CLASSES, assert_one_line_error, run


def test_explain_writes_an_overlay_per_image_and_scores_each_map(trained, data, tmp_path):
    model, _, _ = trained
    out = tmp_path / "maps"
    code, stdout, err = run("explain", model, data[1], "--out", out, "--format", "json")
    assert code == 0, err
    records = json.loads(stdout)
    assert len(records) == 3 * 8 == len(list(out.glob("*.png")))
    for record in records:
        assert record["label"] in CLASSES
        assert 0 <= record["probability"] <= 1
        assert isinstance(record["faithful"], bool)
        overlay = np.asarray(Image.open(record["overlay"]))
        assert overlay.shape == np.asarray(Image.open(record["path"])).shape  # its pixels
    code, stdout, err = run("explain", model, data[1] / "red" / "0.png", "--out", out,
                            "--method", "occlusion", "--target", "red")  # fmt: skip
    assert code == 0, err
    assert stdout.splitlines()[0].split() == [
        "path", "label", "probability", "deletion", "random", "faithful"
    ]  # fmt: skip
    assert "Overlays saved to" in stdout


def test_explain_with_tta_explains_what_predict_with_tta_answers(trained, data, tmp_path):
    model, _, _ = trained
    images = sorted((data[1] / "red").glob("*.png"))[:3]
    _, predicted, _ = run("predict", model, *images, "--tta", "flip", "--format", "json")
    code, stdout, err = run("explain", model, *images, "--out", tmp_path, "--tta", "flip",
                            "--format", "json")  # fmt: skip
    assert code == 0, err
    answers = {r["path"]: (r["label"], r["probability"]) for r in json.loads(stdout)}
    for record in json.loads(predicted):
        label, probability = answers[record["path"]]
        assert label == record["label"]
        np.testing.assert_allclose(probability, record["probability"], rtol=1e-5)


def test_explain_refuses_what_it_cannot_do(trained, data, tmp_path):
    model, _, _ = trained
    image = data[1] / "red" / "0.png"
    assert_one_line_error(
        *run("explain", model, image, "--out", tmp_path, "--target", "purple"),
        "target ['purple'] is not among the classes",
    )
    (tmp_path / "file").write_text("x")
    assert_one_line_error(
        *run("explain", model, image, "--out", tmp_path / "file"), "is a file; give a folder"
    )
