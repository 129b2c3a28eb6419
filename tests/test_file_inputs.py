"""Image files as X: lazy decoding, cross-validation, bad files, flat memory."""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

import sklimg._fit.neural
import sklimg._lazy
from sklimg import ImageClassifier
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing import LazyImages, Normalize, Resize

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


@pytest.fixture
def digit_files(tmp_path, small_digits):
    """300 digits written as 8-bit PNG files: (paths, labels, the pixels as uint8)."""
    X, y = small_digits
    pixels = np.round(X * 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        path = tmp_path / f"digit_{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return np.array(paths), y, pixels


def test_paths_train_like_the_pixels(digit_files):
    paths, y, pixels = digit_files
    from_files = ImageClassifier(**FAST).fit(paths, y)
    from_pixels = ImageClassifier(**FAST).fit(pixels, y)
    assert from_files.input_shape_ == (8, 8, 1)
    # Same images, same seed: the same predictions (statistics come from a sample of
    # the files, so probabilities match closely, not bit for bit).
    np.testing.assert_allclose(
        from_files.predict_proba(paths), from_pixels.predict_proba(pixels), atol=0.05
    )
    assert from_files.score(list(map(Path, paths)), y) == from_files.score(pixels, y)


def test_fitting_and_predicting_files_leave_the_global_random_state_alone(digit_files):
    """Predictions drew an epoch seed and DataLoader base seeds from torch's global
    generator, changing the caller's random numbers."""
    paths, y, _ = digit_files
    torch.manual_seed(7)
    state = torch.get_rng_state()
    clf = ImageClassifier(**FAST, augment="light").fit(paths, y)
    clf.predict_proba(paths)
    clf.score(paths, y)
    assert torch.equal(torch.get_rng_state(), state)


class _RecordProcess:
    """A LazyImages op that notes which process decoded each image."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, image):
        os.close(tempfile.mkstemp(dir=self.folder, prefix=f"{os.getpid()}_")[0])
        return image


def test_a_model_fitted_on_pixels_decodes_files_in_workers(digit_files, tmp_path):
    paths, y, pixels = digit_files
    clf = ImageClassifier(**FAST).fit(pixels, y)  # no files at fit: no workers then
    seen = tmp_path / "pids"
    seen.mkdir()
    proba = clf.predict_proba(LazyImages(paths, [_RecordProcess(seen)]))
    np.testing.assert_allclose(proba, clf.predict_proba(pixels), atol=1e-6)
    pids = [int(p.name.split("_")[0]) for p in seen.iterdir()]
    # Decoded in DataLoader workers (this process reads one image, to check its size).
    assert sum(pid != os.getpid() for pid in pids) == len(paths)


def test_lazy_images_are_not_decoded_until_needed(digit_files, monkeypatch):
    paths, _, _ = digit_files

    decoded = []
    real_read = sklimg._lazy.read_image

    def counting_read(path, *args, **kwargs):
        decoded.append(path)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(sklimg._lazy, "read_image", counting_read)
    lazy = LazyImages(paths)
    subset = lazy[np.arange(0, 300, 3), ...]  # scikit-learn's indexing
    assert isinstance(subset, LazyImages) and len(subset) == 100
    assert decoded == []
    assert subset[1].shape == (8, 8, 1) and decoded == [paths[3]]


def test_grid_search_and_cross_validation_index_paths(digit_files):
    paths, y, _ = digit_files
    search = GridSearchCV(
        ImageClassifier(max_epochs=2, random_state=0, num_workers=1),
        {"lr": [1e-3, 1e-2]},
        cv=3,
    ).fit(paths, y)
    assert search.best_score_ > 0.3
    scores = cross_val_score(ImageClassifier(**FAST), LazyImages(paths), y, cv=3)
    assert scores.shape == (3,)


@pytest.mark.parametrize(
    ("make_bad", "match"),
    [
        (lambda p: p.unlink(), "does not exist"),
        (lambda p: p.write_text("not an image"), "not an image file"),
        (lambda p: (p.unlink(), p.mkdir()), "is a directory"),
    ],
    ids=["missing", "not-an-image", "directory"],
)
def test_bad_files_fail_before_training_and_name_the_file(
    digit_files, make_bad, match, monkeypatch
):
    paths, y, _ = digit_files
    bad = Path(paths[17])
    make_bad(bad)
    from sklimg._fit import neural

    monkeypatch.setattr(neural, "build_net", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ImageInputError, match=match) as info:
        ImageClassifier(**FAST).fit(paths, y)
    assert str(bad) in str(info.value) and "1 of 300 image files" in str(info.value)


def test_file_that_breaks_mid_training_keeps_what_was_learned(digit_files, monkeypatch):
    """A file that turns unreadable after the first epoch: training stops with an error
    naming it, and the weights learned so far are kept, usable and continuable."""
    paths, y, _ = digit_files

    real_read = sklimg._lazy.read_image
    calls = {"n": 0}

    def flaky_read(path, *args, **kwargs):
        calls["n"] += 1
        if path == paths[5] and calls["n"] > 600:  # after the sample and one epoch
            raise ImageInputError(f"Could not decode {path!r}: image file is truncated")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(sklimg._lazy, "read_image", flaky_read)
    clf = ImageClassifier(**{**FAST, "max_epochs": 4}, num_workers=0)
    with pytest.raises(ImageInputError, match=r"truncated[\s\S]*after 1 complete epoch") as info:
        clf.fit(paths, y)
    assert paths[5] in str(info.value) and "warm_start=True" in str(info.value)
    assert clf.predict(paths[10:20]).shape == (10,)  # the model is kept
    monkeypatch.setattr(sklimg._lazy, "read_image", real_read)
    clf.set_params(warm_start=True).fit(paths, y)
    assert sum("train_loss" in row for row in clf.history_) == 5


def test_images_of_different_sizes_need_a_resize(tmp_path):
    paths = []
    for i, size in enumerate([8, 8, 12, 8]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(path)
        paths.append(str(path))
    with pytest.raises(ImageInputError, match=r"differ in shape.*same size .*Resize"):
        ImageClassifier(**FAST).fit(paths, [0, 1, 0, 1])
    # Files of several sizes and channels: the error names the size, which a Resize
    # fixes; the channels need nothing (below).
    Image.fromarray(np.zeros((12, 12, 3), dtype=np.uint8)).save(paths[2])
    with pytest.raises(ImageInputError, match=r"same size with .*Resize\(\(64, 64\)\), I"):
        ImageClassifier(**FAST).fit(paths, [0, 1, 0, 1])


def test_a_folder_of_grayscale_and_colour_photos_trains_on_rgb(tmp_path):
    """As torchvision's ImageFolder converts every file to RGB: grayscale files among
    colour ones are repeated to three channels, from Python as from the command line,
    and through preprocessing steps too."""
    rng = np.random.default_rng(0)
    paths, y = [], []
    for i in range(12):
        pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
        image = Image.fromarray(pixels) if i % 3 else Image.fromarray(np.stack([pixels] * 3, -1))
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
        y.append(i % 2)
    clf = ImageClassifier(**FAST).fit(paths, y)
    assert clf.input_shape_ == (8, 8, 3)
    gray = np.asarray(Image.open(paths[1]))
    np.testing.assert_allclose(
        clf.predict_proba(paths[1:2]), clf.predict_proba(np.stack([gray] * 3, -1)[None])
    )
    for step in (Normalize("imagenet"), Resize(6)):
        assert make_pipeline(step, ImageClassifier(**FAST)).fit(paths, y)[-1].input_shape_[-1] == 3


def test_predict_checks_the_size_of_files(digit_files, tmp_path):
    paths, y, _ = digit_files
    clf = ImageClassifier(**FAST).fit(paths, y)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(big)
    with pytest.raises(ImageInputError, match=r"height x width \(8, 8\) but X has \(16, 16\)"):
        clf.predict([str(big)])
    with pytest.raises(ImageInputError, match=r"big.png' is \(16, 16, 1\).*Resize"):
        clf.predict([paths[0], str(big)])


def test_a_file_of_another_shape_fails_before_training_wherever_it_is(tmp_path, monkeypatch):
    """Every file's header is read before training, so one odd file among many is
    found at once, not when its batch comes (here it is outside the files decoded to
    learn the images' shape and statistics)."""

    paths = []
    for i in range(600):
        path = tmp_path / f"{i:03d}.png"
        Image.fromarray(np.full((8, 8), i % 256, dtype=np.uint8)).save(path)
        paths.append(str(path))
    sampled = set(sklimg._lazy.evenly_spaced(600, sklimg._lazy.LAZY_SAMPLE).tolist())
    odd = next(i for i in range(600) if i not in sampled)
    Image.fromarray(np.zeros((8, 9), dtype=np.uint8)).save(paths[odd])
    y = np.arange(600) % 2
    trained = []
    monkeypatch.setattr(sklimg._fit.neural, "_train", lambda *a, **k: trained.append(1))
    clf = ImageClassifier(**FAST)
    with pytest.raises(
        ImageInputError,
        match=rf"2 shapes among 600 files\): '.*000.png' is \(8, 8, 1\) but "
        rf"'.*{odd:03d}.png' is \(8, 9, 1\).*Resize",
    ):
        clf.fit(paths, y)
    assert not trained and not hasattr(clf, "classes_")
    # Through a step that keeps each image's shape, too (not through a Resize).
    with pytest.raises(ImageInputError, match=rf"'.*{odd:03d}.png' is \(8, 9, 1\)"):
        make_pipeline(Normalize("fit"), ImageClassifier(**FAST)).fit(paths, y)
    make_pipeline(Resize(8), ImageClassifier(**FAST)).fit(paths, y)
    assert trained


def test_exif_rotated_photos_count_with_their_displayed_shape(tmp_path):
    """A photo taken with the camera on its side is stored 40 wide, 30 high, and shown
    (and decoded) 30 wide, 40 high: it matches photos stored upright at 30 x 40."""
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.jpg"
        if i % 2:
            exif = Image.Exif()
            exif[0x0112] = 6  # rotate 90 degrees to display
            Image.new("RGB", (40, 30), (200, 20 * i, 0)).save(path, exif=exif)
        else:
            Image.new("RGB", (30, 40), (20 * i, 200, 0)).save(path)
        paths.append(str(path))
    clf = ImageClassifier(**FAST).fit(paths, np.arange(6) % 2)
    assert clf.input_shape_ == (40, 30, 3)


def test_peak_memory_stays_flat_as_files_grow(tmp_path):
    """Fitting on 8x more files costs (almost) no more memory; holding them as an
    array costs their size (benchmarks/memory.py has the 2,000 vs 20,000 run)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import memory
    finally:
        sys.path.pop(0)
    paths = memory.write_images(tmp_path, 2400, np.random.default_rng(0))
    small = memory.measure(paths[:300], "paths")["above_baseline_mb"]
    large = memory.measure(paths, "paths")["above_baseline_mb"]
    in_memory = memory.measure(paths, "array")["above_baseline_mb"]
    assert large - small < 25, (small, large)
    # 2,400 x 64x64x3 float32 images: 118 MB, and a channels-first copy of them
    assert in_memory - large > 150, (large, in_memory)


def test_a_pandas_column_of_paths(digit_files):
    import pandas as pd

    paths, y, pixels = digit_files
    table = pd.DataFrame({"path": paths, "label": y}, index=np.arange(1000, 1300))
    clf = ImageClassifier(**FAST).fit(table["path"], table["label"])
    np.testing.assert_array_equal(clf.predict(table["path"]), clf.predict(pixels))
