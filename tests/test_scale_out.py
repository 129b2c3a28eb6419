"""Search on several processes without oversubscribing the cores, and on a Dask
cluster through joblib's dask backend, with results identical to a local run."""

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


def _search(**kwargs):
    estimator = ImageClassifier("test_cnn", max_epochs=2, random_state=0, num_workers=0)
    return GridSearchCV(estimator, GRID, cv=3, **kwargs)


def test_parallel_fits_do_not_oversubscribe(small_digits):
    """joblib's loky workers start with OMP_NUM_THREADS = cores // n_jobs, which torch
    honours: two parallel fits on two cores use one thread each."""
    X, y = small_digits
    search = _search(n_jobs=2, scoring=torch_threads, refit=False).fit(X, y)
    expected = max(1, (os.cpu_count() or 2) // 2)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], expected)


def test_grid_search_on_a_dask_cluster_matches_local(digit_paths):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_backend

    paths, y = digit_paths
    local = _search().fit(paths, y)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        parallel_backend("dask"),
    ):
        remote = _search(n_jobs=-1).fit(paths, y)  # file paths travel, not pixels
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
