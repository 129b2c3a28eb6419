"""A 2x2 grid search, one fit at a time and two at a time, on images in memory and as
PNG files: wall time and speed-up, side by side in one run.

``GridSearchCV`` over ``{"lr": [1e-3, 3e-3], "batch_size": [64, 128]}`` with ``cv=2``
(8 fits of ``ImageClassifier(max_epochs=1)``, then the refit) on random 28x28 uint8
images, each way:

- ``n_jobs=1``: one fit at a time; files are decoded in DataLoader workers (the
  default in a program's main thread);
- ``n_jobs=2``, joblib's loky workers: two fits at a time, each decoding in its own
  process (sklimg's default there); for files also with one DataLoader worker per fit
  (``num_workers=1``, started with the fork method), the other choice that host allows;
- a 2-worker Dask ``LocalCluster`` (processes, one thread each) through joblib's dask
  backend: two fits at a time, decoding in their own (daemonic) processes.

    python benchmarks/parallel_search.py [--quick]
"""

import tempfile
import time

import numpy as np
from _common import parse_args, report, write_pngs
from joblib import Parallel, delayed, parallel_backend
from sklearn.model_selection import GridSearchCV

from sklimg import ImageClassifier

GRID = {"lr": [1e-3, 3e-3], "batch_size": [64, 128]}
BACKBONE = "cnn_small"


def search(X, y, n_jobs=None, **params) -> float:
    """Seconds to run the grid search."""
    estimator = ImageClassifier(BACKBONE, max_epochs=1, random_state=0, **params)
    start = time.perf_counter()
    GridSearchCV(estimator, GRID, cv=2, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - start


def _imported() -> bool:
    import sklimg  # noqa: F401

    return True


def main() -> None:
    global BACKBONE
    args = parse_args(__doc__)
    n = 2000
    if args.quick:  # the smoke test: tiny network and images
        n, BACKBONE = 64, "test_cnn"
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 4, size=n)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_pngs(X, folder)
        # Start joblib's loky workers (torch imported) before anything is timed; the
        # searches then reuse them.
        Parallel(n_jobs=2)(delayed(_imported)() for _ in range(2))
        ways = []
        for kind, data in (("arrays", X), ("files", paths)):
            ways.append((kind, "n_jobs=1", search(data, y)))
            ways.append((kind, "n_jobs=2 (loky), decoding in each fit", search(data, y, 2)))
            if kind == "files":
                two = search(data, y, 2, num_workers=1)
                ways.append((kind, "n_jobs=2 (loky), one DataLoader worker per fit", two))
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # the dask extra is not installed
            LocalCluster = None
        if LocalCluster is not None:
            with (
                LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
                Client(cluster),
                parallel_backend("dask"),
            ):
                for kind, data in (("arrays", X), ("files", paths)):
                    ways.append((kind, "Dask, 2 worker processes", search(data, y, -1)))
    sequential = {kind: seconds for kind, way, seconds in ways if way == "n_jobs=1"}
    rows = [
        {"data": kind, "how": way, "seconds": seconds, "speed_up": sequential[kind] / seconds}
        for kind, way, seconds in ways
    ]
    report("parallel_search", rows)


if __name__ == "__main__":  # Dask's worker processes re-import __main__
    main()
