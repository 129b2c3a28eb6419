"""``sklimg audit``: a mislabelled image, a copy and a test-set leak in a class folder,
the CSV, the summary and the picture; bad options refused in the command's terms."""

import shutil

import pandas as pd
import pytest
from PIL import Image

from tests.cli.cli_helpers import assert_one_line_error, run, write_folder

# Pixels and the default logistic regression tell the colour classes apart at once.
FAST = ["--backbone", "pixels", "--cv", "4"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A folder of colour classes with a red image filed as blue, a copy of a green
    image, and a test folder holding a red training image."""
    root = tmp_path_factory.mktemp("audit")
    data = write_folder(root / "data", n=10, size=(16, 16))
    shutil.copy(data / "red" / "0.png", data / "blue" / "wrong.png")
    shutil.copy(data / "green" / "3.png", data / "green" / "copy.png")
    test = write_folder(root / "test", n=2, size=(16, 16), seed=5)
    shutil.copy(data / "red" / "4.png", test / "red" / "leak.png")
    return data, test


def test_audit_finds_the_wrong_label_the_copy_and_the_leak(planted, tmp_path):
    data, test = planted
    out, picture = tmp_path / "audit.csv", tmp_path / "issues.png"
    code, stdout, err = run(
        "audit", data, *FAST, "--test-dir", test, "--out", out, "--plot", picture, "-q"
    )
    assert code == 0, err
    report = pd.read_csv(out, index_col="index")
    assert len(report) == 32
    by_file = report.set_index(report["path"].map(lambda p: "/".join(p.split("/")[-2:])))
    wrong = by_file.loc["blue/wrong.png"]
    assert bool(wrong["label_issue"]) and wrong["suggested_label"] == "red"
    assert by_file["label_issue"].sum() <= 2

    # A copy names the earlier image by its index (files are read in sorted order).
    def index_of(name):
        return report.index[by_file.index.get_loc(name)]

    assert by_file.loc["green/copy.png", "duplicate_of"] == index_of("green/3.png")
    assert by_file.loc["red/0.png", "duplicate_of"] == index_of("blue/wrong.png")
    assert by_file["duplicate_of"].notna().sum() == 2
    # The image also in the test folder crosses the split.
    assert bool(by_file.loc["red/4.png", "crosses_split"])
    assert by_file["crosses_split"].sum() == 1
    assert "label issues: " in stdout and "duplicates across the split: 1" in stdout
    assert f"written to {str(out)!r}" in stdout
    with Image.open(picture) as image:
        assert image.format == "PNG" and min(image.size) > 100
    assert "audit folds" not in err  # -q: no progress bar


def test_audit_shows_a_progress_bar_over_the_folds(planted, tmp_path):
    code, _, err = run("audit", planted[0], *FAST, "--out", tmp_path / "a.csv")
    assert code == 0, err
    assert "audit folds" in err and "4/4" in err


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (["--cv", "12"], "has 10 images, fewer than --cv 12 folds"),
        (["--cv", "1"], "--cv must be at least 2"),
        (["--out", "missing/audit.csv"], "Cannot write --out"),
        (["--plot", "issues.nope"], "Cannot save --plot"),
        (["--test-dir", "nowhere"], "--test-dir 'nowhere' is not a folder"),
        (["--backbone", "resnet81"], "Unknown backbone 'resnet81'"),
    ],
)
def test_bad_options_fail_in_the_command_s_terms(planted, tmp_path, options, match):
    code, out, err = run("audit", planted[0], "--backbone", "pixels", *options)
    assert_one_line_error(code, out, err, match)


def test_a_single_class_is_refused(tmp_path):
    data = write_folder(tmp_path / "one", n=6, classes=("red",))
    code, out, err = run("audit", data, "--backbone", "pixels")
    assert_one_line_error(code, out, err, "holds a single class")
