"""The main job, run by ``make demo``: train on digits, report, save, load, predict.

Everything ships offline: scikit-learn's 8x8 handwritten digits are the data.
Set ``SKLIMG_QUICK=1`` for a seconds-long smoke run (the test suite does).
"""

# %%
import os
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import train_test_split

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images

QUICK = os.environ.get("SKLIMG_QUICK") == "1"
OUT = Path(os.environ.get("SKLIMG_DEMO_DIR", "build/demo"))

# %%
# Digits as images: (1797, 8, 8) floats in [0, 1]; a quarter is held out.
X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"train {X_train.shape}, test {X_test.shape}, classes {np.unique(y).tolist()}")

# %%
# The default backbone is a small CNN trained from scratch: the right choice for
# small images.
clf = ImageClassifier(max_epochs=2 if QUICK else 15, random_state=0, verbose=0 if QUICK else 1)
start = time.perf_counter()
clf.fit(X_train, y_train)
fit_seconds = time.perf_counter() - start

start = time.perf_counter()
accuracy = clf.score(X_test, y_test)
predict_seconds = time.perf_counter() - start
print(f"held-out accuracy: {accuracy:.4f}")
print(f"fit time: {fit_seconds:.1f} s on {len(X_train)} images")
print(f"predict: {len(X_test) / predict_seconds:,.0f} images/s")

# %%
# Save with joblib, load it back, predict a few images.
OUT.mkdir(parents=True, exist_ok=True)
path = OUT / "digits_classifier.joblib"
joblib.dump(clf, path)
loaded = joblib.load(path)
print(f"saved to {path} ({path.stat().st_size / 1024:.0f} KiB) and loaded back")

proba = loaded.predict_proba(X_test[:5])
for label, p in zip(y_test[:5], proba, strict=True):
    guess = loaded.classes_[p.argmax()]
    print(f"  true {label}  predicted {guess}  (p={p.max():.3f})")
assert np.array_equal(proba, clf.predict_proba(X_test[:5]))
