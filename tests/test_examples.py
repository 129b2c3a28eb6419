"""Every example and benchmark runs, in quick mode, as a plain script: none can rot."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sklimg.datasets import DatasetNotFoundError, load_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))


def _run(args, tmp_path):
    env = {
        **os.environ,
        "SKLIMG_QUICK": "1",
        "SKLIMG_DEMO_DIR": str(tmp_path),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "2",
    }
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    result = _run([str(script)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    if script.name == "demo.py":  # the main job: reports, saves, reloads, predicts
        assert "held-out accuracy: 0." in result.stdout
        assert "images/s" in result.stdout
        assert "predicted" in result.stdout
        assert (tmp_path / "digits_classifier.joblib").is_file()


def _fashion_mnist_installed() -> bool:
    try:
        load_fashion_mnist(download=False, return_X_y=True)
    except DatasetNotFoundError:
        return False
    return True


# gpu.py measures the CUDA paths; fashion_mnist.py needs its data (make installs the
# Debian package where it can).
MARKS = {
    "gpu.py": pytest.mark.cuda,
    "fashion_mnist.py": pytest.mark.skipif(
        not _fashion_mnist_installed(), reason="Fashion-MNIST files not installed"
    ),
}


@pytest.mark.parametrize(
    "script",
    [pytest.param(p, marks=MARKS.get(p.name, ()), id=p.name) for p in BENCHMARKS],
)
def test_benchmark_quick_mode(script, tmp_path):
    result = _run([str(script), "--quick"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"benchmark":' in result.stdout.splitlines()[-1]
