"""Frozen pretrained features: computed once and cached, against re-forwarding the
network every epoch, plus a 3x3 grid search over the head that computes them once.

Rows, on Fashion-MNIST (or digits when it is not installed), pretrained
EfficientNet-Lite0 at 32x32 with a frozen backbone and a linear head:

- ``sklimg finetune="head"``: each image's features computed once, the head trained on
  them for ``epochs`` epochs;
- ``skorch + Freezer``: the same network and head written as a skorch user would, the
  backbone frozen with skorch's ``Freezer``, forwarding every image every epoch;
- ``GridSearchCV 3x3 (SVC)``: ``ImageClassifier(head=SVC(), memory=...)`` searched over
  ``C`` x ``gamma`` with 3-fold CV; the cache computes each image's features once.

    python benchmarks/frozen_features.py [--quick]
"""

import tempfile
import time

import numpy as np
import torch
from _common import parse_args, report
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC
from skorch import NeuralNetClassifier
from skorch.callbacks import Freezer, LRScheduler

import sklimg._cache
import sklimg.backbones
from sklimg import ImageClassifier
from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist

args = parse_args(__doc__)
n_train, n_test, epochs = (120, 60, 3) if args.quick else (1000, 500, 15)
try:
    X, y = load_fashion_mnist(return_X_y=True, download=False)
    data = "Fashion-MNIST"
except DatasetNotFoundError:
    X, y = load_digits_images(return_X_y=True)
    data = "digits"
rng = np.random.default_rng(0)
order = rng.permutation(len(X))
X_train, y_train = X[order[:n_train]], y[order[:n_train]]
X_test, y_test = X[order[n_train : n_train + n_test]], y[order[n_train : n_train + n_test]]
backbone = (
    "efficientnet_lite0"
    if "efficientnet_lite0" in sklimg.backbones.list_backbones()
    else "resnet18"
)
# On the CPU, where the skorch net (its default device) computes, also on a GPU machine.
common = dict(
    backbone=backbone, pretrained=True, input_size=32, batch_size=64, lr=2e-3, device="cpu"
)

rows = []
start = time.perf_counter()
cached = ImageClassifier(**common, finetune="head", max_epochs=epochs, random_state=0)
cached.fit(X_train, y_train)
cached_s = time.perf_counter() - start
rows.append(
    {"route": 'sklimg finetune="head" (features cached)', "accuracy": cached.score(X_test, y_test),
     "fit_s": cached_s}
)  # fmt: skip

# The same network, trained as a skorch user would: the backbone frozen with Freezer
# (BatchNorm kept in eval mode, as sklimg does, for the same features), every image
# forwarded every epoch through skorch's per-sample Dataset and DataLoader.
# Same head initialisation, optimizer and cosine schedule as sklimg's.
network = cached.net_.module_
torch.manual_seed(0)
network.head.reset_parameters()


def as_tensor(images):
    return torch.from_numpy(np.ascontiguousarray(images[:, None] if images.ndim == 3 else images))


images = as_tensor(X_train)
baseline = NeuralNetClassifier(
    network,
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.AdamW,
    optimizer__weight_decay=5e-4,
    lr=2e-3,
    batch_size=64,
    max_epochs=epochs,
    train_split=None,
    iterator_train__shuffle=True,
    callbacks=[
        Freezer("backbone.*"),
        LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs),
    ],
    verbose=0,
)
start = time.perf_counter()
baseline.fit(images, torch.as_tensor(y_train))
baseline_s = time.perf_counter() - start
test_images = torch.from_numpy(
    np.ascontiguousarray(X_test[:, None] if X_test.ndim == 3 else X_test)
)
rows.append(
    {"route": "skorch + Freezer (full forward each epoch)",
     "accuracy": float((baseline.predict(test_images) == y_test).mean()), "fit_s": baseline_s}
)  # fmt: skip

computed = {"images": 0}
original = sklimg._cache.FeatureCache.get_or_compute


def counting(self, digests, compute):
    def counted(indices):
        computed["images"] += len(indices)
        return compute(indices)

    return original(self, digests, counted)


sklimg._cache.FeatureCache.get_or_compute = counting
with tempfile.TemporaryDirectory() as cache:
    search = GridSearchCV(
        ImageClassifier(**{k: v for k, v in common.items() if k != "lr"}, head=SVC(), memory=cache),
        {"head__C": [0.3, 3.0, 30.0], "head__gamma": ["scale", 3e-4, 3e-3]},
        cv=3,
    )
    start = time.perf_counter()
    search.fit(X_train, y_train)
    search_s = time.perf_counter() - start
rows.append(
    {"route": f"GridSearchCV 3x3 (SVC), {computed['images']} images' features computed",
     "accuracy": search.score(X_test, y_test), "fit_s": search_s}
)  # fmt: skip
rows.append(
    {"route": f"speed-up, cached vs skorch + Freezer ({data}, {n_train} train, {epochs} epochs)",
     "accuracy": rows[0]["accuracy"] - rows[1]["accuracy"], "fit_s": baseline_s / cached_s}
)  # fmt: skip
report("frozen_features", rows)
