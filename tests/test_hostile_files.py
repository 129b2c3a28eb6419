"""Hostile and broken files, folders and model files: each is refused by name before
anything blocks, fills the memory or predicts nonsense (the catalogue of bad
parameters and arrays is test_bad_inputs.py; faults during work, test_faults.py)."""

import json
import os
import re
import socket
import threading
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import sklimg
from sklimg import ImageClassifier
from sklimg._lazy import sample_images
from sklimg.datasets import load_image_folder
from sklimg.exceptions import (
    ImageInputError,
    InsufficientMemoryError,
    ModelFileError,
    PixelRangeWarning,
)
from sklimg.io import check_image_file, decoded_shape, read_image
from sklimg.preprocessing import LoadImages

FAST = dict(backbone="test_cnn", max_epochs=1, random_state=0)


def within(seconds, call):
    """``call()``'s exception, or a failure if it did not return in time (a hang)."""
    outcome = []

    def target():
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        pytest.fail(f"still running after {seconds} s: it blocks")
    return outcome[0]


def write_images(folder, n=12, size=(8, 8), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(paths[-1])
    return paths


def special(kind, tmp_path, suffix=".png"):
    """A path that is not a regular file, named like an image (or ``suffix``)."""
    path = tmp_path / f"{kind}{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()  # the socket file stays
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "null":
        path = "/dev/null"
    return str(path)


KINDS = {
    "fifo": "a named pipe",
    "socket": "a socket",
    "zero": "a character device",
    "null": "a character device",
}


# ------------------------------------------------------------------ not regular files
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", [read_image, check_image_file, decoded_shape])
def test_readers_refuse_what_is_not_a_regular_file(tmp_path, kind, reader):
    path = special(kind, tmp_path)
    error = within(10, lambda: reader(path))
    assert isinstance(error, ImageInputError), error
    assert repr(path) in str(error) and KINDS[kind] in str(error)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_fit_and_predict_refuse_a_pipe_among_good_files(tmp_path, kind):
    paths = write_images(tmp_path / "good")
    bad = special(kind, tmp_path)
    y = np.arange(13) % 2
    error = within(60, lambda: ImageClassifier(**FAST).fit([*paths, bad], y))
    assert isinstance(error, ImageInputError) and repr(bad) in str(error), error
    clf = ImageClassifier(**FAST).fit(paths, y[:12])
    error = within(60, lambda: clf.predict([paths[0], bad]))
    assert isinstance(error, ImageInputError) and KINDS[kind] in str(error), error


def test_a_folder_with_a_pipe_inside_is_refused_by_name(tmp_path):
    for label in ("a", "b"):
        write_images(tmp_path / "data" / label, n=4)
    os.mkfifo(tmp_path / "data" / "b" / "pipe.png")
    paths, labels = load_image_folder(tmp_path / "data")
    error = within(60, lambda: ImageClassifier(**FAST).fit(paths, labels))
    assert isinstance(error, ImageInputError) and "pipe.png" in str(error), error


@pytest.mark.parametrize("kind", KINDS)
def test_load_refuses_a_model_path_that_is_not_a_regular_file(tmp_path, kind):
    path = special(kind, tmp_path, suffix=".sklimg")
    error = within(10, lambda: sklimg.load(path))
    assert isinstance(error, ModelFileError) and KINDS[kind] in str(error), error


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_save_refuses_to_write_over_a_pipe_or_device(tmp_path, kind):
    clf = ImageClassifier(**FAST).fit(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1])
    path = special(kind, tmp_path)
    with pytest.raises(FileExistsError, match=KINDS[kind]):
        sklimg.save(clf, path)


# ------------------------------------------------------------------ pixels in files
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_float_file_of_non_finite_pixels_is_refused_by_name(tmp_path, value):
    path = tmp_path / "bad.tif"
    pixels = np.ones((8, 8), np.float32)
    pixels[2, 3] = value
    Image.fromarray(pixels).save(path)
    with pytest.raises(ImageInputError, match=r"bad\.tif' holds 1 NaN or infinite pixels"):
        read_image(path)


def test_non_finite_files_stop_fit_with_the_file_not_a_divergence(tmp_path):
    paths = write_images(tmp_path, n=40)
    for name in ("nan0.tif", "nan1.tif"):
        Image.fromarray(np.full((8, 8), np.nan, np.float32)).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    y = np.arange(42) % 2
    with pytest.raises(ImageInputError, match=r"nan[01]\.tif' holds 64 NaN"):
        ImageClassifier(**FAST, num_workers=0).fit(paths, y)
    clf = ImageClassifier(**FAST).fit(paths[:40], y[:40])
    with pytest.raises(ImageInputError, match=r"nan1\.tif"):
        clf.predict_proba(paths[-1:])


# ------------------------------------------------------------------ folders one level up
def _class_folders(root, classes=("cat", "dog")):
    for label in classes:
        write_images(root / label, n=3)


@pytest.mark.parametrize("splits", [("train", "test"), ("Train", "Validation", "Test"), ("val",)])
def test_a_folder_of_dataset_splits_is_not_taken_for_classes(tmp_path, splits):
    for split in splits:
        _class_folders(tmp_path / split)
    with pytest.raises(ImageInputError, match="holds the splits .* Pass one split's folder"):
        load_image_folder(tmp_path)
    _, labels = load_image_folder(tmp_path / splits[0])
    assert sorted(set(labels)) == ["cat", "dog"]


def test_classes_named_like_splits_with_images_inside_still_load(tmp_path):
    for label in ("train", "test"):  # images directly inside: those are the classes
        write_images(tmp_path / label, n=2)
    assert sorted(set(load_image_folder(tmp_path)[1])) == ["test", "train"]


