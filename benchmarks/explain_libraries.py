"""Grad-CAM from captum (what sklimg.explain uses) against pytorch-grad-cam, on one model.

The pointing game of tests/test_saliency.py at benchmark size: 32x32 noise images with
an 8x8 patch of one of three textures (the class) at a random place; ``cnn_small``
trained for 4 epochs on 2,000 of them, explained on 200 held-out ones. Both libraries
read the same layer, the 8x8 map sklimg chooses and the last 4x4 one; per library:
milliseconds per image, the share of maps whose peak falls on the patch, the share
that pass sklimg's deletion test; between them, the mean Pearson correlation of the
maps and the share of images whose peaks coincide.

Needs pytorch-grad-cam (``pip install grad-cam``; in the ``dev`` extra, not a
dependency of sklimg) besides the ``explain`` extra.

    python benchmarks/explain_libraries.py [--quick]
"""

import time

import numpy as np
import torch
from _common import parse_args, report
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from sklimg import ImageClassifier, deletion_scores, explain

args = parse_args(__doc__)
SIZE, PATCH = 32, 8
n_train, n_test, epochs = (300, 40, 2) if args.quick else (2000, 200, 4)


def patch_images(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZE, SIZE, 1), dtype=np.float32) * 0.5
    y = rng.integers(0, 3, n)
    corners = rng.integers(0, SIZE - PATCH, (n, 2))
    r, c = np.meshgrid(np.arange(PATCH), np.arange(PATCH), indexing="ij")
    textures = [(r // 2) % 2, (c // 2) % 2, ((r + c) // 2) % 2]
    for i, (top, left) in enumerate(corners):
        X[i, top : top + PATCH, left : left + PATCH, 0] = textures[y[i]]
    return X, y, corners


def on_patch(maps, corners):
    peaks = np.array([np.unravel_index(np.argmax(m), m.shape) for m in maps])
    inside = (peaks >= corners) & (peaks < corners + PATCH)
    return float(inside.all(axis=1).mean()), peaks


X, y, _ = patch_images(n_train, 0)
X_test, y_test, corners = patch_images(n_test, 1)
clf = ImageClassifier("cnn_small", max_epochs=epochs, random_state=0).fit(X, y)
targets = clf.predict(X_test)
network = clf.net_.module_.eval()
# cnn_small's activations: backbone.16 ends the last stage with 8x8 maps on these
# images (sklimg's choice), backbone.23 is the last one (4x4).
rows = []
for layer in ("backbone.16", "backbone.23"):
    explain(clf, X_test[:2], layer=layer)  # imports captum, warms up
    start = time.perf_counter()
    ours = explain(clf, X_test, layer=layer, target=targets)
    captum_ms = 1000 * (time.perf_counter() - start) / n_test

    # pytorch-grad-cam on the tensors the network takes (1 channel, standardised as
    # sklimg's network does inside its forward pass).
    cam = GradCAM(model=network, target_layers=[network.get_submodule(layer)])
    x = torch.from_numpy(X_test.transpose(0, 3, 1, 2).copy())
    index = np.searchsorted(clf.classes_, targets)
    cam(input_tensor=x[:2], targets=[ClassifierOutputTarget(0)] * 2)  # warms up
    start = time.perf_counter()
    theirs = np.concatenate(
        [
            cam(
                input_tensor=x[i : i + 32],
                targets=[ClassifierOutputTarget(int(t)) for t in index[i : i + 32]],
            )
            for i in range(0, n_test, 32)
        ]
    )
    grad_cam_ms = 1000 * (time.perf_counter() - start) / n_test

    correlation = np.mean(
        [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(ours, theirs, strict=True)]
    )
    ours_point, ours_peaks = on_patch(ours, corners)
    theirs_point, theirs_peaks = on_patch(theirs, corners)
    same_peak = float((ours_peaks == theirs_peaks).all(axis=1).mean())
    for library, maps, ms, point in (
        ("captum (sklimg.explain)", ours, captum_ms, ours_point),
        ("pytorch-grad-cam", theirs, grad_cam_ms, theirs_point),
    ):
        faithful = deletion_scores(clf, X_test, maps, target=targets).faithful.mean()
        rows.append(
            {
                "layer": layer,
                "library": library,
                "ms_per_image": ms,
                "peak_on_patch": point,
                "faithful": float(faithful),
                "correlation_between": float(correlation),
                "same_peak": same_peak,
            }
        )
report("explain_libraries", rows)
