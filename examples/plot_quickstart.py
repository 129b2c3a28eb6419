"""
Quick start: train, watch it learn, look at the mistakes
========================================================

Train an :class:`~sklimg.ImageClassifier` on scikit-learn's handwritten digits
(shipped with scikit-learn, so this runs offline), follow the training curves from
``history_``, and look at the confusion matrix and the test images the model got wrong
with the most confidence.

Set ``SKLIMG_QUICK=1`` for a seconds-long run on fewer images and epochs (the test
suite does).
"""

# %%
# The data: 1,797 grayscale images of 8x8 pixels
# ----------------------------------------------
# :func:`~sklimg.datasets.load_digits_images` returns the digits as images
# ``(n_samples, height, width)`` with pixels in [0, 1], the layout sklimg expects
# (channels last, as in scikit-image). A quarter is held out for testing.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images

QUICK = os.environ.get("SKLIMG_QUICK") == "1"

X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
if QUICK:
    X_train, y_train = X_train[:300], y_train[:300]
print(f"train {X_train.shape}, test {X_test.shape}, pixels {X.dtype} in [0, 1]")

fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
for ax, image, label in zip(axes.flat, X_train, y_train, strict=False):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(str(label))
    ax.set_axis_off()
fig.suptitle("Training images and their labels")
plt.show()

# %%
# Train, holding out a validation set
# -----------------------------------
# The default backbone, ``"cnn_small"``, is a small CNN trained from scratch: the right
# choice for small images. ``validation_fraction=0.1`` holds out a stratified tenth of
# the training images and records the validation loss and accuracy after every epoch.
# ``random_state`` makes the run repeatable.
clf = ImageClassifier(
    max_epochs=3 if QUICK else 20,
    validation_fraction=0.1,
    random_state=0,
)
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# Training curves
# ---------------
# ``history_`` is skorch's :class:`skorch.history.History`: one row per epoch, indexed
# like ``history_[:, "train_loss"]``. The validation columns exist because of
# ``validation_fraction``.
history = clf.history_
epochs = history[:, "epoch"]

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
ax_loss.plot(epochs, history[:, "train_loss"], "o-", label="training")
ax_loss.plot(epochs, history[:, "valid_loss"], "o-", label="validation")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="Loss")
ax_loss.legend()
ax_acc.plot(epochs, history[:, "valid_acc"], "o-", color="C1")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
fig.tight_layout()
plt.show()

# %%
# Confusion matrix on the test images
# -----------------------------------
# Any scikit-learn tool that takes an estimator works, here
# :class:`~sklearn.metrics.ConfusionMatrixDisplay`.
ConfusionMatrixDisplay.from_estimator(clf, X_test, y_test, colorbar=False)
plt.title("Test images: true vs predicted digit")
plt.show()

# %%
# The most confident mistakes
# ---------------------------
# ``predict_proba`` gives one column per class, in the order of ``classes_``. Wrong
# predictions made with high confidence are the first place to look for mislabelled
# or ambiguous images.
proba = clf.predict_proba(X_test)
predicted = clf.classes_[proba.argmax(axis=1)]
wrong = np.flatnonzero(predicted != y_test)
worst = wrong[np.argsort(-proba[wrong].max(axis=1))][:8]
print(f"{len(wrong)} of {len(y_test)} test images misclassified")

if len(worst):
    fig, axes = plt.subplots(
        1, len(worst), figsize=(max(4, 1.3 * len(worst)), 2.4), squeeze=False, layout="constrained"
    )
    for ax, i in zip(axes[0], worst, strict=True):
        ax.imshow(X_test[i], cmap="gray_r")
        ax.set_title(f"true {y_test[i]}\npred {predicted[i]}\np={proba[i].max():.2f}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("Most confidently wrong test images")
    plt.show()
