"""Shared fixtures: fixed seeds and threads, a private TORCH_HOME, digits and
Fashion-MNIST data; the CPU for every test but those marked ``cuda``."""

import os

# The suite checks exact results, as they come on the CPU (on CUDA, cuDNN may pick
# non-deterministic kernels, and results move by float rounding), so it runs on the
# CPU on every machine, as in CI. SKLIMG_TEST_CUDA=1 runs the tests marked ``cuda``
# instead, on the GPU (``make test`` does both where torch sees one). Hidden before torch
# initialises CUDA, which reads the variable once.
CUDA_RUN = os.environ.get("SKLIMG_TEST_CUDA") == "1"
if not CUDA_RUN:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from sklimg.datasets import DatasetNotFoundError, load_digits_images, load_fashion_mnist

# Two threads: the CI machine has two cores, and fixed threads make timings and
# floating point reductions repeat.
torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    """With SKLIMG_TEST_CUDA=1, keep only the tests marked ``cuda``; without it, those
    skip (the GPU is hidden)."""
    if CUDA_RUN:
        keep = [item for item in items if item.get_closest_marker("cuda")]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
        if torch.cuda.is_available():
            return
        skip = pytest.mark.skip(reason="SKLIMG_TEST_CUDA=1, but torch sees no GPU")
    else:
        skip = pytest.mark.skip(reason="needs CUDA: SKLIMG_TEST_CUDA=1 pytest, on a GPU machine")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Seed every test and give it an empty torch hub cache, so nothing is downloaded
    or read from the user's cache by accident."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    np.random.seed(0)  # noqa: NPY002  (seeds code that still uses the legacy global state)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits_split():
    """Digits as 8x8 images, split 75/25 stratified: (X_train, X_test, y_train, y_test)."""
    X, y = load_digits_images(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="session")
def small_digits(digits_split):
    """300 training digits: enough for a model to learn something in a second."""
    X_train, _, y_train, _ = digits_split
    return X_train[:300], y_train[:300]


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST's installed files as (X_train, y_train, X_test, y_test); the test is
    skipped where they are not installed (the Debian package dataset-fashion-mnist)."""
    try:
        X_train, y_train = load_fashion_mnist(download=False, return_X_y=True)
        X_test, y_test = load_fashion_mnist(subset="test", download=False, return_X_y=True)
    except DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST files not installed: {str(exc).splitlines()[0]}")
    return X_train, y_train, X_test, y_test


@pytest.fixture(scope="session")
def serving_model_file(tmp_path_factory):
    """The tiny colour model the serving tests share (tests/serving_helpers.py)."""
    from tests.serving_helpers import train_model

    return train_model(tmp_path_factory.mktemp("serve_model") / "colours.sklimg")


@pytest.fixture(scope="session")
def serving_server(serving_model_file, tmp_path_factory):
    """One real ``sklimg serve`` of that model for the session's serving tests."""
    from tests.serving_helpers import SERVER_ARGS, Server

    log = tmp_path_factory.mktemp("serve_log") / "server.log"
    server = Server(serving_model_file, *SERVER_ARGS, log=log)
    yield server
    server.stop()
