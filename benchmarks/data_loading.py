"""Batching in-memory images: tensor slicing against skorch's default per-sample path.

skorch's default wraps X in ``skorch.dataset.Dataset`` and a ``DataLoader`` that calls
``__getitem__`` per image and collates. sklimg keeps the images as one tensor and
slices batches (``sklimg._torch_data.ImageBatchLoader``). Both are timed side by side,
alone (one epoch of batches) and feeding 40 training batches (5 with ``--quick``) of
the bare ``cnn_small`` and ``test_cnn`` networks (``SmallCNN`` and ``TinyCNN``, without
sklimg's input adapter; images scaled to [0, 1] in the loop, AdamW).

    python benchmarks/data_loading.py [--quick]
"""

import numpy as np
import torch
from _common import best_of, parse_args, report
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import DataLoader

from sklimg._torch_data import ImageBatchLoader, ImageTensorDataset, images_to_tensor
from sklimg.backbones import SmallCNN, TinyCNN

args = parse_args(__doc__)
n = 2_000 if args.quick else 20_000
batch_size = 128
rng = np.random.default_rng(0)
images = rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)  # Fashion-MNIST sized
labels = rng.integers(0, 10, size=n)

tensor = images_to_tensor(images)
sliced = ImageBatchLoader(
    ImageTensorDataset(tensor, torch.from_numpy(labels)), batch_size=batch_size, shuffle=True
)
per_sample = DataLoader(
    SkorchDataset(images.transpose(0, 3, 1, 2), labels), batch_size=batch_size, shuffle=True
)


def iterate(loader):
    for xb, _ in loader:
        xb.float()


loss_fn = torch.nn.CrossEntropyLoss()


def train_epoch(model, loader, limit):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for i, (xb, yb) in enumerate(loader):
        if i == limit:
            break
        optimizer.zero_grad()
        loss_fn(model(xb.float().div(255)), torch.as_tensor(yb)).backward()
        optimizer.step()


train_batches = 5 if args.quick else 40
models = {"cnn_small": SmallCNN(in_chans=1), "test_cnn": TinyCNN(in_chans=1)}
paths = {"per-sample + collate (skorch default)": per_sample, "tensor slicing (sklimg)": sliced}
rows = []
for name, loader in paths.items():
    t_iter = best_of(3, lambda loader=loader: iterate(loader))
    row = {"path": name, "images_per_s_iterating": n / t_iter}
    for model_name, model in models.items():
        seconds = best_of(2, lambda m=model, loader=loader: train_epoch(m, loader, train_batches))
        row[f"{model_name}_train_images_per_s"] = train_batches * batch_size / seconds
    rows.append(row)
rows.append(
    {"path": "speed-up (slicing / per-sample)"}
    | {key: rows[1][key] / rows[0][key] for key in rows[0] if key != "path"}
)
report("data_loading", rows)
