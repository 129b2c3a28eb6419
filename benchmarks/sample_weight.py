"""What weights per image cost: fit time without weights and with unit weights.

``ImageClassifier()`` (the default ``cnn_small``, 15 epochs) on the 1,347 training
digits, best of 3, the two fits alternating so both see the same load. Unit weights
train the same model, so the held-out accuracies must agree too.

    python benchmarks/sample_weight.py [--quick]
"""

import time

import numpy as np
from _common import digits_split, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)
X_train, X_test, y_train, y_test = digits_split()
epochs, repeats = (1, 1) if args.quick else (15, 3)
weights = {"none": None, "unit weights": np.ones(len(y_train))}
times = {name: [] for name in weights}
scores = {}
for _ in range(repeats):
    for name, sample_weight in weights.items():
        clf = ImageClassifier(max_epochs=epochs, random_state=0)
        start = time.perf_counter()
        clf.fit(X_train, y_train, sample_weight=sample_weight)
        times[name].append(time.perf_counter() - start)
        scores[name] = clf.score(X_test, y_test)
baseline = min(times["none"])
rows = [
    {"sample_weight": name, "fit_s": min(times[name]), "ratio": min(times[name]) / baseline,
     "held_out_accuracy": scores[name]}
    for name in weights
]  # fmt: skip
report("sample_weight", rows)
