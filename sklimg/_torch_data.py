"""Feeding images to torch: one preloaded tensor, batched by slicing.

skorch's default path calls ``Dataset.__getitem__`` once per image and collates the
results; for small images that costs more than the network (see
``benchmarks/data_loading.py``). Here the images are one ``(N, C, H, W)`` tensor and a
batch is one ``index_select``. ``uint8`` images stay ``uint8`` until they reach the
device, a quarter of the memory and of the host-to-device traffic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

__all__ = ["ImageTensorDataset", "TensorBatchLoader", "images_to_tensor"]


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` array (uint8 or float32) to a contiguous ``(N, C, H, W)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


class ImageTensorDataset(Dataset):
    """Images as one tensor ``(N, C, H, W)``, with optional integer labels.

    Works with any torch ``DataLoader`` too; :class:`TensorBatchLoader` is the fast path.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], (self.y[i] if self.y is not None else torch.tensor(0))


def _base_and_indices(dataset) -> tuple[ImageTensorDataset, torch.Tensor | None]:
    """Unwrap the ``Subset`` skorch's ``ValidSplit`` makes into (base dataset, indices)."""
    indices = None
    while isinstance(dataset, Subset):
        idx = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
        indices = idx if indices is None else idx[indices]
        dataset = dataset.dataset
    if not isinstance(dataset, ImageTensorDataset):
        raise TypeError(
            f"TensorBatchLoader needs an ImageTensorDataset (or a Subset of one); got "
            f"{type(dataset).__name__}."
        )
    return dataset, indices


class TensorBatchLoader:
    """Mini-batches of an :class:`ImageTensorDataset` by tensor slicing.

    Takes the arguments skorch passes to its iterators (``batch_size``, ``shuffle``);
    shuffling draws from torch's global generator, which the classifier seeds.

    Parameters
    ----------
    dataset : ImageTensorDataset or torch.utils.data.Subset of one
    batch_size : int, default=128
    shuffle : bool, default=False
    drop_singleton : bool, default=False
        Skip a last batch of one image, which BatchNorm cannot train on.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_singleton: bool = False,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_singleton = drop_singleton
        self._base, self._indices = _base_and_indices(dataset)

    def __len__(self) -> int:
        n = len(self.dataset)
        n_batches = -(-n // self.batch_size)
        if self.drop_singleton and n > 1 and n % self.batch_size == 1:
            n_batches -= 1
        return n_batches

    def __iter__(self):
        X, y = self._base.X, self._base.y
        n = len(self.dataset)
        order = torch.randperm(n) if self.shuffle else None
        if self._indices is not None:
            order = self._indices if order is None else self._indices[order]
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                xb = X[lo:hi]
                yb = y[lo:hi] if y is not None else None
            else:
                idx = order[lo:hi]
                xb = X.index_select(0, idx)
                yb = y.index_select(0, idx) if y is not None else None
            yield xb, yb
