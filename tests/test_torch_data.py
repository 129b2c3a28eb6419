import numpy as np
import torch
from torch.utils.data import Subset

from sklimg._torch_data import ImageBatchLoader, ImageTensorDataset


def _dataset(n=10):
    X = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageTensorDataset(X, torch.arange(n))


def test_batches_cover_every_image_once_in_order():
    loader = ImageBatchLoader(_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([yb for _, yb in batches]), torch.arange(10))
    xb, yb = batches[1]
    assert torch.equal(xb[:, 0, 0, 0], yb.float())  # images travel with their labels


def test_shuffle_permutes_each_epoch():
    loader = ImageBatchLoader(_dataset(50), batch_size=50, shuffle=True)
    torch.manual_seed(0)
    first = next(iter(loader))[1]
    second = next(iter(loader))[1]
    assert sorted(first.tolist()) == list(range(50))
    assert not torch.equal(first, second) and not torch.equal(first, torch.arange(50))


def test_subset_from_a_validation_split():
    loader = ImageBatchLoader(Subset(Subset(_dataset(10), [9, 7, 5, 3]), [0, 2]), batch_size=8)
    xb, yb = next(iter(loader))
    assert yb.tolist() == [9, 5] and xb[:, 0, 0, 0].tolist() == [9.0, 5.0]


def test_singleton_last_batch_dropped_for_training_only():
    train = ImageBatchLoader(_dataset(9), batch_size=4, drop_singleton=True)
    assert len(train) == 2 and sum(len(x) for x, _ in train) == 8
    assert len(ImageBatchLoader(_dataset(9), batch_size=4)) == 3
    assert len(ImageBatchLoader(_dataset(1), batch_size=4, drop_singleton=True)) == 1


def test_unlabelled_images():
    ds = ImageTensorDataset(torch.zeros(3, 1, 2, 2))
    assert [yb for _, yb in ImageBatchLoader(ds, batch_size=2)] == [None, None]


def test_lazy_batches_checked_against_the_fitted_shape():
    import numpy as np
    import pytest

    from sklimg._torch_data import LazyImageDataset
    from sklimg.exceptions import ImageInputError
    from sklimg.preprocessing import LazyImages

    images = LazyImages([np.zeros((4, 4, 1))] * 2 + [np.zeros((6, 6, 1))] * 2)
    loader = ImageBatchLoader(LazyImageDataset(images), batch_size=2, expected_shape=(1, 4, 4))
    batches = iter(loader)
    assert next(batches)[0].shape == (2, 1, 4, 4)
    with pytest.raises(ImageInputError, match=r"\(C, H, W\) = \(1, 6, 6\) where \(1, 4, 4\)"):
        next(batches)


def test_rebuilt_loader_pins_only_lazy_batches():
    # As ImageBatchLoader does: in-memory batches are copied from ordinary memory.
    import numpy as np

    from sklimg._torch_data import LazyImageDataset, image_data_loader
    from sklimg.preprocessing import LazyImages

    lazy = LazyImageDataset(LazyImages([np.zeros((4, 4, 1))] * 3))
    assert image_data_loader(lazy, batch_size=2, pin_memory=True).pin_memory
    assert not image_data_loader(_dataset(3), batch_size=2, pin_memory=True).pin_memory
    assert not image_data_loader(lazy, batch_size=2, pin_memory=False).pin_memory


def test_file_batches_stay_uint8_until_the_device(tmp_path):
    """One convention for every source: uint8 pixels travel as uint8 (the network's
    adapter scales them); a batch that mixes 8-bit and 16-bit files is made float."""
    from PIL import Image

    from sklimg._pixels import unit_float
    from sklimg._torch_data import image_dataset
    from sklimg.preprocessing import LazyImages

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 6, 6), dtype=np.uint8)
    paths = [str(tmp_path / f"{i}.png") for i in range(3)]
    for path, image in zip(paths, pixels, strict=True):
        Image.fromarray(image).save(path)
    ((batch, _),) = ImageBatchLoader(image_dataset(LazyImages(paths)), batch_size=3)
    assert batch.dtype == torch.uint8
    assert torch.equal(batch[:, 0], torch.from_numpy(pixels))
    Image.fromarray(pixels[0].astype(np.uint16) * 257).save(tmp_path / "16.png")
    mixed = LazyImages([paths[0], str(tmp_path / "16.png")])
    ((batch, _),) = ImageBatchLoader(image_dataset(mixed), batch_size=2)
    assert batch.dtype == torch.float32
    torch.testing.assert_close(batch[0], batch[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(batch[0], unit_float(torch.from_numpy(pixels[:1])))


def _workers_here(num_workers=None):
    """What a fit would choose here, for image files: (workers, host)."""
    from sklimg._torch_data import default_num_workers, host_of_workers
    from sklimg.preprocessing import LazyImages

    return default_num_workers(LazyImages(["any.png"]), num_workers), host_of_workers()


def _workers_asked_for():
    """(workers, warning) where two are asked for, the warning recorded."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        workers, _ = _workers_here(2)
    return workers, " ".join(str(w.message) for w in caught)


def _workers_started() -> int:
    """Images batched through a DataLoader worker process started here."""
    from sklimg._torch_data import LazyImageDataset
    from sklimg.preprocessing import LazyImages

    lazy = LazyImageDataset(LazyImages(list(np.zeros((8, 2, 2, 1), np.uint8))))
    loader = ImageBatchLoader(lazy, batch_size=4, num_workers=1)
    return sum(len(batch) for batch, _ in loader)


def test_workers_are_started_only_where_the_host_allows_them():
    """DataLoader worker processes in a program's main thread; elsewhere the fit decodes
    in its own process: a Dask worker or a multiprocessing pool may not have children,
    joblib's loky workers cannot fork them, and parallel threads share the cores."""
    import multiprocessing

    from joblib import Parallel, delayed

    from sklimg._torch_data import default_num_workers

    workers, host = _workers_here()
    assert workers >= 1 and host is None
    assert default_num_workers(np.zeros((2, 4, 4, 1), np.uint8), None) == 0  # in memory
    assert Parallel(n_jobs=2)(delayed(_workers_here)() for _ in range(2))[0] == (
        0,
        "a worker process of joblib's loky backend",
    )
    # Asked for: started there (with the fork method), as _workers_started shows.
    assert Parallel(n_jobs=2)(delayed(_workers_here)(2) for _ in range(2))[0][0] == 2
    assert Parallel(n_jobs=2)(delayed(_workers_started)() for _ in range(2))[0] == 8
    threaded = Parallel(n_jobs=2, prefer="threads")(delayed(_workers_here)() for _ in range(2))
    assert threaded[0] == (0, "a thread other than the main one")
    assert (
        Parallel(n_jobs=2, prefer="threads")(delayed(_workers_here)(2) for _ in range(2))[0][0] == 2
    )  # a thread may start them when asked
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_workers_here) == (0, "a daemonic process")
        # Asked for, but impossible there: decoded in the process, with a warning.
        workers, warned = pool.apply(_workers_asked_for)
        assert workers == 0 and "which may not start DataLoader worker processes" in warned
