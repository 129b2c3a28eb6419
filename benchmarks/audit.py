"""sklimg.audit: how many flipped labels it finds, how many it flags wrongly, how long it
takes, and which copies the near-duplicate threshold catches.

Label issues: scikit-learn's digits (1,797 images) with 10% of the labels flipped at
random to another class, and 10,000 Fashion-MNIST training images with 5% flipped;
the precision and recall of ``label_issue`` against the flipped set, and the audit's
time (5 folds), for several routes: raw pixels with 10 nearest neighbours or a
regularised logistic regression, HOG features with 10 nearest neighbours or the default
head (a standardised logistic regression); on Fashion-MNIST the HOG routes with the
feature cache (``memory="auto"``: each image's features computed once for the 5 folds)
and without it (``memory=None``).

Near duplicates: for 3,000 Fashion-MNIST images, the share of distinct images whose
thumbnail matches another image's at each threshold, and the share caught of copies
re-encoded as JPEG (quality 75), resized by 1.15 or 0.9 (bilinear), or both.

    python benchmarks/audit.py [--quick]
"""

import io
import time

import numpy as np
from _common import parse_args, report
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklimg import ImageClassifier, audit
from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist
from sklimg.duplicates import thumbnails

args = parse_args(__doc__)


def flipped(y, share, seed=0):
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(y), int(share * len(y)), replace=False)
    noisy = y.copy()
    noisy[positions] = (y[positions] + rng.integers(1, 10, len(positions))) % 10
    return noisy, positions


def routes(small: bool) -> dict:
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    # 8x8 digits need HOG cells of 4 pixels (the default 8 needs 16x16 images).
    hog = {"backbone_kwargs": {"pixels_per_cell": 4}} if small else {}
    return {
        "pixels + 10-NN": lambda: ImageClassifier("pixels", head=KNeighborsClassifier(10)),
        "pixels + logistic (C=0.1)": lambda: ImageClassifier("pixels", head=lr),
        "hog + 10-NN": lambda: ImageClassifier("hog", head=KNeighborsClassifier(10), **hog),
        "hog + default head": lambda: ImageClassifier("hog", **hog),
    }


def label_rows(data: str, X, y, share: float, memories=("auto",)) -> list[dict]:
    noisy, truth = flipped(y, share)
    rows = []
    for route, model in routes(X.shape[1] < 16).items():
        for memory in memories if "hog" in route else ("auto",):
            start = time.perf_counter()
            result = audit(model(), X, noisy, memory=memory)
            seconds = time.perf_counter() - start
            found = result.index[result["label_issue"]].to_numpy()
            hits = len(np.intersect1d(found, truth))
            rows.append(
                {
                    "data": data,
                    "flipped": f"{len(truth)} ({share:.0%})",
                    "route": route,
                    "cache": "on" if memory == "auto" else "off",
                    "flagged": len(found),
                    "precision": hits / max(len(found), 1),
                    "recall": hits / len(truth),
                    "audit_s": seconds,
                }
            )
            print(rows[-1], flush=True)
    return rows


X, y = load_digits_images(return_X_y=True)
if args.quick:
    X, y = X[:400], y[:400]
rows = label_rows("digits", X, y, 0.10)
try:
    X, y = load_fashion_mnist(return_X_y=True, download=False)
    fashion = True
except DatasetNotFoundError:
    fashion = False
if fashion and not args.quick:
    rows += label_rows("Fashion-MNIST", X[:10_000], y[:10_000], 0.05, memories=("auto", None))
report("audit-labels", rows)


def jpeg(image, quality=75):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def resized(image, factor):
    side = round(image.shape[0] * factor)
    return np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))


# Near duplicates: 8-bit images of at least 28x28 (digits upsampled 4x without Fashion).
if fashion:
    images = X[: 300 if args.quick else 3000]  # (n, 28, 28) uint8
    data = "Fashion-MNIST"
else:
    digits = (load_digits_images(return_X_y=True)[0] * 255).round().astype(np.uint8)
    images, data = np.kron(digits, np.ones((1, 4, 4), dtype=np.uint8)), "digits x4"
embedding = thumbnails(images[..., None])
nearest = NearestNeighbors(n_neighbors=2, metric="cosine").fit(embedding)
similarity = 1 - nearest.kneighbors(embedding)[0][:, 1]
copies = {
    "jpeg75": [jpeg(a) for a in images[:300]],
    "resized 1.15": [resized(a, 1.15) for a in images[:300]],
    "resized 0.9": [resized(a, 0.9) for a in images[:300]],
    "resized 1.15 + jpeg75": [jpeg(resized(a, 1.15)) for a in images[:300]],
}
copy_similarity = {
    kind: (thumbnails([c[..., None] for c in made]) * embedding[:300]).sum(axis=1)
    for kind, made in copies.items()
}
rows = []
for threshold in (0.99, 0.995, 0.998):
    row = {
        "data": data,
        "threshold": threshold,
        "distinct_matched": float(np.mean(similarity >= threshold)),
    }
    for kind, values in copy_similarity.items():
        row[f"{kind}_caught"] = float(np.mean(values >= threshold))
    rows.append(row)
report("audit-duplicates", rows)
