"""The CUDA paths: mixed precision (``amp=True``) and sklimg's overhead on a GPU.

In one run, on one GPU, with random uint8 28x28 images in memory:

- fit time of ``ImageClassifier`` (``cnn_small`` and ``resnet18`` with its small-image
  stem) with and without ``amp=True``;
- the same ``cnn_small`` network trained by a bare torch loop over batches already on
  the GPU (the floor);
- prediction: sklimg's ``predict_proba`` against raw forward passes under
  ``torch.inference_mode()`` over the same uint8 images copied to the GPU per batch;
- pinned against pageable host memory for the batches on their way to the GPU: fitting
  on image files (sklimg's DataLoader pins their batches on CUDA) with pinning on and
  off, and copying batches of files and of in-memory images (which sklimg copies
  from pageable memory) with and without pinning them first.

Each timing is the best of 2 runs (1 with ``--quick``) after a warm-up. Without CUDA
the script says so and measures nothing.

    python benchmarks/gpu.py [--quick]
"""

import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import best_of, parse_args, report, train_loop
from PIL import Image

from sklimg import ImageClassifier
from sklimg._torch_data import (
    ImageBatchLoader,
    ImageTensorDataset,
    LazyImageDataset,
    default_num_workers,
    images_to_tensor,
)
from sklimg.utils.validation import as_images

args = parse_args(__doc__)
if not torch.cuda.is_available():
    print("No CUDA device: this benchmark measures the CUDA paths only.")
    sys.exit(0)

n, epochs, batch_size, repeats = (1024, 1, 256, 1) if args.quick else (32768, 2, 256, 2)
rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
y = rng.integers(0, 10, size=n)
common = dict(max_epochs=epochs, batch_size=batch_size, device="cuda", random_state=0)


def synchronised(fit):
    def run():
        fit()
        torch.cuda.synchronize()

    return run


def sklimg_fit(**params):
    return synchronised(lambda: ImageClassifier(**common, **params).fit(X, y))


reference = ImageClassifier(**common).fit(X, y)  # also the warm-up
network = reference.net_.module_
X_gpu = torch.from_numpy(X[:, None]).cuda()
y_gpu = torch.from_numpy(y).cuda()


def predict_raw():
    network.eval()
    X_cpu = torch.from_numpy(X[:, None])
    with torch.inference_mode():
        for lo in range(0, n, 1024):
            torch.softmax(network(X_cpu[lo : lo + 1024].cuda()), dim=1).cpu()


fits = {
    "cnn_small, torch loop on GPU tensors (floor)": synchronised(
        lambda: train_loop(network, X_gpu, y_gpu, epochs=epochs, batch_size=batch_size)
    ),
    "cnn_small, ImageClassifier": sklimg_fit(),
    "cnn_small, ImageClassifier amp=True": sklimg_fit(amp=True),
    "resnet18 (small stem), ImageClassifier": sklimg_fit(backbone="resnet18"),
    "resnet18 (small stem), ImageClassifier amp=True": sklimg_fit(backbone="resnet18", amp=True),
}
sklimg_fit(backbone="resnet18", amp=True)()  # warm-up: cuDNN picks its kernels
rows = []


def add(row):
    """Keep a row, and print it at once: a run cut short still shows what it measured."""
    rows.append(row)
    print(f"{row['what']}: {row['seconds']:.4g} s", flush=True)


for name, fit in fits.items():
    seconds = best_of(repeats, fit)
    add({"what": f"fit: {name}", "seconds": seconds, "images_per_s": n * epochs / seconds})
for name, predict in {
    "predict: raw forward, inference_mode": synchronised(predict_raw),
    "predict: sklimg predict_proba": synchronised(lambda: reference.predict_proba(X)),
}.items():
    seconds = best_of(repeats, predict)
    add({"what": name, "seconds": seconds, "images_per_s": n / seconds})


# Pinned or pageable host memory. skorch copies each batch with a blocking .to(device).
@contextlib.contextmanager
def loader_pinning(on):
    """Every ImageBatchLoader built inside pins its batches, or does not."""
    init = ImageBatchLoader.__init__

    def forced(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "pin_memory": on})

    ImageBatchLoader.__init__ = forced
    try:
        yield
    finally:
        ImageBatchLoader.__init__ = init


def copy_batches(loader, pin):
    def run():
        for X_batch, _ in loader:
            (X_batch.pin_memory() if pin else X_batch).to("cuda")
        torch.cuda.synchronize()

    return run


n_files = 512 if args.quick else 8192
folder = tempfile.TemporaryDirectory()
colour = rng.integers(0, 256, size=(n_files, 64, 64, 3), dtype=np.uint8)
paths = [str(Path(folder.name) / f"{i}.png") for i in range(n_files)]
for image, path in zip(colour, paths, strict=True):
    Image.fromarray(image).save(path)
labels = rng.integers(0, 10, size=n_files)
files = as_images(paths)
in_memory = ImageTensorDataset(images_to_tensor(colour))
fit_files = synchronised(lambda: ImageClassifier(**common).fit(paths, labels))
for pin in (True, False):
    with loader_pinning(pin):
        fit_files()  # warm-up
        seconds = best_of(repeats, fit_files)
    add({"what": f"fit on {n_files} 64x64 RGB PNG files, loader pin_memory={pin}",
                 "seconds": seconds, "images_per_s": n_files * epochs / seconds})  # fmt: skip
for name, dataset, workers in (
    ("files", LazyImageDataset(files), default_num_workers(files, None)),
    ("in memory", in_memory, 0),
):
    for pin in (True, False):
        loader = ImageBatchLoader(dataset, batch_size=batch_size, shuffle=True,
                                  num_workers=workers, pin_memory=pin and workers > 0)  # fmt: skip
        copy = copy_batches(loader, pin=pin and workers == 0)
        copy()  # warm-up
        seconds = best_of(repeats, copy)
        add({"what": f"copy batches to the GPU, {name}, pinned={pin}",
                     "seconds": seconds, "images_per_s": n_files / seconds})  # fmt: skip
folder.cleanup()
rows.append({"what": f"device: {torch.cuda.get_device_name()}", "seconds": None,
             "images_per_s": None})  # fmt: skip
report("gpu", rows)
