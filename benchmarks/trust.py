"""Calibration and the unknown answer: how well each works, and what it costs.

The default ``ImageClassifier`` (``cnn_small``) trained on the first 10,000
Fashion-MNIST training images for 5 epochs, with 10% held out (the split calibration
and the unknown threshold are fitted on). In-distribution: the 10,000 test images.
Out-of-distribution, from sources that ship offline: scikit-learn's digits upsampled
to 28x28, patches of scikit-image's photographs and textures cut to 28x28 grayscale,
and uniform noise. For every ``unknown`` method: AUROC (unknown images as positives)
and the false-positive rate at 95% true-positive rate (the share of unknown images
accepted when 95% of test images are), beside the max-softmax baseline, and the share
each source has rejected at the fitted threshold (``unknown_rate=0.05``). Expected
calibration error (15 bins) on the test images: the plain classifier,
``calibration="temperature"``, and scikit-learn's
``CalibratedClassifierCV(FrozenEstimator(clf), method="temperature")`` on 5,000 more
training images. Fit and predict times of each option beside the plain classifier, in
the same run. Without Fashion-MNIST installed (and in ``--quick`` mode) the digits are
the known images and the other sources are cut to 8x8. ``--backbone hog`` measures the
classical route (HOG features and the default scikit-learn head) the same way.

    python benchmarks/trust.py [--quick] [--backbone hog]
"""

import time

import numpy as np
from _common import parse_args, report
from skimage import data as skdata
from skimage.transform import resize
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score

from sklimg import ImageClassifier
from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist
from sklimg.metrics import expected_calibration_error

args = parse_args(
    __doc__,
    lambda parser: parser.add_argument(
        "--backbone", default="cnn_small", help="the classifier's backbone (default: cnn_small)"
    ),
)


def known_images(quick: bool):
    """(description, X_train, y_train, X_calibration, y_calibration, X_test, y_test)."""
    if not quick:
        try:
            X, y = load_fashion_mnist(download=False, return_X_y=True)
            X_test, y_test = load_fashion_mnist(subset="test", download=False, return_X_y=True)
            return (
                "Fashion-MNIST",
                X[:10000],
                y[:10000],
                X[10000:15000],
                y[10000:15000],
                X_test,
                y_test,
            )
        except DatasetNotFoundError:
            pass
    X, y = load_digits_images(return_X_y=True)
    return "digits", X[:1000], y[:1000], X[1000:1300], y[1000:1300], X[1300:], y[1300:]


def other_sources(size: int, quick: bool) -> dict:
    """Images of other sources, float in [0, 1], ``size`` x ``size`` grayscale."""
    rng = np.random.default_rng(0)
    sources = {}
    if size != 8:
        digits = load_digits_images(return_X_y=True)[0][:1000]
        sources["digits"] = resize(digits, (len(digits), size, size), anti_aliasing=True)
    patches = []
    for name in ("camera", "coins", "moon", "text", "brick", "grass", "gravel", "astronaut"):
        image = getattr(skdata, name)()
        image = (image.mean(axis=2) if image.ndim == 3 else image).astype(np.float32) / 255
        for i in range(0, image.shape[0] - 64, 32):
            for j in range(0, image.shape[1] - 64, 64):
                patches.append(
                    resize(image[i : i + 64, j : j + 64], (size, size), anti_aliasing=True)
                )
    sources["photos"] = np.asarray(patches)
    sources["noise"] = rng.random((1000, size, size))
    n = 50 if quick else None
    return {k: v[:n].astype(np.float32) for k, v in sources.items()}


data, X_train, y_train, X_cal, y_cal, X_test, y_test = known_images(args.quick)
epochs = 1 if args.quick else 5
others = other_sources(X_train.shape[1], args.quick)
common = dict(backbone=args.backbone, max_epochs=epochs, random_state=0, validation_fraction=0.1)
if args.backbone == "hog" and X_train.shape[1] < 16:  # 8x8 digits: smaller cells
    common["backbone_kwargs"] = {"pixels_per_cell": 4}

rows = []


def timed_fit(**params):
    clf = ImageClassifier(**common, **params)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    return clf, time.perf_counter() - start


def timed(function, *a):
    start = time.perf_counter()
    result = function(*a)
    return result, time.perf_counter() - start


def calibration_row(option: str, method: str, proba, fit_s: float, predict_s: float) -> dict:
    return {
        "data": data,
        "backbone": args.backbone,
        "option": option,
        "method": method,
        "ece": expected_calibration_error(y_test, proba, classes),
        "accuracy": float(np.mean(classes[proba.argmax(1)] == y_test)),
        "fit_s": fit_s,
        "predict_s": predict_s,
    }


# Calibration: ECE of the same network before and after, and scikit-learn's way.
plain, plain_fit_s = timed_fit()
classes = plain.classes_
proba, predict_s = timed(plain.predict_proba, X_test)
rows.append(calibration_row("plain", "-", proba, plain_fit_s, predict_s))
calibrated, fit_s = timed_fit(calibration="temperature")
proba, predict_s = timed(calibrated.predict_proba, X_test)
option, method = "calibration='temperature'", f"T={calibrated.temperature_:.3f}"
rows.append(calibration_row(option, method, proba, fit_s, predict_s))
sklearn_cal = CalibratedClassifierCV(FrozenEstimator(plain), method="temperature")
_, fit_s = timed(sklearn_cal.fit, X_cal, y_cal)
proba, predict_s = timed(sklearn_cal.predict_proba, X_test)
option = f"CalibratedClassifierCV (+{len(X_cal)} images)"
rows.append(calibration_row(option, "temperature", proba, plain_fit_s + fit_s, predict_s))
report("trust-calibration", rows)

# The unknown answer: every method on every source.
rows = []
for method in ("msp", "energy", "knn", "mahalanobis"):
    clf, fit_s = timed_fit(unknown=method)
    known, predict_s = timed(clf.unknown_score, X_test)
    threshold = np.quantile(known, 0.95)  # accept 95% of the test images
    row = {"data": data, "backbone": args.backbone, "method": method, "fit_s": fit_s,
           "predict_s": predict_s,
           "known_rejected": float(np.mean(known > clf.unknown_threshold_))}  # fmt: skip
    for source, images in others.items():
        scores = clf.unknown_score(images)
        labels = np.r_[np.zeros(len(known)), np.ones(len(scores))]
        row[f"{source}_auroc"] = float(roc_auc_score(labels, np.r_[known, scores]))
        row[f"{source}_fpr95"] = float(np.mean(scores <= threshold))
        row[f"{source}_rejected"] = float(np.mean(scores > clf.unknown_threshold_))
    rows.append(row)
report("trust-unknown", rows)
