"""Feeding images to torch, from memory or from files.

This module is every path from images to torch: the dataset of a fit's images
(:func:`image_dataset`), the weights per image of its loss (:func:`loss_weights`), the
batches (:class:`ImageBatchLoader`) and the worker processes that decode them
(:func:`default_num_workers`).

In memory: the images are one ``(N, C, H, W)`` tensor and a batch is one
``index_select`` (skorch's default path calls ``Dataset.__getitem__`` per image and
collates, 30-45x slower to iterate; see ``benchmarks/data_loading.py``).

Lazy (:class:`~sklimg.preprocessing.LazyImages`: files, or images with random
augmentation): a torch ``DataLoader`` decodes and transforms each batch in worker
processes, so memory does not grow with the number of images. Random operations are
seeded per image from a seed drawn once per epoch, so an epoch's augmentations depend
on the classifier's ``random_state`` only, not on the number of workers.

Either way, ``uint8`` images stay ``uint8`` until they reach the device (a quarter of
the memory and traffic of float32), where the network's input adapter scales them
(:func:`sklimg._pixels.unit_float`); a lazy batch mixing ``uint8`` and float images
(8-bit and 16-bit files) is made float in [0, 1] as a whole.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from sklimg._lazy import LazyImages
from sklimg._pixels import mismatch_fix, unit_float
from sklimg._warnings import warn
from sklimg.exceptions import ImageInputError

__all__ = [
    "ImageBatchLoader",
    "ImageTensorDataset",
    "LazyImageDataset",
    "WeightedTargets",
    "default_num_workers",
    "host_of_workers",
    "image_data_loader",
    "image_dataset",
    "images_to_tensor",
    "interrupts_held",
    "loss_weights",
    "n_batches",
    "worker_context",
]


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` array (uint8 or float32) to a contiguous ``(N, C, H, W)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def image_dataset(images, y: torch.Tensor | None = None, weight: torch.Tensor | None = None):
    """The torch dataset of validated images: in memory as one tensor, lazy ones per
    item.

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C) or LazyImages
    y : torch.Tensor of shape (n,) or None
        Labels encoded as class indices.
    weight : torch.Tensor of shape (n,) or None
        Weights per image, see :func:`loss_weights`.

    Returns
    -------
    dataset : ImageTensorDataset or LazyImageDataset
    """
    if isinstance(images, LazyImages):
        return LazyImageDataset(images, y, weight)
    return ImageTensorDataset(images_to_tensor(images), y, weight)


def loss_weights(sample_weight: np.ndarray | None) -> torch.Tensor | None:
    """Weights per image for a neural head's loss: scaled to a mean of 1, so only their
    ratios matter (equal weights are the unweighted loss)."""
    if sample_weight is None:
        return None
    scaled = sample_weight / sample_weight.max()  # no overflow in the mean of huge weights
    return torch.from_numpy((scaled / scaled.mean()).astype(np.float32))


def default_num_workers(images, num_workers: int | None) -> int:
    """Worker processes that decode and augment ``images``.

    None for images in memory, which are batched by slicing. For lazy images,
    ``num_workers`` when given, else ``min(4, cpu_count // 2)`` (at least 1) in a
    program's main thread; but none, decoding in the fit's own process, where it runs
    beside other fits (:func:`host_of_workers`), which already share the cores
    (within 7% of a forked worker per fit on two cores, without more busy processes
    than cores: see ``benchmarks/parallel_search.py``). A daemonic
    process may not start workers at all: there, a ``num_workers`` asked for decodes
    in the process too, with a warning.
    """
    if not isinstance(images, LazyImages):
        return 0
    host = host_of_workers()
    if num_workers is not None:
        if num_workers and host == _DAEMONIC:
            warn(
                f"num_workers={num_workers}, but this fit runs in {host}, which may not "
                f"start DataLoader worker processes: its images are decoded in the fit's "
                f"own process (num_workers=0)."
            )
            return 0
        return num_workers
    if host is not None:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) // 2))


_DAEMONIC = "a daemonic process"
_LOKY = "a worker process of joblib's loky backend"


def host_of_workers() -> str | None:
    """Where a fit runs beside others, so that it decodes in its own process by default,
    in words; None in a program's main process and thread.

    - a daemonic process (a Dask worker, a ``multiprocessing`` pool's worker), which may
      not have children;
    - a worker of joblib's loky backend (``n_jobs`` in scikit-learn's searches), whose
      workers start with the fork method (:func:`worker_context`);
    - another process started by ``multiprocessing``, or a thread other than the main
      one (joblib's threading backend, a ``ThreadPoolExecutor``, a Dask worker's
      threads).
    """
    process = multiprocessing.current_process()
    if process.daemon:
        return _DAEMONIC
    if type(process).__name__ == "LokyProcess":
        return _LOKY
    if multiprocessing.parent_process() is not None:
        return "a process started by multiprocessing"
    if threading.current_thread() is not threading.main_thread():
        return "a thread other than the main one"
    return None


def worker_context() -> str | None:
    """How DataLoader workers start here: with the fork method in a loky worker, whose
    default start method (loky's own) cannot start them; else the default (None)."""
    return "fork" if host_of_workers() == _LOKY else None


class WeightedTargets(NamedTuple):
    """A batch's labels with a weight per image (``fit(..., sample_weight=...)``).

    Only the net's loss reads the weights; callbacks are given the labels alone.
    """

    y: torch.Tensor
    weight: torch.Tensor


def _targets(y: torch.Tensor | None, weight: torch.Tensor | None, idx):
    """The labels (with weights, when there are) of the images at ``idx``."""
    if y is None:
        return None
    return y[idx] if weight is None else WeightedTargets(y[idx], weight[idx])


class ImageTensorDataset(SkorchDataset):
    """Images as one tensor ``(N, C, H, W)``, with optional integer labels and optional
    weights per image (float32, which :class:`ImageBatchLoader` batches with the labels
    as :class:`WeightedTargets`).

    A skorch ``Dataset`` (its ``X`` and ``y``, without its checks), so that skorch's
    scoring callbacks find the labels, also without caching.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> None:
        self.X = X
        self.y = y
        self.weight = weight

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        if self.y is None:
            return self.X[i], torch.tensor(0)
        return self.X[i], _targets(self.y, self.weight, i)

    def __getitems__(self, indices: list[int]):
        # A DataLoader fetches a whole batch with one index_select (see image_data_loader).
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.X.index_select(0, idx), _targets(self.y, self.weight, idx)


class _Failed:
    """What a worker returns instead of raising, so the main process can raise a
    clean error (a DataLoader re-raises worker errors wrapped in a traceback)."""

    def __init__(self, message: str) -> None:
        self.message = message


class LazyImageDataset(SkorchDataset):
    """Images decoded per item from :class:`LazyImages`, with optional labels.

    Items are requested as ``(index, epoch_seed)`` by :class:`ImageBatchLoader`. A
    skorch ``Dataset``, as :class:`ImageTensorDataset`.
    """

    def __init__(
        self,
        images: LazyImages,
        y: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> None:
        self.images = images
        self.y = y
        self.weight = weight

    @property
    def X(self) -> LazyImages:
        """The images, as skorch's ``Dataset`` names them."""
        return self.images

    def __len__(self) -> int:
        return len(self.images)

    def describe(self, i: int) -> str:
        item = self.images.source[i]
        return f"image {i} ({item!r})" if isinstance(item, str) else f"image {i}"

    def __getitem__(self, key):
        i, seed = key if isinstance(key, tuple) else (key, None)
        try:
            if seed is not None and self.images.random:
                # The CPU generator alone: torch.manual_seed also queues CUDA seeding,
                # which costs a stack trace (~1 ms) per call.
                generator = torch.default_generator
                state = generator.get_state()
                generator.manual_seed((seed * 1_000_003 + i) % (2**63))
                try:
                    image = self.images.load(i)
                finally:
                    generator.set_state(state)
            else:
                image = self.images.load(i)
        except Exception as exc:  # reported by the main process, naming the image
            return _Failed(f"Could not load {self.describe(i)}: {exc}")
        if image.ndim == 2:
            image = image[..., None]
        # A copy: decoded images can be read-only views, which torch does not accept.
        tensor = torch.from_numpy(np.array(image.transpose(2, 0, 1)))
        return tensor, _targets(self.y, self.weight, i), i


def _collate(items):
    for item in items:
        if isinstance(item, _Failed):
            return item
    first = items[0][0].shape
    for tensor, _, i in items:
        if tensor.shape != first:
            hwc = [(*shape[1:], shape[0]) for shape in (first, tensor.shape)]
            return _Failed(
                f"Images in a batch differ in shape: image {items[0][2]} is (C, H, W) = "
                f"{tuple(first)} but image {i} is {tuple(tensor.shape)}. "
                f"{mismatch_fix(*hwc)}"
            )
    tensors = [tensor for tensor, _, _ in items]
    if len({tensor.dtype for tensor in tensors}) > 1:
        tensors = [unit_float(tensor) for tensor in tensors]
    X = torch.stack(tensors)
    labels = [label for _, label, _ in items]
    if labels[0] is None:
        return X, None
    if isinstance(labels[0], WeightedTargets):
        return X, WeightedTargets(
            torch.stack([label.y for label in labels]),
            torch.stack([label.weight for label in labels]),
        )
    return X, torch.stack(labels)


def _base_and_indices(dataset) -> tuple[Dataset, torch.Tensor | None]:
    """Unwrap the ``Subset`` skorch's ``ValidSplit`` makes into (base dataset, indices)."""
    indices = None
    while isinstance(dataset, Subset):
        idx = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
        indices = idx if indices is None else idx[indices]
        dataset = dataset.dataset
    if not isinstance(dataset, (ImageTensorDataset, LazyImageDataset)):
        raise TypeError(
            f"ImageBatchLoader needs an ImageTensorDataset or LazyImageDataset (or a Subset "
            f"of one); got {type(dataset).__name__}."
        )
    return dataset, indices


def n_batches(n: int, batch_size: int, *, drop_singleton: bool = False) -> int:
    """Batches of ``n`` images: with ``drop_singleton``, without a last batch of one
    image (as :class:`ImageBatchLoader` trains, since BatchNorm cannot train on one)."""
    count = -(-n // batch_size)
    if drop_singleton and n > 1 and n % batch_size == 1:
        count -= 1
    return count


class ImageBatchLoader:
    """Mini-batches of an image dataset: tensor slicing in memory, workers for files.

    Takes the arguments skorch passes to its iterators. Shuffling and epoch seeds draw
    from torch's global generator, which the classifier seeds.

    Parameters
    ----------
    dataset : ImageTensorDataset, LazyImageDataset, or a torch Subset of one
    batch_size : int, default=128
    shuffle : bool, default=False
    drop_singleton : bool, default=False
        Skip a last batch of one image, which BatchNorm cannot train on.
    num_workers : int, default=0
        DataLoader worker processes for lazy datasets (0: decode in this process).
    expected_shape : tuple of int or None, default=None
        ``(C, H, W)`` every lazy batch must have (the shape seen at fit).
    pin_memory : bool, default=False
        Pin lazy batches in page-locked memory (faster copies to a CUDA device).
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_singleton: bool = False,
        num_workers: int = 0,
        expected_shape: tuple[int, ...] | None = None,
        pin_memory: bool = False,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_singleton = drop_singleton
        self.num_workers = num_workers
        self.expected_shape = expected_shape
        self.pin_memory = pin_memory
        self._base, self._indices = _base_and_indices(dataset)

    def __len__(self) -> int:
        return n_batches(len(self.dataset), self.batch_size, drop_singleton=self.drop_singleton)

    def _order(self) -> torch.Tensor | None:
        order = torch.randperm(len(self.dataset)) if self.shuffle else None
        if self._indices is not None:
            order = self._indices if order is None else self._indices[order]
        return order

    def __iter__(self):
        if isinstance(self._base, ImageTensorDataset):
            return self._iter_tensor()
        return self._iter_lazy()

    def _iter_tensor(self):
        X, y, weight = self._base.X, self._base.y, self._base.weight
        n = len(self.dataset)
        order = self._order()
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                yield X[lo:hi], _targets(y, weight, slice(lo, hi))
            else:
                idx = order[lo:hi]
                yield X.index_select(0, idx), _targets(y, weight, idx)

    def key_batches(self) -> list[list]:
        """This epoch's batches as lists of dataset keys: indices in memory,
        ``(index, epoch_seed)`` for lazy images. Draws the shuffle and the seed."""
        order = self._order()
        if order is None:
            order = torch.arange(len(self.dataset))
        if isinstance(self._base, ImageTensorDataset):
            keys = order.tolist()
        else:
            # Drawn only for random operations: predicting leaves the generator alone.
            random = self._base.images.random
            epoch_seed = int(torch.randint(0, 2**31 - 1, ())) if random else 0
            keys = [(int(i), epoch_seed) for i in order]
        return [keys[b * self.batch_size : (b + 1) * self.batch_size] for b in range(len(self))]

    def _iter_lazy(self):
        loader = _WorkerLoader(
            self._base,
            batch_sampler=self.key_batches(),
            num_workers=self.num_workers,
            collate_fn=_collate,
            pin_memory=self.pin_memory,
            multiprocessing_context=worker_context() if self.num_workers else None,
        )
        batches = iter(loader)
        try:
            for batch in batches:
                yield self._checked(batch)
        finally:
            # Workers of an epoch cut short stop here rather than in the iterator's
            # __del__, where Python ignores exceptions: Ctrl-C then would be lost.
            with interrupts_held():
                del batches

    def _checked(self, batch):
        if isinstance(batch, _Failed):
            raise ImageInputError(batch.message)
        if self.expected_shape is not None and tuple(batch[0].shape[1:]) != tuple(
            self.expected_shape
        ):
            raise ImageInputError(
                f"A batch has images of (C, H, W) = {tuple(batch[0].shape[1:])} where "
                f"{tuple(self.expected_shape)} was expected (the size at fit). Add a "
                f"resizing step, e.g. sklimg.preprocessing.Resize, before the classifier."
            )
        return batch


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) during the block and raise it after, never losing it.

    Starting DataLoader workers forks the process, and Python runs fork hooks (the
    ``logging`` module's among them) and ``__del__`` methods where an exception is
    printed as "Exception ignored" and dropped: a ``KeyboardInterrupt`` arriving then
    was lost, and training ran on. Held here, it is raised as soon as the block ends.
    Outside the main thread, or when SIGINT is ignored or handled outside Python, the
    block runs as it is.

    Examples
    --------
    >>> import signal
    >>> from sklimg._torch_data import interrupts_held
    >>> _ = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own
    >>> try:
    ...     with interrupts_held():
    ...         signal.raise_signal(signal.SIGINT)
    ...         print("the block ends first")
    ... except KeyboardInterrupt:
    ...     print("then Ctrl-C is raised")
    the block ends first
    then Ctrl-C is raised
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (
        signal.SIG_IGN,
        None,
    ):
        yield
        return
    held = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            if callable(previous):
                previous(signal.SIGINT, held[0])  # Python's default: KeyboardInterrupt
            else:  # SIG_DFL: the default action, ending the process
                signal.raise_signal(signal.SIGINT)


class _WorkerLoader(DataLoader):
    """A ``DataLoader`` whose workers start with Ctrl-C held (:func:`interrupts_held`)
    and that leaves torch's global generator alone: a DataLoader draws its workers'
    base seed from it on every iteration, predictions included, which would change
    the caller's random state (sklimg seeds every random operation per image)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, generator=torch.Generator(), **kwargs)

    def __iter__(self):
        with interrupts_held():
            return super().__iter__()


class _EpochBatches(Sampler):
    """An :class:`ImageBatchLoader`'s batches of keys as a torch batch sampler, drawn
    afresh each epoch; one that ``accelerate`` can shard across processes."""

    drop_last = False

    def __init__(self, loader: ImageBatchLoader) -> None:
        self.loader = loader
        # accelerate shards by batch_size (and pads the last batch with the first
        # images, which gather_for_metrics drops again).
        self.batch_size = loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader.key_batches())


class _CheckedCollate:
    """Collate a batch, then check it as :class:`ImageBatchLoader` does (picklable,
    for worker processes)."""

    def __init__(self, loader: ImageBatchLoader) -> None:
        self.loader = loader

    def __call__(self, items):
        if isinstance(self.loader._base, ImageTensorDataset):
            return items  # already a batch: ImageTensorDataset.__getitems__
        return self.loader._checked(_collate(items))


def image_data_loader(dataset, **kwargs) -> DataLoader:
    """The batches of :class:`ImageBatchLoader` (same arguments) as a standard torch
    ``DataLoader``, for code that must rebuild the loader, such as ``accelerate``,
    which shards its batch sampler across processes.

    In memory, a batch is still one ``index_select`` (``__getitems__``).

    Returns
    -------
    loader : torch.utils.data.DataLoader
    """
    loader = ImageBatchLoader(dataset, **kwargs)
    lazy = not isinstance(loader._base, ImageTensorDataset)
    workers = loader.num_workers if lazy else 0
    return _WorkerLoader(
        loader._base,
        batch_sampler=_EpochBatches(loader),
        num_workers=workers,
        collate_fn=_CheckedCollate(loader),
        pin_memory=loader.pin_memory and lazy,
        multiprocessing_context=worker_context() if workers else None,
    )
