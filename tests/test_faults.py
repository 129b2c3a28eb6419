"""Faults during work: Ctrl-C whenever it comes, a full disk, folders that cannot be
written, writers racing for one file, a process killed while saving. Nothing is lost
and nothing half-written is left behind."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sklimg
from sklimg import ImageClassifier
from sklimg._files import atomic_write
from sklimg.exceptions import TrainingInterruptedWarning

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(backbone="test_cnn", random_state=0)
X = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
Y = np.arange(40) % 2
# A folder no file can be created in, for root as for anyone: sysfs has no new files.
READ_ONLY = Path("/sys")
needs_sysfs = pytest.mark.skipif(not READ_ONLY.is_dir(), reason="Linux's /sys")


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------ Ctrl-C
_FORKS = {"count": 0, "interrupt_at": None}


def _interrupt_on_fork():
    """Ctrl-C at the worst moment: while a DataLoader worker is being forked, inside
    the fork hooks where Python drops exceptions."""
    _FORKS["count"] += 1
    if _FORKS["count"] == _FORKS["interrupt_at"]:
        signal.raise_signal(signal.SIGINT)


os.register_at_fork(after_in_parent=_interrupt_on_fork)


@pytest.fixture
def _python_ctrl_c():
    """Python's own SIGINT handler (KeyboardInterrupt), whatever earlier tests set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("_python_ctrl_c")
def test_ctrl_c_while_workers_start_stops_training(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(32):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(paths[-1])
    _FORKS.update(count=0, interrupt_at=3)  # a worker of the second epoch
    try:
        with pytest.warns(TrainingInterruptedWarning, match=r"interrupted after \d complete"):
            clf = ImageClassifier(**FAST, max_epochs=6, num_workers=1, batch_size=16).fit(
                paths, np.arange(32) % 2
            )
    finally:
        _FORKS["interrupt_at"] = None
    assert len(clf.history_) < 6
    assert clf.predict(paths[:2]).shape == (2,)


def test_ctrl_c_a_moment_after_an_epoch_of_sklimg_train_is_never_lost(tmp_path):
    """SIGINT sent to ``sklimg train`` on files 0-20 ms after it prints an epoch's line,
    as the next epoch's workers start: the command stops early every time."""
    for label, value in (("dark", 40), ("light", 200)):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(16):
            pixels = np.full((8, 8), value, np.uint8) + np.uint8(i)
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{i}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "sklimg", "train", str(tmp_path / "data")]
    command += ["--backbone", "test_cnn", "--epochs", "40", "--workers", "1"]
    command += ["--batch-size", "8", "--out", str(tmp_path / "m.sklimg")]
    for delay in (0.0, 0.01, 0.02):
        train = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # A child inherits an ignored SIGINT: start it as from a shell, whatever
            # a library in this test process set.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        for line in train.stdout:  # the table of epochs: "      2       0.69 ..."
            if line.split()[:1] == ["2"]:
                time.sleep(delay)
                train.send_signal(signal.SIGINT)
                break
        _, err = train.communicate(timeout=300)
        # Interrupted training keeps its weights: the command saves them and says so.
        assert train.returncode == 0, (delay, err)
        assert "interrupted after" in err, (delay, err)
        assert sklimg.load(tmp_path / "m.sklimg").history_[-1, "epoch"] < 40


# ------------------------------------------------------------------ a full disk
_FULL_DISK = """
import json, resource, signal, sys
import numpy as np, torch
from pathlib import Path
from skorch.callbacks import Callback
from sklimg import ImageClassifier

class FillDiskAt(Callback):
    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 3:  # the disk fills up during epoch 3
            # Writes beyond 1 kB fail as on a full disk (EFBIG instead of ENOSPC).
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))

X = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
folder = Path(sys.argv[1])
clf = ImageClassifier("test_cnn", max_epochs=5, random_state=0, checkpoint_dir=folder,
                      callbacks=[FillDiskAt()])
try:
    clf.fit(X, np.arange(40) % 2)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print(json.dumps({
    "error": error,
    "epochs": len(clf.history_),
    "predicts": clf.predict(X[:4]).shape[0],
    "files": sorted(p.name for p in folder.iterdir()),
    "last_epochs": len(torch.load(folder / "last.pt", weights_only=True)["history"]),
}))
"""


