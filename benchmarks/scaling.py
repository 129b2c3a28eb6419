"""Fit and predict time as the number of images doubles: it should grow linearly.

``ImageClassifier()`` with batch 128 (the default is 64), one epoch, on random 28x28
uint8 images held in memory, and on the same images as PNG files (decoded in DataLoader
workers). The last two columns are seconds per 1,000 images, to fit and to predict:
flat means linear.

    python benchmarks/scaling.py [--quick]
"""

import tempfile
import time

import numpy as np
from _common import parse_args, report, write_pngs

from sklimg import ImageClassifier

args = parse_args(__doc__)
sizes = [250, 500] if args.quick else [2_000, 4_000, 8_000, 16_000]
rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=(max(sizes), 28, 28), dtype=np.uint8)
y = rng.integers(0, 10, size=max(sizes))

rows = []
with tempfile.TemporaryDirectory() as folder:
    paths = write_pngs(X, folder)
    for kind, data in (("arrays", X), ("files", paths)):
        for n in sizes:
            clf = ImageClassifier(max_epochs=1, batch_size=128, random_state=0)
            start = time.perf_counter()
            clf.fit(data[:n], y[:n])
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            clf.predict(data[:n])
            predict_s = time.perf_counter() - start
            rows.append(
                {"input": kind, "n_images": n, "fit_s": fit_s, "predict_s": predict_s,
                 "fit_s_per_1000": 1000 * fit_s / n, "predict_s_per_1000": 1000 * predict_s / n}
            )  # fmt: skip
report("scaling", rows)
