"""
Where the model looked
======================

A saliency map shows which pixels a prediction rested on. Here a small CNN learns to
tell faces from other photographs (scikit-image's ``lfw_subset``: 100 faces and 100
non-face patches of real photos, shipped offline), and :func:`sklimg.explain` maps
each prediction with Grad-CAM, integrated gradients and occlusion. The deletion test
(:func:`sklimg.deletion_scores`) checks each map: masking the 10% most salient
pixels should lower the predicted class's probability more than masking the same
shape elsewhere in the image. On these 25x25 images it does not always: a face is
recognised from all of it, and masking part of the background can cost as much.
"""

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from sklimg import ImageClassifier, deletion_scores, explain, plot_explanations

QUICK = os.environ.get("SKLIMG_QUICK") == "1"
X = data.lfw_subset().astype(np.float32)
y = np.array(["face"] * 100 + ["other"] * 100)
order = np.random.default_rng(0).permutation(len(X))
train, test = order[:150], order[150:]
clf = ImageClassifier(max_epochs=2 if QUICK else 15, random_state=0).fit(X[train], y[train])
print(f"held-out accuracy {clf.score(X[test], y[test]):.3f} on {len(test)} images")

# %%
# The maps of three methods on the same held-out images.
shown = X[test][:6]
fig, axes = plt.subplots(3, 6, figsize=(10, 5.5))
for row, method in zip(axes, ("gradcam", "integrated_gradients", "occlusion"), strict=True):
    maps = explain(clf, shown, method=method)
    scores = deletion_scores(clf, shown, maps)
    for ax, image, saliency, drop in zip(row, shown, maps, scores.salient, strict=True):
        ax.imshow(image, cmap="gray")
        ax.imshow(saliency, cmap="jet", alpha=0.45)
        ax.set_title(f"-{drop:.2f}", fontsize=8)
        ax.axis("off")
    row[0].text(-3, 12, method, rotation=90, va="center", ha="right", fontsize=9)
    print(f"{method}: mean fall {scores.salient.mean():.3f} against {scores.random.mean():.3f} "
          f"for the mask moved elsewhere; faithful on {scores.faithful.mean():.0%} of the "
          f"images")  # fmt: skip
fig.suptitle("fall of the predicted class's probability when the top 10% are masked")

# %%
# ``plot_explanations`` draws the same with the labels.
plot_explanations(clf, X[test][:8], y[test][:8], n_cols=8)
plt.show()
