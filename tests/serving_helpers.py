"""What the serving tests share: a tiny model file, image files, and the real server
(``python -m sklimg serve``) started in a new process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import numpy as np
from PIL import Image

import sklimg
from sklimg import ImageClassifier

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("red", "green", "blue")  # the dominant channel of each class
# The shared server's limits (tests/conftest.py): a request of all write_images' files
# fits, one more does not; a small body limit, so that going over it is cheap.
MAX_BATCH = 9
MAX_UPLOAD_MB = 1
SERVER_ARGS = ("--max-batch", MAX_BATCH, "--max-upload-mb", MAX_UPLOAD_MB, "--max-wait-ms", 100)


def colour_images(n: int, *, size=(10, 10), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy RGB ``uint8`` images whose class is their dominant colour."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, *size, 3)) * 80).astype(np.uint8)
    labels = np.array([CLASSES[i % 3] for i in range(n)])
    for i in range(n):
        images[i, ..., i % 3] += 170
    return images, labels


def train_model(path: Path) -> Path:
    """A tiny colour classifier with an unknown answer, saved in the safe format."""
    X, y = colour_images(90)
    clf = ImageClassifier(
        "test_cnn", max_epochs=6, lr=0.01, unknown="knn", random_state=0, batch_size=16
    )
    return sklimg.save(clf.fit(X, y), path)


def write_images(folder: Path) -> list[Path]:
    """Image files of the three colours: of the training size, larger, and grayscale."""
    folder.mkdir(parents=True, exist_ok=True)
    X, _ = colour_images(6, seed=1)
    paths = []
    for i, image in enumerate(X):
        path = folder / f"{i}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    big, _ = colour_images(2, size=(24, 16), seed=2)
    for i, image in enumerate(big):
        path = folder / f"big_{i}.jpg"
        Image.fromarray(image).save(path, quality=95)
        paths.append(path)
    gray = folder / "gray.png"
    Image.fromarray(X[0, ..., 0]).save(gray)
    return [*paths, gray]


def files_of_paths(paths) -> list:
    """Files for httpx2's ``files=``: form fields named ``file``, in order."""
    return [("file", (p.name, p.read_bytes())) for p in paths]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m sklimg serve MODEL ARGS`` on a free port, its output in a file."""

    def __init__(self, model: Path, *args, log: Path, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sklimg", "serve", str(model), "--port", str(self.port)]
                + [str(a) for a in args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sklimg serve exited: {self.output()}")
            try:
                if httpx2.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sklimg serve did not answer in {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
