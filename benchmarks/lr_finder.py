"""The learning-rate range test: its cost, and what its suggestion is worth.

For each setup, ``find_lr`` runs (100 steps), then the same classifier is fitted at the
default ``lr``, at the suggested one and at 30 times below and above it, and scored on
held-out images:

- ``test_cnn`` (two convolutions, for which the default rate is too low), 4 epochs on
  600 digits, scored on 450 others;
- the default ``cnn_small``, 5 epochs on 5,000 Fashion-MNIST images, scored on the
  10,000 test images (skipped where Fashion-MNIST is not installed).

    python benchmarks/lr_finder.py [--quick]
"""

import time

from _common import digits_split, fashion_mnist_split, parse_args, report

from sklimg import ImageClassifier
from sklimg.datasets import DatasetNotFoundError
from sklimg.lr_finder import find_lr

args = parse_args(__doc__)


def digits():
    X_train, X_test, y_train, y_test = digits_split()
    return X_train[:600], y_train[:600], X_test, y_test


def fashion_mnist():
    X_train, X_test, y_train, y_test = fashion_mnist_split(5000)
    return X_train, y_train, X_test, y_test


setups = [("test_cnn on digits", "test_cnn", 4, digits)]
if not args.quick:
    setups.append(("cnn_small on Fashion-MNIST", "cnn_small", 5, fashion_mnist))

rows = []
for name, backbone, epochs, load in setups:
    try:
        X, y, X_test, y_test = load()
    except DatasetNotFoundError:
        print(f"{name}: skipped, Fashion-MNIST is not installed")
        continue
    clf = ImageClassifier(backbone, max_epochs=1 if args.quick else epochs, random_state=0)
    start = time.perf_counter()
    result = find_lr(clf, X, y, num_iter=20 if args.quick else 100)
    find_s = time.perf_counter() - start
    rates = {"default": clf.lr, "suggestion": result.suggestion}
    if not args.quick:
        rates["suggestion / 30"] = result.suggestion / 30
        rates["suggestion x 30"] = result.suggestion * 30
    for label, lr in rates.items():
        start = time.perf_counter()
        score = clf.set_params(lr=lr).fit(X, y).score(X_test, y_test)
        rows.append(
            {"setup": name, "find_lr_s": find_s, "lr": label, "value": lr,
             "fit_s": time.perf_counter() - start, "held_out_accuracy": score}
        )  # fmt: skip
report("lr_finder", rows)
