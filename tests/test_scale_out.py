"""Search on several processes without oversubscribing the cores, in threads, and on
Dask and Ray clusters through joblib's backends, with results identical to a local run;
image files and augmentation included (their DataLoader workers are chosen for the
host)."""

import os

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.model_selection import GridSearchCV

from sklimg import ImageClassifier

GRID = {"lr": [3e-3, 3e-2]}


def torch_threads(estimator, X, y):
    """A 'score': the torch threads of the process that fitted and scores the model."""
    return torch.get_num_threads()


@pytest.fixture(scope="module")
def digit_paths(tmp_path_factory, small_digits):
    X, y = small_digits
    root = tmp_path_factory.mktemp("digits")
    paths = []
    for i, image in enumerate(np.round(X[:150] * 255).astype(np.uint8)):
        path = root / f"{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return np.array(paths), y[:150]


def _search(augment=None, **kwargs):
    # The classifier's defaults for its DataLoader workers, as a user's would be.
    estimator = ImageClassifier("test_cnn", max_epochs=2, random_state=0, augment=augment)
    return GridSearchCV(estimator, GRID, cv=3, **kwargs)


@pytest.mark.parametrize(
    ("data", "augment"),
    [("files", None), ("files", "light"), ("arrays", "light")],
)
def test_parallel_searches_on_files_and_augmented_images_match_sequential(
    digit_paths, small_digits, data, augment
):
    """In joblib's loky workers a DataLoader cannot start worker processes: the fits
    decode and augment in their own process, with the same results."""
    paths, y = digit_paths
    X = paths if data == "files" else small_digits[0][: len(paths)]
    sequential = _search(augment).fit(X, y)
    parallel = _search(augment, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(
        parallel.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )


@pytest.mark.parametrize("data", ["files", "arrays"])
def test_threaded_searches_match_sequential(digit_paths, small_digits, data):
    """Threads of one process share torch's random generator: seeded fits take turns,
    so a threaded search scores as the sequential one, and the caller's random state
    is left as it was."""
    from joblib import parallel_backend

    paths, y = digit_paths
    X = paths if data == "files" else small_digits[0][: len(paths)]
    sequential = _search(augment="light").fit(X, y)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with parallel_backend("threading", n_jobs=2):
        threaded = _search(augment="light", n_jobs=2, error_score="raise").fit(X, y)
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(
        threaded.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )


def test_fits_in_threads_give_the_model_they_give_alone(small_digits):
    from concurrent.futures import ThreadPoolExecutor

    X, y = small_digits
    X, y = X[:120], y[:120]

    def fit(seed):
        return ImageClassifier("test_cnn", max_epochs=2, random_state=seed).fit(X, y)

    alone = [fit(seed).predict_proba(X) for seed in (0, 1, 0)]
    with ThreadPoolExecutor(3) as pool:
        threaded = [clf.predict_proba(X) for clf in pool.map(fit, (0, 1, 0))]
    for a, b in zip(alone, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_parallel_fits_do_not_oversubscribe(small_digits):
    """joblib's loky workers start with OMP_NUM_THREADS = cores // n_jobs, which torch
    honours: two parallel fits on two cores use one thread each."""
    X, y = small_digits
    search = _search(n_jobs=2, scoring=torch_threads, refit=False).fit(X, y)
    expected = max(1, (os.cpu_count() or 2) // 2)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], expected)


@pytest.fixture(scope="module")
def dask_cluster():
    """The README's cluster: two worker processes of one thread each."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("data", "augment"),
    [("files", None), ("files", "light"), ("arrays", None), ("arrays", "light")],
)
def test_grid_search_on_a_dask_cluster_matches_local(
    dask_cluster, digit_paths, small_digits, data, augment
):
    """The README's recipe as printed (no num_workers set): Dask's worker processes are
    daemonic, so the fits decode files in their own process. Dask gives its workers
    one torch thread each; with one thread here too, the scores are identical."""
    from joblib import parallel_backend

    paths, y = digit_paths
    X = paths if data == "files" else small_digits[0][: len(paths)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = _search(augment).fit(X, y)
    finally:
        torch.set_num_threads(threads)
    with parallel_backend("dask"):
        remote = _search(augment, n_jobs=-1).fit(X, y)  # file paths travel, not pixels
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_


def test_grid_search_on_ray_matches_local(digit_paths):
    """Ray's joblib backend on a local Ray instance of two CPUs, on image files: Ray's
    workers are ordinary processes, which may start DataLoader workers; the scores
    equal a local search's at the same torch thread count (Ray gives its workers one)."""
    ray = pytest.importorskip("ray")
    from joblib import parallel_backend
    from ray.util.joblib import register_ray

    paths, y = digit_paths
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = _search().fit(paths, y)
    finally:
        torch.set_num_threads(threads)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        with parallel_backend("ray"):
            remote = _search(n_jobs=-1).fit(paths, y)
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
