"""Random erasing (``Augment(erasing=...)``): what it gains on few images.

The default ``ImageClassifier`` (``cnn_small``) trained with ``Augment("light")`` (flips
and shifts), alone and with random erasing at probability 0.25 (timm's recipes) and
0.5, on the first 5,000 Fashion-MNIST training images for 40 epochs, scored on the
10,000 test images. Without Fashion-MNIST installed (and in ``--quick`` mode) the
digits stand in.

    python benchmarks/erasing.py [--quick]
"""

import time

from _common import few_fashion_mnist, parse_args, report

from sklimg import ImageClassifier
from sklimg.preprocessing import Augment

args = parse_args(__doc__)

epochs = 1 if args.quick else 40
data, X_train, X_test, y_train, y_test = few_fashion_mnist(args.quick)

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
