"""Peak memory of fit and predict with image files as X, as the number of files grows.

Each size runs in a fresh process that fits an ``ImageClassifier`` on file paths (decoded
batch by batch in DataLoader workers) and predicts them; it reports its peak resident
memory, and that peak above the memory it held before loading the data (after a small
warm-up fit). With paths, peak memory should stay flat; the in-memory array row, for
comparison, holds every image at once, as float32.

The child runs with ``MALLOC_MMAP_THRESHOLD_=131072``: glibc otherwise raises its mmap
threshold after the first freed batch buffer and keeps later ones in the heap, so peak
RSS drifts by +-100 MB with allocation history rather than data size.

    python benchmarks/memory.py [--quick]
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import parse_args, report
from PIL import Image

CHILD = r"""
import json, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
from PIL import Image
from sklimg import ImageClassifier


def status(field):
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(field)) / 1024


def load(paths):
    if sys.argv[2] == "array":
        # float32, as after skimage's img_as_float or sklimg's Normalize
        return np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255 for p in paths])
    return paths


def fit_predict(X):
    labels = np.arange(len(X)) % 10
    # On the CPU everywhere: on a GPU machine, CUDA's pinned-memory cache and lazily
    # loaded kernels also count in the resident memory.
    clf = ImageClassifier(
        backbone="test_cnn", max_epochs=1, batch_size=256, device="cpu", random_state=0
    )
    clf.fit(X, labels)
    clf.predict(X)


paths = np.array(json.loads(open(sys.argv[1]).read()))
# A warm-up fit pays the one-time costs (lazy imports, allocator and worker start-up)
# whose transient peak would otherwise hide the data's share; then the peak is reset
# (VmHWM, not getrusage: ru_maxrss survives exec and cannot be reset).
fit_predict(load(paths[:20]))
open("/proc/self/clear_refs", "w").write("5")
baseline = status("VmRSS")
start = time.perf_counter()
fit_predict(load(paths))
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"peak_rss_mb": peak, "above_baseline_mb": peak - baseline,
                  "seconds": seconds}))
"""


def write_images(folder: Path, n: int, rng, size: int = 64) -> list[str]:
    """``n`` RGB PNG files of ``size`` x ``size``: smooth random blobs, so they compress
    like photos rather than like noise."""
    paths = []
    base = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    for i in range(n):
        path = folder / f"{i:06d}.png"
        Image.fromarray(base[i]).resize((size, size), Image.BILINEAR).save(path)
        paths.append(str(path))
    return paths


def measure(paths: list[str], kind: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump(paths, listing)
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, listing.name, kind],
            capture_output=True, text=True, check=True,
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
        )  # fmt: skip
    finally:
        Path(listing.name).unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args(__doc__)
    sizes = [100, 400] if args.quick else [2_000, 20_000]
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), max(sizes), rng)
        for kind in ("paths", "array"):
            for n in sizes:
                result = measure(paths[:n], kind)
                rows.append({"input": kind, "n_images": n, **result})
    report("memory", rows)


if __name__ == "__main__":
    main()
