"""What the command-line tests share: image folders written here, and running the
command in this process or in a new one."""

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sklimg.cli import main
from sklimg.datasets import load_image_folder

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("blue", "green", "red")

# test_cnn learns these colour classes in a few epochs; --workers 0 decodes in this
# process, which is faster than starting a worker for 24 tiny files.
FAST = ["--backbone", "test_cnn", "--epochs", "4", "--lr", "0.01", "--seed", "0"]


def write_folder(root: Path, *, n=8, size=(10, 10), seed=0, classes=CLASSES) -> Path:
    """Noisy RGB images whose class is their dominant colour: root/<class>/<i>.png."""
    rng = np.random.default_rng(seed)
    for k, label in enumerate(classes):
        (root / label).mkdir(parents=True)
        for i in range(n):
            image = (rng.random((*size, 3)) * 80).astype(np.uint8)
            image[..., k % 3] += 170
            Image.fromarray(image).save(root / label / f"{i}.png")
    return root


def run(*args) -> tuple[int, str, str]:
    """``main(args)`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def run_module(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m sklimg args`` in a new process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "sklimg", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def assert_one_line_error(code, out, err, match, status=1):
    assert code == status, (out, err)
    assert err.startswith("sklimg: error: ")
    assert err.count("\n") == 1, err  # one line
    assert "Traceback" not in err
    assert match in err, err


def sorted_paths(root):
    """The files of an image folder, in the order the command reads them."""
    return list(load_image_folder(root)[0])
