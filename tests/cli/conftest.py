"""Fixtures of the command-line tests: folders of images, a model trained by the
command, and files it must refuse (each made once per test session)."""

import os

import joblib
import pytest
from PIL import Image

from tests.cli.cli_helpers import FAST, run, write_folder


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Training and test folders of the same three classes, different images."""
    root = tmp_path_factory.mktemp("data")
    return write_folder(root / "train"), write_folder(root / "test", seed=1)


@pytest.fixture(scope="session")
def trained(data, tmp_path_factory):
    """A model trained by the command in this process: (model path, stdout, stderr)."""
    model = tmp_path_factory.mktemp("model") / "colours.sklimg"
    code, out, err = run("train", data[0], *FAST, "--validation-fraction", "0.25", "--out", model)
    assert code == 0, err
    return model, out, err


@pytest.fixture(scope="session")
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
    write_folder(root / "fifo", n=2)
    os.mkfifo(root / "fifo" / "red" / "pipe.png")  # opening it would wait forever
    os.mkfifo(root / "pipe.sklimg")
    write_folder(root / "split" / "train", n=2)
    write_folder(root / "split" / "test", n=2, seed=1)
    write_folder(root / "nested" / "photos", n=2)
    return root
