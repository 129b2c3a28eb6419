"""
The three routes on the same data
=================================

sklimg offers three ways to a classifier, all through one estimator:

1. **classical features** (scikit-image's HOG) with a scikit-learn model;
2. **frozen pretrained features** (an ImageNet network, EfficientNet-Lite0, whose
   weights ship offline in the ``pretrained`` extra) with a scikit-learn head, each
   image's features computed once;
3. **training a CNN**: a small network from scratch, or fine-tuning the pretrained one.

They run here on the same Fashion-MNIST subset (digits when Fashion-MNIST is not
installed) and are compared by held-out accuracy and time; then the pretrained
features are compared with the same network's features under random weights.
"""

# %%
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sklimg import ImageClassifier
from sklimg.backbones import get_backbone, list_backbones
from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist
from sklimg.features import DeepFeatures

QUICK = os.environ.get("SKLIMG_QUICK") == "1"
n_train, n_test = (200, 100) if QUICK else (2000, 1000)

try:
    X, y = load_fashion_mnist(return_X_y=True, download=False)
    data = "Fashion-MNIST"
except DatasetNotFoundError:
    X, y = load_digits_images(return_X_y=True)
    data = "digits"
order = np.random.default_rng(0).permutation(len(X))
X_train, y_train = X[order[:n_train]], y[order[:n_train]]
X_test, y_test = X[order[n_train : n_train + n_test]], y[order[n_train : n_train + n_test]]
print(f"{data}: {len(X_train)} training and {len(X_test)} test images of {X.shape[1:]}")

# %%
# Each route is one ``ImageClassifier``; only its parameters differ.
routes = {
    "classical: HOG + SVC": ImageClassifier(
        "hog",
        backbone_kwargs={"pixels_per_cell": (4, 4), "cells_per_block": (1, 1)},
        head=make_pipeline(StandardScaler(), SVC(C=10)),
    ),
    "CNN from scratch (cnn_small)": ImageClassifier(
        "cnn_small", max_epochs=2 if QUICK else 15, augment="light", random_state=0
    ),
}
if "efficientnet_lite0" in list_backbones():
    pretrained = dict(backbone="efficientnet_lite0", pretrained=True, input_size=64)
    routes["frozen pretrained features + logistic regression"] = ImageClassifier(
        **pretrained, head=make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    )
    routes["fine-tuned pretrained network (gradual)"] = ImageClassifier(
        **pretrained, finetune="gradual", max_epochs=2 if QUICK else 4, random_state=0
    )

results = []
for name, clf in routes.items():
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = clf.score(X_test, y_test)
    results.append((name, accuracy, seconds))

print(f"{'route':52s} {'accuracy':>8s} {'fit (s)':>8s}")
for name, accuracy, seconds in results:
    print(f"{name:52s} {accuracy:8.3f} {seconds:8.1f}")

# %%
# What the pretrained weights buy
# --------------------------------
# The same frozen features with random weights instead of ImageNet's (a random state
# of the same network, loaded through ``weights=``), from the network's last layer and
# from a middle block (``DeepFeatures(layer=...)`` takes any layer in the backbone's
# ``named_modules()`` and skips the layers after it). Which layer transfers best
# depends on the data and on the head's regularisation: the last layer's features are
# tuned to ImageNet's classes, a middle block's (edges, textures, parts) are more
# generic. On 5,000 Fashion-MNIST images the middle block wins by 5 points
# (``benchmarks/transfer.py``); on the 2,000 here the two are close.
if "efficientnet_lite0" in list_backbones():
    random_file = os.path.join(tempfile.mkdtemp(), "efficientnet_lite0_random.pt")
    torch.manual_seed(0)
    torch.save(get_backbone("efficientnet_lite0").build(in_chans=3).state_dict(), random_file)
    print(f"{'features':22s} {'ImageNet':>8s} {'random':>8s}")
    for layer in (None, "_blocks.11"):
        scores = []
        for weights in ({}, {"weights": random_file}):
            model = make_pipeline(
                DeepFeatures("efficientnet_lite0", **weights, layer=layer, input_size=64),
                StandardScaler(),
                LogisticRegression(C=0.1, max_iter=2000),
            )
            scores.append(model.fit(X_train, y_train).score(X_test, y_test))
        print(f"{layer or 'last layer':22s} {scores[0]:8.3f} {scores[1]:8.3f}")

# %%
# Accuracy against time: where each route sits.
fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
names = [name for name, _, _ in results]
ax_acc.barh(names, [accuracy for _, accuracy, _ in results], color="tab:blue")
ax_acc.set_xlabel("held-out accuracy")
ax_acc.set_xlim(0, 1)
ax_time.barh(names, [seconds for _, _, seconds in results], color="tab:orange")
ax_time.set_xlabel("fit time (s)")
fig.suptitle(f"Three routes on {data} ({len(X_train)} training images)")
fig.tight_layout()
plt.show()
