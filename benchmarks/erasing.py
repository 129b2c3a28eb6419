"""Random erasing (``Augment(erasing=...)``): what it gains on few images.

The default ``ImageClassifier`` (``cnn_small``) trained with ``Augment("light")`` (flips
and shifts), alone and with random erasing at probability 0.25 (timm's recipes) and
0.5, on the first 5,000 Fashion-MNIST training images for 40 epochs, scored on the
10,000 test images. Without Fashion-MNIST installed (and in ``--quick`` mode) the
digits stand in.

    python benchmarks/erasing.py [--quick]
"""

import time

from _common import digits_split, fashion_mnist_split, parse_args, report

from sklimg import ImageClassifier
from sklimg.datasets import DatasetNotFoundError
from sklimg.preprocessing import Augment

args = parse_args(__doc__)

if args.quick:
    data, epochs = "digits", 1
    X_train, X_test, y_train, y_test = digits_split()
else:
    epochs = 40
    try:
        data = "Fashion-MNIST, 5,000 training images"
        X_train, X_test, y_train, y_test = fashion_mnist_split(5000)
    except DatasetNotFoundError:
        data = "digits (Fashion-MNIST is not installed)"
        X_train, X_test, y_train, y_test = digits_split()

rows = []
for erasing in (0.0, 0.25, 0.5):
    clf = ImageClassifier(
        augment=Augment("light", erasing=erasing), max_epochs=epochs, random_state=0
    )
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    rows.append(
        {"data": data, "epochs": epochs, "erasing": erasing, "fit_s": fit_s,
         "held_out_accuracy": clf.score(X_test, y_test)}
    )  # fmt: skip
report("erasing", rows)
