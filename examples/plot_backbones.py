"""
Comparing backbones: a small CNN against a ResNet-18
====================================================

The backbone is the network that turns images into features. This example trains the
same classifier on the same digits with two of them, sklimg's default ``"cnn_small"``
and torchvision's ResNet-18, both from scratch, and compares held-out accuracy and
fit time.

For images this small (8 x 8 pixels), sklimg gives the ResNet a CIFAR-style stem (a
3 x 3 stride-1 first convolution and no max-pool) instead of upsampling the images; see
:ref:`routes`.

Set ``SKLIMG_QUICK=1`` for a seconds-long run (the test suite does).
"""

# %%
# Train each backbone
# -------------------
# Same data, epochs and seed for both; only ``backbone`` changes. A
# :class:`~sklearn.model_selection.GridSearchCV` over ``{"backbone": [...]}`` would do
# the same with cross-validation.
import os
import time

import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images

QUICK = os.environ.get("SKLIMG_QUICK") == "1"

X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=100 if QUICK else 600, stratify=y, random_state=0
)

results = {}
for backbone in ["cnn_small", "resnet18"]:
    clf = ImageClassifier(backbone, max_epochs=1 if QUICK else 10, random_state=0)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    n_parameters = sum(p.numel() for p in clf.net_.module_.parameters())
    results[backbone] = (clf.score(X_test, y_test), fit_seconds, n_parameters)

print(f"{'backbone':<10} {'accuracy':>8} {'fit (s)':>8} {'parameters':>11}")
for backbone, (accuracy, fit_seconds, n_parameters) in results.items():
    print(f"{backbone:<10} {accuracy:>8.3f} {fit_seconds:>8.1f} {n_parameters:>11,}")

# %%
# Accuracy and cost
# -----------------
# On these small images, the small CNN is about as accurate as the ResNet-18, with
# some 40 times fewer parameters and a fraction of the fit time. For photos, deeper
# networks that start from pretrained weights are the usual choice (:ref:`routes`).
names = list(results)
fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(8, 2.6))
bars = ax_acc.barh(names, [results[n][0] for n in names], color=["C0", "C1"])
ax_acc.bar_label(bars, fmt="%.3f", padding=3)
ax_acc.set(xlim=(0, 1.15), xlabel="held-out accuracy")
bars = ax_time.barh(names, [results[n][1] for n in names], color=["C0", "C1"])
ax_time.bar_label(bars, fmt="%.1f s", padding=3)
ax_time.set(xlabel="fit time (s)", xlim=(0, 1.3 * max(results[n][1] for n in names)))
ax_time.set_yticks([])
for ax in (ax_acc, ax_time):
    ax.invert_yaxis()
fig.suptitle(f"{len(X_train)} training digits, {len(X_test)} held out")
fig.tight_layout()
plt.show()