def test_class_folders_one_level_deeper_are_pointed_to(tmp_path):
    _class_folders(tmp_path / "deeper")
    with pytest.raises(ImageInputError, match=r"single folder, 'deeper'.*Pass '.*deeper'"):
        load_image_folder(tmp_path)


# ------------------------------------------------------------------ model files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X = np.random.default_rng(0).integers(0, 256, (24, 8, 8), dtype=np.uint8)
    y = np.arange(24) % 3
    clf = ImageClassifier(**FAST).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "model.sklimg"
    sklimg.save(clf, path)
    return path, X


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _resealed(path, config, weights):
    """The file a tool writing by hand would make: a digest that matches."""
    config = dict(config)
    config["sha256"] = sklimg.persistence._digest(config, weights)
    _write(path, {"sklimg.json": json.dumps(config).encode(), "weights.safetensors": weights})
    return path


def test_a_member_that_inflates_beyond_the_file_is_refused_before_reading(saved, tmp_path):
    members = _members(saved[0])
    members["weights.safetensors"] = bytes(64 * 2**20)  # compresses 1000 to 1
    path = tmp_path / "bomb.sklimg"
    _write(path, members, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    with pytest.raises(ModelFileError, match=r"declares 67,108,864 bytes.*zip bomb"):
        sklimg.load(path)


def test_a_member_declaring_more_than_it_stores_is_refused(saved, tmp_path):
    data = bytearray(saved[0].read_bytes())
    entry = data.rindex(b"PK\x01\x02")  # the central directory entry of the last member
    data[entry + 24 : entry + 28] = (2**32 - 1).to_bytes(4, "little")  # uncompressed size
    path = tmp_path / "lying.sklimg"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="declares 4,294,967,295 bytes"):
        sklimg.load(path)


def test_a_deflated_copy_of_a_good_model_still_loads(saved, tmp_path):
    path = tmp_path / "deflated.sklimg"
    _write(path, _members(saved[0]), compression=zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(
        sklimg.load(path).predict_proba(saved[1]), sklimg.load(saved[0]).predict_proba(saved[1])
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused(saved, tmp_path, value):
    members = _members(saved[0])
    tensors = load_safetensors(members["weights.safetensors"])
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.ndim > 1)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = value
    path = _resealed(
        tmp_path / "nan.sklimg", json.loads(members["sklimg.json"]), save_safetensors(tensors)
    )
    with pytest.raises(ModelFileError, match=f"{name}' hold NaN or infinite"):
        sklimg.load(path)


@pytest.mark.parametrize("classes", [[0, 1], [0, 1, 2, 3]])
def test_a_class_list_of_another_length_than_the_outputs_is_refused(saved, tmp_path, classes):
    members = _members(saved[0])
    config = {**json.loads(members["sklimg.json"]), "classes": classes}
    path = _resealed(tmp_path / "classes.sklimg", config, members["weights.safetensors"])
    with pytest.raises(ModelFileError, match=f"has 3 outputs but it lists {len(classes)}"):
        sklimg.load(path)


# ------------------------------------------------------------------ silent wrong answers
@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64, np.int64, np.int32])
def test_bytes_at_fit_then_uint8_at_predict_warns(fit_dtype):
    X = np.random.default_rng(0).integers(0, 256, (12, 8, 8))
    clf = ImageClassifier(**FAST).fit(X.astype(fit_dtype), np.arange(12) % 2)
    with pytest.warns(PixelRangeWarning, match=r"fitted on pixels in \[0, 255\]"):
        clf.predict(X.astype(np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PixelRangeWarning)
        clf.predict(X.astype(fit_dtype))  # the same scale: no warning


@pytest.mark.parametrize(
    ("shape", "image_shape"),
    [((12, 8, 8), (4, 16)), ((12, 8, 8), (8, 8, 3)), ((12, 8, 8, 3), (8, 8, 1))],
)
def test_image_shape_that_disagrees_with_shaped_images_is_refused(shape, image_shape):
    X = np.zeros(shape, np.float32)
    match = re.escape(f"image_shape={image_shape} does not match X")
    with pytest.raises(ImageInputError, match=match):
        ImageClassifier(**FAST, image_shape=image_shape).fit(X, np.arange(12) % 2)


def test_image_shape_that_agrees_with_shaped_images_is_accepted():
    X = np.random.default_rng(0).random((12, 8, 8), dtype=np.float32)
    clf = ImageClassifier(**FAST, image_shape=(8, 8)).fit(X, np.arange(12) % 2)
    assert clf.input_shape_ == (8, 8, 1)


# ------------------------------------------------------------------ resource limits
def test_training_that_cannot_fit_in_memory_is_refused_before_it_starts(tmp_path):
    """A 2000 x 2000 PNG is 25 kB on disk; cnn_small on 64 of them at full size would
    need hundreds of GiB: refused with the estimate and the fixes, before any pass
    over the pixels (only the sample of the images, about 1 GiB, is decoded)."""
    path = tmp_path / "big.png"
    Image.new("RGB", (2000, 2000)).save(path)
    assert path.stat().st_size < 100_000
    clf = ImageClassifier("cnn_small", max_epochs=1, batch_size=64)
    with pytest.raises(InsufficientMemoryError, match=r"64 images of 2000x2000 pixels needs") as e:
        clf.fit([str(path)] * 64, np.arange(64) % 2)
    assert "GiB is free" in str(e.value) and "Resize((224, 224))" in str(e.value)
    assert not hasattr(clf, "net_")


def test_the_sample_of_huge_files_is_only_two_of_them(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (10_000, 9_000)).save(path)  # 360 MB as float32
    lazy = LoadImages().fit_transform([str(path)] * 50)
    assert len(sample_images(lazy)) == 2
