"""
Knowing when it does not know
=============================

A classifier trained on clothes answers with a clothing label for anything it is
shown: a handwritten digit, a photograph, noise. This example trains one on
Fashion-MNIST (digits when Fashion-MNIST is not installed) with two options of
:class:`~sklimg.ImageClassifier`:

- ``calibration="temperature"``: the probabilities are rescaled on held-out images, so
  that 0.9 means right about 9 times in 10 (the reliability diagram shows it);
- ``unknown="auto"``: images unlike the training images get the answer ``-1``
  (``unknown_label``), at the price of rejecting ``unknown_rate`` (5%) of images like
  them.

Then MAPIE turns the calibrated classifier into conformal prediction sets, which hold
the true label with a chosen probability.
"""

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from mapie.classification import SplitConformalClassifier
from skimage import data as skdata
from skimage.transform import resize

from sklimg import ImageClassifier, plot_reliability
from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist

QUICK = os.environ.get("SKLIMG_QUICK") == "1"
n_train, n_test, epochs = (300, 200, 1) if QUICK else (3000, 2000, 4)

try:
    X, y = load_fashion_mnist(return_X_y=True, download=False)
    data = "Fashion-MNIST"
except DatasetNotFoundError:
    X, y = load_digits_images(return_X_y=True)
    data = "digits"
order = np.random.default_rng(0).permutation(len(X))
train, test = order[:n_train], order[n_train : n_train + n_test]
conformal = order[n_train + n_test : n_train + 2 * n_test]
size = X.shape[1]
print(f"{data}: {n_train} training images of {X.shape[1:]}")

clf = ImageClassifier(
    calibration="temperature", unknown="auto", max_epochs=epochs, random_state=0
).fit(X[train], y[train])
print(f"temperature {clf.temperature_:.2f}, unknown threshold {clf.unknown_threshold_:.3f}")

# %%
# Calibration
# -----------
# The same network's probabilities before the temperature (``T = 1``) and after.
plain = ImageClassifier(validation_fraction=0.1, max_epochs=epochs, random_state=0)
plain.fit(X[train], y[train])
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
plot_reliability(plain, X[test], y[test], ax=axes[0])
plot_reliability(clf, X[test], y[test], ax=axes[1])
axes[0].set_xlabel("confidence (plain)")
axes[1].set_xlabel(f"confidence (temperature {clf.temperature_:.2f})")
fig.tight_layout()

# %%
# The unknown answer
# ------------------
# Images of other sources: photographs cut to the training images' size, and noise.
photos = []
for name in ("camera", "coins", "moon", "text"):
    image = getattr(skdata, name)().astype(np.float32) / 255
    for i in range(0, image.shape[0] - 96, 96):
        photos.append(resize(image[i : i + 96, i : i + 96], (size, size), anti_aliasing=True))
others = {
    f"{data} test images": X[test],
    "photographs": np.asarray(photos, dtype=np.float32),
    "noise": np.random.default_rng(0).random((100, size, size), dtype=np.float32),
}
for name, images in others.items():
    rejected = np.mean(clf.predict(images) == -1)
    print(f"{name}: {rejected:.0%} answered unknown")

fig, axes = plt.subplots(1, 8, figsize=(10, 1.8))
known = X[test][:4] / 255 if X.dtype == np.uint8 else X[test][:4]  # floats, as the photos
shown = np.concatenate([others["photographs"][:4], known.astype(np.float32)])
for ax, image, label in zip(axes, shown, clf.predict(shown), strict=True):
    ax.imshow(image, cmap="gray")
    ax.set_title("unknown" if label == -1 else str(label))
    ax.axis("off")

# %%
# Conformal prediction sets
# -------------------------
# MAPIE's split conformal method, on images neither training nor calibration saw:
# each set holds the true label of 90% of the images.
mapie = SplitConformalClassifier(estimator=clf, prefit=True, confidence_level=0.9)
mapie.conformalize(X[conformal], y[conformal])
_, sets = mapie.predict_set(X[test])
coverage = sets[np.arange(len(test)), np.searchsorted(clf.classes_, y[test]), 0].mean()
print(f"coverage {coverage:.3f} (asked 0.9), mean set size {sets[..., 0].sum(axis=1).mean():.2f}")
