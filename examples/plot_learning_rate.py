"""
Choosing the learning rate, and training in parts
=================================================

Run the learning-rate range test (fastai's ``lr_find``) with
:func:`~sklimg.lr_finder.find_lr`, train with the rate it suggests, and check it against
rates far from it. Then train the same network one part of the data at a time with
``partial_fit``, as for data that arrives in batches.

Set ``SKLIMG_QUICK=1`` for a seconds-long run (the test suite does).
"""

# %%
# The range test
# --------------
# A clone of the classifier trains for 100 batches while the learning rate grows
# from 1e-7 to 10; the smoothed loss is recorded at each rate. ``"test_cnn"`` is a
# two-convolution network, for which the default ``lr`` is too low.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images
from sklimg.lr_finder import find_lr
from sklimg.plotting import plot_lr_finder

QUICK = os.environ.get("SKLIMG_QUICK") == "1"

X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
X_train, y_train = X_train[:600], y_train[:600]

clf = ImageClassifier("test_cnn", max_epochs=4, random_state=0)
result = find_lr(clf, X_train, y_train)
print(f"suggested lr: {result.suggestion:.3g} (valley {result.valley:.3g})")
plot_lr_finder(result)
plt.show()

# %%
# Does the suggestion train well?
# -------------------------------
# Four epochs at the default rate, at the suggestion, and 30 times above and below it.
rates = {"default": clf.lr, "suggestion": result.suggestion}
if not QUICK:
    rates.update(
        {"suggestion / 30": result.suggestion / 30, "suggestion x 30": result.suggestion * 30}
    )
for name, lr in rates.items():
    score = (
        ImageClassifier("test_cnn", lr=lr, max_epochs=4, random_state=0)
        .fit(X_train, y_train)
        .score(X_test, y_test)
    )
    print(f"{name:>16}: lr={lr:.3g}, held-out accuracy {score:.3f}")

# %%
# Training in parts
# -----------------
# ``partial_fit`` trains one pass over the images it is given. The first call needs
# every label in ``classes``; the optimizer's state carries over from call to call.
parts = np.array_split(np.arange(len(y_train)), 4)
incremental = ImageClassifier("test_cnn", lr=result.suggestion, random_state=0)
scores = []
for epoch in range(2 if QUICK else 4):
    for part in parts:
        incremental.partial_fit(X_train[part], y_train[part], classes=np.arange(10))
    scores.append(incremental.score(X_test, y_test))
    print(f"after pass {epoch + 1}: held-out accuracy {scores[-1]:.3f}")

fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot(range(1, len(scores) + 1), scores, marker="o")
ax.set_xlabel("passes over the data")
ax.set_ylabel("held-out accuracy")
ax.set_title("partial_fit, four parts per pass")
plt.show()
