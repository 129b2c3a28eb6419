"""What sklimg adds to training and prediction, against skorch and a bare torch loop.

The same network (the default ``cnn_small``), data (uint8 28x28 images in memory),
epochs, batch size, optimizer (AdamW) and cosine schedule, trained three ways in one
run:

- ``ImageClassifier`` with its defaults, everything included: input checks, the
  per-channel normalisation statistics, the dry run, BatchNorm calibration, the
  training guard (a finite-loss check per batch, weight snapshots per epoch) and
  precise BN (no validation split: ``validation_fraction`` is ``None`` by default);
- a hand-written skorch ``NeuralNetClassifier`` as skorch's docs show it;
- a minimal torch loop over preloaded tensors: the floor.

Prediction throughput is compared with raw forward passes under
``torch.inference_mode()``. Each timing is the best of 3 runs (1 with ``--quick``).
All three run on the CPU, also on a GPU machine (skorch's default device; sklimg's
``"auto"`` would take the GPU): ``benchmarks/gpu.py`` measures the GPU.

    python benchmarks/overhead.py [--quick]
"""

import numpy as np
import torch
from _common import best_of, fresh_copy, parse_args, report, train_loop
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler
from torch import nn

from sklimg import ImageClassifier

args = parse_args(__doc__)
n, epochs, batch_size, repeats = (512, 1, 128, 1) if args.quick else (8192, 3, 128, 3)
rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
y = rng.integers(0, 10, size=n)

# The network ImageClassifier builds, reused by the other two so all train the same one.
common = dict(batch_size=batch_size, device="cpu", random_state=0)
reference = ImageClassifier(max_epochs=1, **common).fit(X[:256], y[:256])
network = reference.net_.module_


def fit_sklimg():
    ImageClassifier(max_epochs=epochs, **common).fit(X, y)


X_tensor = torch.from_numpy(X[:, None])
y_tensor = torch.from_numpy(y)


def fit_skorch():
    NeuralNetClassifier(
        fresh_copy(network),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=5e-4,
        lr=2e-3,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        callbacks=[LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs)],
        verbose=0,
    ).fit(X_tensor, y_tensor)


def fit_torch():
    train_loop(network, X_tensor, y_tensor, epochs=epochs, batch_size=batch_size)


def predict_raw():
    network.eval()
    with torch.inference_mode():
        for lo in range(0, n, 1024):
            torch.softmax(network(X_tensor[lo : lo + 1024]), dim=1)


times = {
    "torch loop (floor)": best_of(repeats, fit_torch),
    "skorch, hand-written": best_of(repeats, fit_skorch),
    "sklimg ImageClassifier": best_of(repeats, fit_sklimg),
}
predict = {
    "raw forward, inference_mode": best_of(repeats, predict_raw),
    "sklimg predict_proba": best_of(repeats, lambda: reference.predict_proba(X)),
}
floor, raw = times["torch loop (floor)"], predict["raw forward, inference_mode"]
rows = [
    {"what": f"fit: {name}", "seconds": t, "images_per_s": n * epochs / t, "vs_floor": t / floor}
    for name, t in times.items()
] + [
    {"what": f"predict: {name}", "seconds": t, "images_per_s": n / t, "vs_floor": raw / t}
    for name, t in predict.items()
]
report("overhead", rows)
