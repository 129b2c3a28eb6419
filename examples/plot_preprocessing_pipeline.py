"""
A folder of image files: preprocessing in a pipeline, tuned by grid search
==========================================================================

Real images come as files, rarely all of one size. This example writes digits as PNG
files of mixed sizes to a temporary folder, then trains a scikit-learn
:class:`~sklearn.pipeline.Pipeline` that resizes, augments and normalises them before
an :class:`~sklimg.ImageClassifier`, straight from the file paths. A
:class:`~sklearn.model_selection.GridSearchCV` then picks the image size and the
augmentation policy.

Set ``SKLIMG_QUICK=1`` for a seconds-long run (the test suite does).
"""

# %%
# Write the image files
# ---------------------
# Each digit is saved as a grayscale PNG of a random size between 12 and 32 pixels a
# side, under one folder per class (``root/<label>/<file>.png``), the usual layout of an
# image collection. In your own project, start from here with your own folder.
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images
from sklimg.io import read_image
from sklimg.preprocessing import Augment, Normalize, Resize

QUICK = os.environ.get("SKLIMG_QUICK") == "1"

digits, labels = load_digits_images(return_X_y=True)
n_images = 120 if QUICK else 480
rng = np.random.default_rng(0)
folder = tempfile.TemporaryDirectory()
root = Path(folder.name)
paths = []
for i, (digit, label) in enumerate(zip(digits[:n_images], labels[:n_images], strict=True)):
    width, height = rng.integers(12, 33, size=2)
    image = Image.fromarray((digit * 255).astype(np.uint8))
    (root / str(label)).mkdir(exist_ok=True)
    path = root / str(label) / f"{i:04d}.png"
    image.resize((int(width), int(height)), Image.Resampling.BILINEAR).save(path)
    paths.append(str(path))
paths, y = np.array(paths), labels[:n_images]
print(f"{len(paths)} files, e.g. {Path(paths[0]).relative_to(root)}")

# %%
# The files at their own sizes, read with :func:`sklimg.io.read_image` (which is what
# sklimg uses to decode them: right way up, ``(height, width, channels)``):
fig, axes = plt.subplots(1, 8, figsize=(9, 1.8))
for ax, path, label in zip(axes, paths, y, strict=False):
    image = read_image(path)
    ax.imshow(image[..., 0], cmap="gray_r", extent=(0, image.shape[1], image.shape[0], 0))
    ax.set(xlim=(0, 32), ylim=(32, 0), xticks=[], yticks=[])
    ax.set_title(f"{label}: {image.shape[0]}x{image.shape[1]}", fontsize=9)
fig.suptitle("PNG files of mixed sizes (drawn to scale)")
fig.tight_layout()
plt.show()

# %%
# A pipeline over file paths
# --------------------------
# ``X`` is the array of paths. Each step adds its work to a lazy sequence
# (:class:`~sklimg.preprocessing.LazyImages`) instead of decoding everything up front;
# the classifier's data loader decodes and transforms the images batch by batch, so
# memory does not grow with the number of files.
#
# - :class:`~sklimg.preprocessing.Resize` brings every image to one size, as the
#   network needs.
# - :class:`~sklimg.preprocessing.Normalize` learns the mean and standard deviation of
#   the training pixels. ``ImageClassifier`` would normalise with those statistics on
#   its own (it sees that the input is already normalised and does not do it twice);
#   the step makes the choice visible, e.g. ``Normalize("imagenet")`` for pretrained
#   backbones.
# - :class:`~sklimg.preprocessing.Augment` shifts the training images at random, anew
#   every epoch; ``hflip=0`` because a mirrored digit is another symbol. After
#   ``Normalize``, use geometric changes only (``"light"``: shifts and flips; or
#   rotations and crops): the photometric policies clip pixels to [0, 1], which would
#   damage normalised values.
paths_train, paths_test, y_train, y_test = train_test_split(
    paths, y, test_size=0.25, stratify=y, random_state=0
)
pipe = Pipeline(
    [
        ("resize", Resize(16)),
        ("normalize", Normalize()),
        ("augment", Augment("light", hflip=0)),
        ("clf", ImageClassifier(max_epochs=2 if QUICK else 10, random_state=0)),
    ]
)
pipe.fit(paths_train, y_train)
print(f"held-out accuracy: {pipe.score(paths_test, y_test):.3f}")

# %%
# Tune the preprocessing with a grid search
# -----------------------------------------
# Step parameters are addressed as ``<step>__<parameter>``, as for any scikit-learn
# pipeline. Cross-validation splits the paths without decoding them, and only the
# training folds are augmented: ``Augment.transform`` returns the validation fold
# unchanged.
param_grid = {"resize__size": [8, 16], "augment__policy": ["none", "light"]}
search = GridSearchCV(pipe, param_grid, cv=3).fit(paths_train, y_train)
print(f"best: {search.best_params_}, cross-validated accuracy {search.best_score_:.3f}")
print(f"held-out accuracy of the refitted best pipeline: {search.score(paths_test, y_test):.3f}")

# %%
# The mean cross-validated accuracy of every combination:
sizes, policies = param_grid["resize__size"], param_grid["augment__policy"]
results = search.cv_results_
grid = np.empty((len(policies), len(sizes)))
for params, score in zip(results["params"], results["mean_test_score"], strict=True):
    grid[policies.index(params["augment__policy"]), sizes.index(params["resize__size"])] = score

fig, ax = plt.subplots(figsize=(4.5, 3))
heat = ax.imshow(grid, cmap="viridis")
for (row, col), score in np.ndenumerate(grid):
    # Dark text on the light (high) end of the colour map, light text on the dark end.
    color = "k" if score > grid.min() + 0.5 * np.ptp(grid) else "w"
    ax.text(col, row, f"{score:.3f}", ha="center", va="center", color=color)
ax.set(
    xticks=range(len(sizes)),
    xticklabels=[f"{s}x{s}" for s in sizes],
    yticks=range(len(policies)),
    yticklabels=policies,
    xlabel="resize__size",
    ylabel="augment__policy",
    title="Mean cross-validated accuracy",
)
fig.colorbar(heat, ax=ax)
fig.tight_layout()
plt.show()

# %%
# Differences smaller than the spread between folds, ``std_test_score``, are noise:
print(f"spread between folds: {results['std_test_score'].round(3)}")

# %%
# Remove the temporary folder.
folder.cleanup()
