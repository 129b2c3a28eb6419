"""What the batch-level regularisers cost per fit: mixing (``mix``) and the weight
average (``ema_decay``).

``ImageClassifier()`` (the default ``cnn_small``, 15 epochs) on the 1,347 training
digits, best of 3, the fits alternating so that all see the same load, with nothing,
with each ``mix`` method and with ``ema_decay=0.999``. Their accuracy, which needs
longer runs on more images, is measured by ``mix.py`` and ``ema.py``.

    python benchmarks/regularisers.py [--quick]
"""

import time

from _common import digits_split, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)
X_train, X_test, y_train, y_test = digits_split()
epochs, repeats = (1, 1) if args.quick else (15, 3)
settings = {
    "none": {},
    "mix='mixup'": {"mix": "mixup"},
    "mix='cutmix'": {"mix": "cutmix"},
    "ema_decay=0.999": {"ema_decay": 0.999},
}
times = {name: [] for name in settings}
scores = {}
for _ in range(repeats):
    for name, params in settings.items():
        clf = ImageClassifier(max_epochs=epochs, random_state=0, **params)
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        times[name].append(time.perf_counter() - start)
        scores[name] = clf.score(X_test, y_test)
baseline = min(times["none"])
rows = [
    {"setting": name, "fit_s": min(times[name]), "ratio": min(times[name]) / baseline,
     "held_out_accuracy": scores[name]}
    for name in settings
]  # fmt: skip
report("regularisers", rows)
