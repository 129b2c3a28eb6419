"""Saliency maps: time per image of each method, for every registered backbone.

Every deep backbone of the registry with random weights (``pretrained=False``), fitted
for one epoch on 16 random 64x64 RGB images, then ``sklimg.explain`` on 8 images with
Grad-CAM, integrated gradients (32 steps) and occlusion; the classical route (HOG and
its default head) with occlusion, the one method that explains it. Time per image on
this CPU; no backbone names its Grad-CAM layer (sklimg finds it).

    python benchmarks/explain.py [--quick]
"""

import time

import numpy as np
from _common import parse_args, report

from sklimg import ImageClassifier, explain
from sklimg.backbones import get_backbone, list_backbones
from sklimg.saliency import METHODS

args = parse_args(__doc__)
size = 32 if args.quick else 64
rng = np.random.default_rng(0)
X = rng.random((16, size, size, 3), dtype=np.float32)
y = np.arange(16) % 2
names = ["test_cnn", "hog"] if args.quick else list_backbones()

rows = []
for name in names:
    spec = get_backbone(name)
    if spec.kind == "classical" and name != "hog":
        continue
    clf = ImageClassifier(name, max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    for method in METHODS:
        if spec.kind == "classical" and method != "occlusion":
            continue
        start = time.perf_counter()
        maps = explain(clf, X[:8], method=method)
        seconds = (time.perf_counter() - start) / 8
        rows.append({"backbone": name, "method": method, "image_size": size,
                     "ms_per_image": 1000 * seconds,
                     "finite": bool(np.isfinite(maps).all())})  # fmt: skip
report("explain", rows)
