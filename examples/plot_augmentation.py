"""
Data augmentation: what each policy does, and what it buys
==========================================================

:class:`~sklimg.preprocessing.Augment` changes training images at random, anew every
epoch, so that a network sees more variety than the data set holds. This example shows
one photo and its augmented versions under each policy, measures what augmentation
does to the held-out accuracy of a classifier trained on few images, and what
test-time augmentation adds at prediction.

Set ``SKLIMG_QUICK=1`` for a seconds-long run (the test suite does).
"""

# %%
# One image, many versions
# ------------------------
# ``Augment(...).fit_transform(X)`` returns a lazy view of ``X``
# (:class:`~sklimg.preprocessing.LazyImages`): every time an image is read from it, a new
# random version is drawn. That is what the classifier's data loader does once per
# epoch. The randomness comes from torch's generator, so seeding it makes this figure
# repeat. The cat is scikit-image's ``chelsea`` sample, shipped with scikit-image.
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage import data
from sklearn.model_selection import train_test_split

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images, make_shapes
from sklimg.preprocessing import Augment, Resize

QUICK = os.environ.get("SKLIMG_QUICK") == "1"
POLICIES = ["light", "standard", "trivialaugment", "randaugment"]
N_VERSIONS = 6

cat = Resize((100, 150)).fit_transform(data.chelsea()[np.newaxis])  # (1, 100, 150, 3) uint8
torch.manual_seed(0)

fig, axes = plt.subplots(
    len(POLICIES), N_VERSIONS + 1, figsize=(1.6 * (N_VERSIONS + 1), 1.25 * len(POLICIES))
)
for row, policy in zip(axes, POLICIES, strict=True):
    view = Augment(policy).fit_transform(cat)
    row[0].imshow(cat[0])
    row[0].set_ylabel(policy, rotation=0, ha="right", va="center")
    for ax in row[1:]:
        ax.imshow(view[0])  # a new random draw at each access
    for ax in row:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_title("original")
fig.suptitle("Augment(policy): the original, then random versions")
fig.tight_layout()
plt.show()

# %%
# ``"light"`` flips and shifts; ``"standard"`` also crops, rotates and jitters
# brightness, contrast and saturation; ``"trivialaugment"`` and ``"randaugment"`` apply
# torchvision's automatic policies (one or two strong operations drawn per image).
#
# At prediction time nothing is random: ``transform`` returns the images unchanged, so
# ``predict``, ``score`` and the test folds of cross-validation see the real images.
augment = Augment("standard")
print(augment.fit_transform(cat))  # training: a lazy, random view
print(augment.transform(cat) is cat)  # prediction: the images themselves

# %%
# Does it help? Few training images, with and without augmentation
# ----------------------------------------------------------------
# Augmentation pays most when images are few. Train on 300 digits and test on the
# 1,497 others. Handwritten digits must not be mirrored (a mirrored 2 is not a 2), so
# horizontal flips are switched off with ``hflip=0``; ``"light"`` then shifts digits by
# up to one pixel, ``"standard"`` crops, rotates and changes the contrast.
#
# ``ImageClassifier(augment=...)`` does the same as an ``Augment`` step before the
# classifier in a :class:`~sklearn.pipeline.Pipeline`.
X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=100 if QUICK else 300, stratify=y, random_state=0
)

settings = {
    "none": None,
    "light, hflip=0": Augment("light", hflip=0),
    "standard, hflip=0": Augment("standard", hflip=0),
}
scores = {}
for name, augment in settings.items():
    clf = ImageClassifier(augment=augment, max_epochs=2 if QUICK else 20, random_state=0)
    scores[name] = clf.fit(X_train, y_train).score(X_test, y_test)
    print(f"augment={name:<18} held-out accuracy {scores[name]:.3f}")

fig, ax = plt.subplots(figsize=(6, 2.4))
bars = ax.barh(list(scores), list(scores.values()), color=["C7", "C0", "C2"])
ax.bar_label(bars, fmt="%.3f", padding=3)
ax.set(xlim=(min(scores.values()) - 0.05, 1.0), xlabel="held-out accuracy")
ax.invert_yaxis()
ax.set_title(f"cnn_small trained on {len(X_train)} digits")
fig.tight_layout()
plt.show()

# %%
# One split and one seed is a small experiment: differences of a few tenths of a percent
# are noise. To decide for your data, put ``Augment`` in a pipeline and let
# :class:`~sklearn.model_selection.GridSearchCV` compare policies, as in
# :ref:`sphx_glr_auto_examples_plot_preprocessing_pipeline.py`.

# %%
# At prediction: test-time augmentation
# -------------------------------------
# ``ImageClassifier(tta=...)`` averages the network's predictions over views of each
# test image: the image and its mirror (``"flip"``), and also that pair shifted by one
# pixel up-left and down-right (``"flip_translate"``). It is read when predicting, so
# one fitted classifier can be scored each way. A mirrored digit is another symbol, so
# here the images are sklimg's synthetic circles, squares and triangles, which keep
# their class in a mirror. The network is trained on 500 of them without augmentation
# (15 epochs, 10 s here); shapes come in every orientation, so a mirrored shape is
# nothing new to it, and the views help (0.978 without TTA, 0.988 with ``"flip"`` and
# 0.992 with ``"flip_translate"`` on the 500 others, on a 2-core CPU with 2 torch
# threads; other thread counts give slightly different numbers). Where every
# image faces one way, as Fashion-MNIST's shoes do, train with flips before using TTA:
# a network that never saw a mirrored shoe predicts worse on one.
X, y = make_shapes(n_samples=300 if QUICK else 1000, random_state=0, return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.5, stratify=y, random_state=0
)
clf = ImageClassifier(max_epochs=2 if QUICK else 15, random_state=0)
clf.fit(X_train, y_train)
for tta in (None, "flip", "flip_translate"):
    accuracy = clf.set_params(tta=tta).score(X_test, y_test)
    print(f"tta={tta!r:<16} held-out accuracy {accuracy:.3f}")

# %%
# Each view costs a forward pass: ``"flip"`` predicts at half the speed,
# ``"flip_translate"`` at a sixth. Training is the same whatever ``tta`` is.
