"""The weight average (``ema_decay``): what it costs and gains, by schedule.

The default ``ImageClassifier`` (``cnn_small``, 15 epochs) on the first 5,000
Fashion-MNIST training images, scored on the 10,000 test images, without an average
and with ``ema_decay`` 0.99 and 0.999, under the default cosine schedule (which anneals
the rate to zero, itself a kind of averaging) and at a constant rate (where an average
should gain most). Without Fashion-MNIST installed (and in ``--quick`` mode) the digits
stand in.

    python benchmarks/ema.py [--quick]
"""

import time

from _common import few_fashion_mnist, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)

epochs = 1 if args.quick else 15
data, X_train, X_test, y_train, y_test = few_fashion_mnist(args.quick)

rows = []
for schedule in ("cosine", "constant"):
    for ema_decay in (None, 0.99, 0.999):
        clf = ImageClassifier(
            lr_schedule=schedule, ema_decay=ema_decay, max_epochs=epochs, random_state=0
        )
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        rows.append(
            {"data": data, "lr_schedule": schedule, "ema_decay": str(ema_decay),
             "fit_s": fit_s, "held_out_accuracy": clf.score(X_test, y_test)}
        )  # fmt: skip
report("ema", rows)
