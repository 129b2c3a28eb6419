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
