"""sklimg.audit: label issues found on real digits with labels flipped on purpose,
planted duplicates, the duplicates that cross a split, and bad input refused before
any training."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from skorch.callbacks import Callback

from sklimg import ImageClassifier, audit
from sklimg.backbones import BackboneSpec, TinyCNN, get_backbone
from sklimg.datasets import load_digits_images
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing import Resize


def _fast_model():
    """The fastest route benchmarks/audit.py measured on digits: pixels and 10 nearest
    neighbours (under a second for 5 folds of 1,797 images)."""
    return ImageClassifier("pixels", head=KNeighborsClassifier(10))


def _flipped(y, share, seed):
    """``y`` with a ``share`` of the labels changed to another class at random."""
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), int(share * len(y)), replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return noisy, flipped


def test_flipped_digit_labels_are_found_with_precision_and_recall():
    X, y = load_digits_images(return_X_y=True)
    noisy, flipped = _flipped(y, 0.10, seed=0)
    report = audit(_fast_model(), X, noisy)
    found = report.index[report["label_issue"]].to_numpy()
    hits = np.intersect1d(found, flipped)
    assert len(hits) / len(found) >= 0.8  # precision
    assert len(hits) / len(flipped) >= 0.8  # recall
    # The suggested label of a flipped image is mostly its true one.
    assert np.mean(report["suggested_label"].to_numpy()[flipped] == y[flipped]) > 0.8
    # Label quality ranks the flipped labels low.
    quality = report["label_quality"].to_numpy()
    assert quality.min() >= 0 and quality.max() <= 1
    assert np.median(quality[flipped]) < np.median(np.delete(quality, flipped))
    assert report.attrs["n_label_issues"] == len(found)
    assert 0.05 < report.attrs["label_issue_share"] < 0.15
    assert report["label"].tolist() == noisy.tolist()


def _jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def _resized(image: np.ndarray, factor: float) -> np.ndarray:
    side = round(image.shape[0] * factor)
    return np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))


@pytest.fixture(scope="module")
def large_digits():
    """400 digits at 32x32 (8-bit), large enough for a resize to be slight."""
    X, y = load_digits_images(return_X_y=True)
    X = [_resized((x * 255).round().astype(np.uint8), 4) for x in X[:400]]
    return X, y[:400]


def test_planted_duplicates_are_found_and_distinct_images_are_not(large_digits):
    images, y = large_digits
    originals = [3, 50, 120, 200]
    copies = [
        images[3].copy(),  # exact
        _jpeg(images[50]),  # re-encoded
        _resized(images[120], 1.15),  # resized (37x37)
        _jpeg(_resized(images[200], 0.9)),  # resized and re-encoded (29x29)
    ]
    X = [*images, *copies]
    labels = np.concatenate([y, y[originals]])
    model = make_pipeline(Resize(32), _fast_model())
    report = audit(model, X, labels, cv=3)
    planted = report.iloc[len(images) :]
    assert planted["duplicate_of"].tolist() == originals
    # Distinct digits are not taken for copies (a few lookalikes at most).
    assert report["duplicate_of"].iloc[: len(images)].notna().mean() <= 0.02
    assert report.attrs["n_duplicates"] == report["duplicate_of"].notna().sum()
    assert "crosses_split" not in report


def test_duplicates_across_groups_and_the_test_set_cross_the_split(large_digits):
    images, y = large_digits
    X = np.stack([*images[:300], images[10], _jpeg(images[20])])[..., None]
    labels = np.concatenate([y[:300], y[[10, 20]]])
    groups = np.arange(len(labels)) % 6
    groups[300] = groups[10]  # the same group as its original: no leak
    groups[301] = (groups[20] + 1) % 6  # another group: a leak
    X_test = np.stack([_jpeg(images[350]), images[42]])[..., None]
    report = audit(_fast_model(), X, labels, cv=3, groups=groups)
    assert report.loc[[20, 301], "crosses_split"].all()
    assert not report.loc[[10, 300], "crosses_split"].any()
    assert report.loc[[300, 301], "duplicate_of"].tolist() == [10, 20]
    with_test = audit(_fast_model(), X[:300], labels[:300], cv=3, X_test=X_test)
    assert with_test.index[with_test["crosses_split"]].tolist() == [42]
    assert with_test.attrs["n_crosses_split"] == 1


def test_paths_are_kept_and_pandas_indexes_followed(tmp_path, small_digits):
    X, y = small_digits
    X, y = X[:60], y[:60]
    paths = []
    for i, image in enumerate(X):
        path = tmp_path / f"{i}.png"
        Image.fromarray((image * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    report = audit(ImageClassifier("pixels"), paths, y, cv=2)
    assert report["path"].tolist() == paths
    series = pd.Series(paths, index=[f"img{i}" for i in range(60)])
    by_name = audit(ImageClassifier("pixels"), series, y, cv=2)
    assert by_name.index.tolist() == series.index.tolist()
    np.testing.assert_allclose(by_name["label_quality"], report["label_quality"])


class _Refuses(Callback):
    """Fails a test that expected an error before any training, if training starts."""

    def on_train_begin(self, net, **kwargs):
        raise AssertionError("training started")


def _untrainable():
    return ImageClassifier("test_cnn", max_epochs=1, callbacks=[_Refuses()])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda X, y: (X, y[:-1]), ImageInputError, "has 40 images but y has 39"),
        (lambda X, y: (X, np.zeros_like(y)), ImageInputError, "single class"),
        (lambda X, y: (X, np.r_[y[:-2], 9, 9]), ImageInputError, "fewer than cv=5 folds"),
    ],
    ids=["lengths", "one-class", "cv-above-smallest-class"],
)
def test_bad_input_fails_before_training(small_digits, change, error, match):
    X, y = small_digits
    X, y = change(X[:40], np.arange(40) % 4)
    with pytest.raises(error, match=match):
        audit(_untrainable(), X, y, cv=5)


def test_bad_groups_cv_and_threshold_fail_before_training(small_digits):
    X, y = small_digits
    X, y = X[:40], np.arange(40) % 4
    with pytest.raises(ImageInputError, match="groups holds 2 groups, fewer than cv=5"):
        audit(_untrainable(), X, y, groups=np.arange(40) % 2)
    with pytest.raises(ImageInputError, match="one group per image"):
        audit(_untrainable(), X, y, groups=np.arange(39))
    with pytest.raises(ImageInputError, match="cv must be an integer of at least 2"):
        audit(_untrainable(), X, y, cv=1)
    with pytest.raises(ValueError, match=r"near_duplicate_threshold must be .* in \(0, 1\]"):
        audit(_untrainable(), X, y, near_duplicate_threshold=1.5)


def test_a_model_without_probabilities_is_refused(small_digits):
    X, y = small_digits
    with pytest.raises(TypeError, match="has no predict_proba"):
        audit(ImageClassifier("pixels", head=SVC()), X, y)
    with pytest.raises(TypeError, match="needs a scikit-learn classifier"):
        audit(StandardScaler(), X, y)


def test_frozen_features_are_computed_once_across_folds(tmp_path, small_digits):
    X, y = small_digits
    # A tiny backbone with "pretrained" weights and fixed normalisation, as in
    # tests/test_routes.py: its features do not depend on the fold's images.
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(TinyCNN(in_chans=1).state_dict(), weights)
    spec = BackboneSpec(
        "tiny_pretrained", builder=get_backbone("test_cnn").builder, input_size=None,
        mean=(0.3,), std=(0.4,), in_chans=None,
    )  # fmt: skip
    model = ImageClassifier(spec, weights=weights, head=KNeighborsClassifier(5))
    cache = tmp_path / "cache"
    cached = audit(model, X, y, cv=3, memory=cache)
    shards = list((cache / "sklimg-features").rglob("*.npz"))
    stored = np.concatenate([np.load(shard)["keys"] for shard in shards])
    # The first fold computes its images, the others only the ones it did not see:
    # each image once, in one extractor's folder.
    assert len(stored) == len(set(stored)) == len(np.unique(X, axis=0))
    assert len({shard.parent for shard in shards}) == 1
    plain = audit(model, X, y, cv=3, memory=None)
    np.testing.assert_allclose(cached["label_quality"], plain["label_quality"], atol=1e-6)
    assert model.memory is None  # the model given is left as it was


def test_folds_in_parallel_give_the_same_audit(small_digits):
    X, y = small_digits
    alone = audit(_fast_model(), X, y, cv=3)
    # Threads: the folds finish in any order, and each lands on its own images.
    with joblib.parallel_backend("threading"):
        together = audit(_fast_model(), X, y, cv=3, n_jobs=2)
    pd.testing.assert_frame_equal(alone, together)


def test_flattened_rows_are_read_with_the_classifier_s_image_shape(small_digits):
    X, y = small_digits
    X = X[:, :, :6].reshape(len(X), 48)  # 8x6 images as rows, as a table holds them
    model = make_pipeline(StandardScaler(), ImageClassifier("pixels", image_shape=(8, 6)))
    report = audit(model, X, y, cv=3)
    assert len(report) == len(X) and report.attrs["accuracy"] > 0.7
