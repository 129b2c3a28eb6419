"""Images smaller than a backbone's natural size: adapt the stem, or upsample?

ResNet-18 trained from scratch on 8x8 digits, three ways, beside the default small CNN:
the CIFAR-style stride-1 stem at the native size (sklimg's choice for images under 64
pixels), the same stem on images upsampled to 32x32, and the stock ImageNet stem on
images upsampled to 64x64. Same data, epochs and seed; accuracy on a held-out quarter.

    python benchmarks/small_input.py [--quick]
"""

import time

from _common import parse_args, report
from sklearn.model_selection import train_test_split

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images

args = parse_args(__doc__)
X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
if args.quick:
    X_train, y_train, X_test, y_test = X_train[:80], y_train[:80], X_test[:40], y_test[:40]
epochs = 1 if args.quick else 10

configs = {
    "cnn_small, native 8x8": dict(backbone="cnn_small"),
    "resnet18, small stem, native 8x8 (auto)": dict(backbone="resnet18"),
    "resnet18, small stem, upsampled to 32": dict(backbone="resnet18", input_size=32),
    "resnet18, stock stem, upsampled to 64": dict(backbone="resnet18", input_size=64),
}
rows = []
for name, params in configs.items():
    clf = ImageClassifier(max_epochs=epochs, random_state=0, **params)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    rows.append({"configuration": name, "accuracy": clf.score(X_test, y_test), "fit_s": fit_s})
report("small_input", rows)
