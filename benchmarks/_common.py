"""Helpers shared by the benchmark scripts: argument parsing, environment, reporting."""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def parse_args(description: str, add_arguments=None) -> argparse.Namespace:
    """``--quick`` and ``--threads``, and the script's own options if
    ``add_arguments(parser)`` adds them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def environment() -> dict:
    import sklearn
    import skorch

    import sklimg

    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "sklimg": sklimg.__version__,
    }


def report(name: str, rows: list[dict]) -> None:
    """Print rows as a table, then one JSON line with the environment."""
    columns = list(rows[0])
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print(json.dumps({"benchmark": name, "environment": environment(), "rows": rows}))


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_pngs(images, folder) -> np.ndarray:
    """``images`` written as ``folder/00000.png``, ...; their paths."""
    paths = []
    for i, image in enumerate(images):
        path = Path(folder) / f"{i:05d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return np.array(paths)


def digits_split():
    """The digits as 8x8 images, split 75/25 stratified (random_state=0):
    ``(X_train, X_test, y_train, y_test)``."""
    from sklearn.model_selection import train_test_split

    from sklimg.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def fashion_mnist_split(n_train: int):
    """The first ``n_train`` Fashion-MNIST training images and the 10,000 test images:
    ``(X_train, X_test, y_train, y_test)``. Raises ``DatasetNotFoundError`` where the
    files are not installed (nothing is downloaded)."""
    from sklimg.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(download=False, return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", download=False, return_X_y=True)
    return X[:n_train], X_test, y[:n_train], y_test


def few_fashion_mnist(quick: bool, n_train: int = 5000):
    """``(description, X_train, X_test, y_train, y_test)``: the first ``n_train``
    Fashion-MNIST training images and the test images, for the regularisation
    benchmarks; the digits in ``--quick`` mode or where Fashion-MNIST is not installed."""
    from sklimg.datasets import DatasetNotFoundError

    if quick:
        return ("digits", *digits_split())
    try:
        return (f"Fashion-MNIST, {n_train:,} training images", *fashion_mnist_split(n_train))
    except DatasetNotFoundError:
        return ("digits (Fashion-MNIST is not installed)", *digits_split())


def fresh_copy(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network`` with newly initialised parameters, in train mode."""
    model = copy.deepcopy(network)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model.train()


def train_loop(
    network: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int
) -> None:
    """The floor: a bare torch loop training a fresh copy of ``network`` on tensors held
    where they are (AdamW, cosine schedule, as ``ImageClassifier`` trains)."""
    model = fresh_copy(network)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(X), device=X.device)
        for lo in range(0, len(X), batch_size):
            idx = order[lo : lo + batch_size]
            optimizer.zero_grad()
            loss_fn(model(X[idx]), y[idx]).backward()
            optimizer.step()
        schedule.step()


def compare_fits(fits: dict, data: tuple, *, repeats: int, label: str = "setting") -> list[dict]:
    """Fit each ``name: (classifier, fit_params)`` of ``fits`` ``repeats`` times, the
    settings alternating so that all see the same load; report rows of the fastest fit,
    its ratio to the first setting's and the held-out accuracy.

    ``data`` is ``(X_train, X_test, y_train, y_test)``; ``label`` names the column of
    the settings.
    """
    X_train, X_test, y_train, y_test = data
    times: dict[str, list[float]] = {name: [] for name in fits}
    scores = {}
    for _ in range(repeats):
        for name, (clf, fit_params) in fits.items():
            start = time.perf_counter()
            clf.fit(X_train, y_train, **fit_params)
            times[name].append(time.perf_counter() - start)
            scores[name] = clf.score(X_test, y_test)
    baseline = min(times[next(iter(fits))])
    return [
        {label: name, "fit_s": min(times[name]), "ratio": min(times[name]) / baseline,
         "held_out_accuracy": scores[name]}
        for name in fits
    ]  # fmt: skip


def best_of(repeats: int, fn) -> float:
    """Fastest wall time of ``repeats`` calls: the least disturbed by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
