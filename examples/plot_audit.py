"""
Auditing a labelled image set
=============================

Labels are wrong more often than one thinks (a few percent in ImageNet and CIFAR, by
Northcutt et al. 2021), images are copied into a data set twice, and copies of test
images slip into the training set. :func:`sklimg.audit` looks for all three:

- each image is predicted by a model cross-validated on the others (out of fold), and
  cleanlab's confident learning flags the images whose given label is probably wrong;
- identical and near-identical images (a re-encoded or resized copy) are found from
  thumbnails, without the model;
- with ``X_test`` (or ``groups``), the copies that cross the split are marked.

Here: scikit-learn's digits with 10% of the labels flipped on purpose, a few copies
planted, and a few test images copied into the training set.
"""

# %%
import io
import os

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from sklimg import ImageClassifier, audit, plot_label_issues
from sklimg.datasets import load_digits_images

QUICK = os.environ.get("SKLIMG_QUICK") == "1"

X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
if QUICK:
    X_train, y_train = X_train[:500], y_train[:500]
rng = np.random.default_rng(0)

# 10% of the training labels changed to another class.
flipped = rng.choice(len(y_train), len(y_train) // 10, replace=False)
noisy = y_train.copy()
noisy[flipped] = (y_train[flipped] + rng.integers(1, 10, len(flipped))) % 10


# Copies: two exact, two re-encoded as JPEG; and three test images in the training set.
def jpeg(image):
    buffer = io.BytesIO()
    Image.fromarray((image * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=75)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255


planted = [X_train[5], X_train[6], jpeg(X_train[7]), jpeg(X_train[8])]
leaked = X_test[:3]
X_audit = np.concatenate([X_train, planted, leaked])
y_audit = np.concatenate([noisy, noisy[5:9], rng.integers(0, 10, 3)])

# %%
# The audit
# ---------
# Raw pixels and 10 nearest neighbours: the fastest route ``benchmarks/audit.py``
# measured on digits (precision 0.93, recall 0.89, in about 2 seconds). A deep model
# works the same way, e.g. ``ImageClassifier("resnet18", pretrained=True,
# head=LogisticRegression())``, whose frozen features are computed once for all folds.
model = ImageClassifier("pixels", head=KNeighborsClassifier(10))
report = audit(model, X_audit, y_audit, X_test=X_test)
print(report.attrs)
print(report.sort_values("label_quality").head())

found = report.index[report["label_issue"]].to_numpy()
hits = np.intersect1d(found, flipped)
print(
    f"label issues: {len(found)} flagged, {len(hits)} of the {len(flipped)} flipped labels "
    f"(precision {len(hits) / len(found):.2f}, recall {len(hits) / len(flipped):.2f})"
)
print("duplicates:", report["duplicate_of"].dropna().astype(int).to_dict())
print("cross the split:", report.index[report["crosses_split"]].tolist())

# %%
# The worst suspects
# ------------------
# Lowest label quality first, with the label given and the one the out-of-fold model
# suggests; then the duplicate pairs side by side.
fig = plot_label_issues(report, X_audit, n=12, n_pairs=4)
plt.show()
