"""``sklimg predict``: the same predictions as the Python API, in three formats."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sklimg
from tests.cli.cli_helpers import CLASSES, assert_one_line_error, run


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


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["predict", "{bad}/notes.txt", "{bad}/flat"], "it is a text file"),
        (["predict", "{bad}/dict.joblib", "{bad}/flat"], "is a pickle file"),
        (["predict", "{bad}/dict.joblib.z", "{bad}/flat"], "zlib-compressed pickle"),
        (["predict", "{bad}/dict.joblib", "{bad}/flat", "--allow-pickle"], "holds a dict"),
        (["predict", "{bad}/missing.sklimg", "{bad}/flat"], "does not exist"),
        (["predict", "{bad}/flat/0.png", "{bad}/flat/1.png"], "the model comes first"),
        (["predict", "{bad}/notes.txt", "{bad}/flat/9.png"], "'{bad}/flat/9.png' does not"),
        (["predict", "{bad}/notes.txt", "{bad}/images"], "holds no image files"),
        (["predict", "{bad}/pipe.sklimg", "{bad}/flat"], "is a named pipe (FIFO), not a file"),
        (["predict", "/dev/zero", "{bad}/flat"], "is a character device, not a file"),
    ],
)
def test_bad_input_fails_with_one_line(bad, args, match):
    code, out, err = run(*(a.format(bad=bad) for a in args))
    assert_one_line_error(code, out, err, match.format(bad=bad))
    assert out == ""


@pytest.mark.parametrize("where", ["fifo/red/pipe.png", "fifo"])
def test_predict_refuses_a_pipe_given_or_in_a_folder_by_name(trained, bad, where):
    code, out, err = run("predict", trained[0], bad / where)
    assert_one_line_error(code, out, err, "pipe.png' is a named pipe (FIFO), not a regular")
