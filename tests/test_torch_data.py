import torch
from torch.utils.data import Subset

from sklimg._torch_data import ImageTensorDataset, TensorBatchLoader


def _dataset(n=10):
    X = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageTensorDataset(X, torch.arange(n))


def test_batches_cover_every_image_once_in_order():
    loader = TensorBatchLoader(_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([yb for _, yb in batches]), torch.arange(10))
    xb, yb = batches[1]
    assert torch.equal(xb[:, 0, 0, 0], yb.float())  # images travel with their labels


def test_shuffle_permutes_each_epoch():
    loader = TensorBatchLoader(_dataset(50), batch_size=50, shuffle=True)
    torch.manual_seed(0)
    first = next(iter(loader))[1]
    second = next(iter(loader))[1]
    assert sorted(first.tolist()) == list(range(50))
    assert not torch.equal(first, second) and not torch.equal(first, torch.arange(50))


def test_subset_from_a_validation_split():
    loader = TensorBatchLoader(Subset(Subset(_dataset(10), [9, 7, 5, 3]), [0, 2]), batch_size=8)
    xb, yb = next(iter(loader))
    assert yb.tolist() == [9, 5] and xb[:, 0, 0, 0].tolist() == [9.0, 5.0]


def test_singleton_last_batch_dropped_for_training_only():
    train = TensorBatchLoader(_dataset(9), batch_size=4, drop_singleton=True)
    assert len(train) == 2 and sum(len(x) for x, _ in train) == 8
    assert len(TensorBatchLoader(_dataset(9), batch_size=4)) == 3
    assert len(TensorBatchLoader(_dataset(1), batch_size=4, drop_singleton=True)) == 1


def test_unlabelled_images():
    ds = ImageTensorDataset(torch.zeros(3, 1, 2, 2))
    assert [yb for _, yb in TensorBatchLoader(ds, batch_size=2)] == [None, None]
