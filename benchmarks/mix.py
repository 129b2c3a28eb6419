"""MixUp and CutMix: what mixing the training batches costs and gains, by training length.

The default ``ImageClassifier`` (``cnn_small``) with ``augment="light"`` trains on the
first 5,000 Fashion-MNIST training images for a short and a long run, without mixing
and with each ``mix`` policy at its default ``mix_alpha``, and is scored on the 10,000
test images. Mixing is a regulariser: it should cost accuracy in short runs and pay in
long runs on few images, where a network overfits. The time column shows what the
mixing itself costs per fit (one blend per batch). Without Fashion-MNIST installed
(and in ``--quick`` mode) the digits stand in.

    python benchmarks/mix.py [--quick]
"""

import time

from _common import few_fashion_mnist, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)

lengths = (1,) if args.quick else (10, 40)
data, X_train, X_test, y_train, y_test = few_fashion_mnist(args.quick)

rows = []
for epochs in lengths:
    for mix in (None, "mixup", "cutmix", "mixup_cutmix"):
        clf = ImageClassifier(augment="light", mix=mix, max_epochs=epochs, random_state=0)
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        rows.append(
            {"data": data, "epochs": epochs, "mix": str(mix), "fit_s": fit_s,
             "held_out_accuracy": clf.score(X_test, y_test)}
        )  # fmt: skip
report("mix", rows)