def test_a_full_disk_while_checkpointing_keeps_the_last_good_weights(tmp_path):
    """In a process of its own: the file size limit that plays the full disk would
    stop pytest's own output too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["error"].startswith("CheckpointError: Could not write the checkpoint of epoch 3")
    assert "keeps the weights from the end of epoch 3" in result["error"]
    assert result["epochs"] == 3 and result["predicts"] == 4  # fitted, epoch 3's weights
    assert result["files"] == ["best.pt", "last.pt"]  # nothing partial
    assert result["last_epochs"] == 2  # the last checkpoint, whole


# ------------------------------------------------------------------ folders not writable
@needs_sysfs
def test_a_checkpoint_dir_that_cannot_be_written_is_refused_before_training():
    with pytest.raises(ValueError, match="cannot hold checkpoints"):
        ImageClassifier(**FAST, max_epochs=1, checkpoint_dir=READ_ONLY / "run").fit(X, Y)


@needs_sysfs
def test_a_feature_cache_that_cannot_be_written_is_refused_before_training():
    clf = ImageClassifier("hog", memory=READ_ONLY / "cache")
    with pytest.raises(ValueError, match="cannot hold the feature cache"):
        clf.fit(np.zeros((4, 16, 16), np.uint8), [0, 1, 0, 1])


@needs_sysfs
def test_save_to_a_folder_that_cannot_be_written_says_so():
    clf = ImageClassifier(**FAST, max_epochs=1).fit(X, Y)
    with pytest.raises(PermissionError, match="no file can be created in '/sys'"):
        sklimg.save(clf, READ_ONLY / "m.sklimg")


# ------------------------------------------------------------------ writers racing
def test_fits_sharing_a_checkpoint_dir_in_threads_both_finish(tmp_path):
    errors, fitted = [], []

    def fit(seed):
        try:
            clf = ImageClassifier(
                "test_cnn", max_epochs=4, random_state=seed, checkpoint_dir=tmp_path
            )
            fitted.append(clf.fit(X, Y))
        except Exception as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(seed,)) for seed in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(fitted) == 2
    assert _leftovers(tmp_path) == []
    torch.load(tmp_path / "last.pt", weights_only=True)  # whole


@pytest.fixture(scope="module")
def big_model(tmp_path_factory):
    """A fitted resnet18, saved (45 MB): a save takes long enough to be killed in."""
    clf = ImageClassifier("resnet18", max_epochs=1, batch_size=4, random_state=0).fit(
        np.zeros((8, 32, 32, 3), np.uint8), np.arange(8) % 2
    )
    return sklimg.save(clf, tmp_path_factory.mktemp("big") / "resnet18.sklimg")


# Saves the model of argv[1] to argv[2], argv[3] times, after saying it is ready.
_SAVER = """
import sys, sklimg
model = sklimg.load(sys.argv[1])
print("ready", flush=True)
for _ in range(int(sys.argv[3])):
    sklimg.save(model, sys.argv[2])
"""


def _saving(model, path, times) -> subprocess.Popen:
    """A process that saves ``model`` to ``path`` ``times`` times, once it is ready."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    saver = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(model), str(path), str(times)],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert saver.stdout.readline() == "ready\n"
    return saver


def test_processes_saving_one_path_at_once_all_succeed(big_model, tmp_path):
    path = tmp_path / "m.sklimg"
    savers = [_saving(big_model, path, 3) for _ in range(2)]
    assert [saver.wait(timeout=300) for saver in savers] == [0, 0]
    for saver in savers:
        saver.stdout.close()
    assert sklimg.load(path).predict(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2,)
    assert _leftovers(tmp_path) == []


def test_sigkill_during_save_leaves_no_corrupt_file_and_nothing_behind(big_model, tmp_path):
    """Killed at 5 moments while saving over and over: the model file is always whole,
    and the temporary files of the killed processes go at the next save. Every other
    kill waits for a write to be under way (on a loaded machine, serialising the
    weights can take most of each save, so random moments alone may all miss it)."""
    path = tmp_path / "m.sklimg"
    shutil.copy(big_model, path)  # the file a kill must not damage
    rng = np.random.default_rng(0)
    killed_while_writing = 0
    for attempt in range(5):
        saver = _saving(big_model, path, 1000)
        if attempt % 2 == 0:
            deadline = time.monotonic() + 60
            while not _leftovers(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.05) if attempt % 2 == 0 else rng.uniform(0.05, 0.5))
        killed_while_writing += bool(_leftovers(tmp_path))
        saver.send_signal(signal.SIGKILL)
        saver.wait(timeout=60)
        saver.stdout.close()
        model = sklimg.load(path)  # whole: the old file or the new one
    assert killed_while_writing >= 1, "no kill landed during a write; lengthen the run"
    sklimg.save(model, path)
    assert _leftovers(tmp_path) == []


def test_a_running_writers_temporary_file_is_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    with atomic_write(path) as tmp:
        tmp.write_text("first")
        with atomic_write(path) as other:  # another writer of the same file, meanwhile
            other.write_text("second")
        assert tmp.exists()
    assert path.read_text() == "first" and _leftovers(tmp_path) == []
