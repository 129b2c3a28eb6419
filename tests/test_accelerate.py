"""Training through Hugging Face accelerate: one process here, two under torchrun."""

import json
import math
import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

import sklimg
from sklimg import ImageClassifier
from sklimg._training.callbacks import weight_average
from sklimg._training.net import AcceleratedImageNet
from sklimg.datasets import load_digits_images

accelerate = pytest.importorskip("accelerate")

PARAMS = dict(backbone="test_cnn", max_epochs=4, batch_size=32, lr=0.01, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images(return_X_y=True)
    return X[:1000], y[:1000], X[1000:1400], y[1000:1400]


def test_trains_and_predicts_through_an_accelerator(digits, tmp_path):
    X_train, y_train, X_test, y_test = digits
    clf = ImageClassifier(**PARAMS, accelerator=accelerate.Accelerator(cpu=True))
    clf.fit(X_train, y_train)
    assert isinstance(clf.net_, AcceleratedImageNet)
    assert clf.score(X_test, y_test) >= 0.8
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    # The same training without accelerate: the accelerator changes where, not what.
    plain = ImageClassifier(**PARAMS).fit(X_train, y_train)
    assert abs(plain.score(X_test, y_test) - clf.score(X_test, y_test)) < 0.05

    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_allclose(loaded.predict_proba(X_test), proba, atol=1e-6)
    sklimg.save(clf, tmp_path / "model.sklimg")
    restored = sklimg.load(tmp_path / "model.sklimg")
    assert restored.accelerator is None
    np.testing.assert_allclose(restored.predict_proba(X_test), proba, atol=1e-5)
    # Test-time augmentation goes through the accelerated net's prediction as well.
    flipped = clf.set_params(tta="flip").predict_proba(X_test)
    assert np.abs(flipped - proba).max() > 1e-3
    np.testing.assert_allclose(
        flipped, restored.set_params(tta="flip").predict_proba(X_test), atol=1e-5
    )
    assert clone(clf).accelerator is not None


def test_weights_per_image_reach_the_accelerated_loss(digits):
    X_train, y_train, X_test, _ = digits
    accelerator = accelerate.Accelerator(cpu=True)
    weights = np.where(y_train == 3, 0.0, 1.0)  # images of 3 are not learned
    clf = ImageClassifier(**PARAMS, accelerator=accelerator, validation_fraction=0.2)
    clf.fit(X_train, y_train, sample_weight=weights)
    assert (clf.predict(X_test) == 3).sum() == 0
    assert 0.5 < clf.history_[-1, "valid_acc"] <= 0.9  # labels, not weights, scored


def test_batches_are_mixed_and_weights_averaged_through_an_accelerator(digits):
    X_train, y_train, X_test, y_test = digits
    accelerator = accelerate.Accelerator(cpu=True)
    params = dict(PARAMS, mix="cutmix", ema_decay=0.9)
    mixed = ImageClassifier(**params, accelerator=accelerator).fit(X_train, y_train)
    # skorch's mixin has a training step of its own: mixing must reach it too. The
    # accelerator changes where the same training runs, not what it computes.
    loss = mixed.history_[-1, "train_loss"]
    plain = ImageClassifier(**params).fit(X_train, y_train)
    assert loss == pytest.approx(plain.history_[-1, "train_loss"], rel=0.2)
    unmixed = ImageClassifier(**PARAMS).fit(X_train, y_train)
    assert loss > 2 * unmixed.history_[-1, "train_loss"]
    assert mixed.score(X_test, y_test) >= 0.7
    # The weight average follows the unwrapped network, and is what the model keeps.
    average = weight_average(mixed.net_)
    assert average.updates_ == 4 * math.ceil(len(X_train) / 32)
    for name, value in average.average_.module.named_parameters():
        torch.testing.assert_close(dict(mixed.net_.module_.named_parameters())[name], value)


def test_partial_fit_through_an_accelerator(digits):
    X_train, y_train, X_test, y_test = digits
    clf = ImageClassifier(**PARAMS, accelerator=accelerate.Accelerator(cpu=True))
    for _ in range(3):
        for part in np.array_split(np.arange(len(y_train)), 2):
            clf.partial_fit(X_train[part], y_train[part], classes=np.arange(10))
    assert isinstance(clf.net_, AcceleratedImageNet) and len(clf.history_) == 6
    plain = ImageClassifier(**PARAMS)
    for _ in range(3):
        for part in np.array_split(np.arange(len(y_train)), 2):
            plain.partial_fit(X_train[part], y_train[part], classes=np.arange(10))
    assert abs(plain.score(X_test, y_test) - clf.score(X_test, y_test)) < 0.05


def test_learning_rate_range_test_through_an_accelerator(digits):
    from sklimg.lr_finder import find_lr

    X_train, y_train, _, _ = digits
    accelerated = ImageClassifier(**PARAMS, accelerator=accelerate.Accelerator(cpu=True))
    result = find_lr(accelerated, X_train, y_train)
    plain = find_lr(ImageClassifier(**PARAMS), X_train, y_train)
    assert 1 / 3 < result.suggestion / plain.suggestion < 3
    assert not hasattr(accelerated, "net_")


def test_bad_accelerator_settings_are_refused_before_training(digits):
    X_train, y_train, _, _ = digits
    accelerator = accelerate.Accelerator(cpu=True)
    with pytest.raises(InvalidParameterError, match="'accelerator' parameter"):
        ImageClassifier(**PARAMS, accelerator="cuda").fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"amp=True and an accelerator.*mixed_precision"):
        ImageClassifier(**PARAMS, accelerator=accelerator, amp=True).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"device='cpu' and an accelerator.*device='auto'"):
        ImageClassifier(**PARAMS, accelerator=accelerator, device="cpu").fit(X_train, y_train)


SCRIPT = """
import json, sys, zlib
import numpy as np, torch
from accelerate import Accelerator
from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images

torch.set_num_threads(1)
X, y = load_digits_images(return_X_y=True)
accelerator = Accelerator(cpu=True)
clf = ImageClassifier(**PARAMS, accelerator=accelerator).fit(X[:1000], y[:1000])
pred = clf.predict(X[1000:1400])
weights = torch.cat([p.detach().flatten() for p in clf.net_.module_.parameters()])
# A warm start wraps the network again: the processes stay in step.
clf.set_params(warm_start=True, max_epochs=2).fit(X[:1000], y[:1000])
warm = torch.cat([p.detach().flatten() for p in clf.net_.module_.parameters()])
# One-cycle counts each process's steps: its schedule runs to its end.
onecycle = ImageClassifier(**PARAMS, lr_schedule="onecycle", accelerator=accelerator)
schedule = dict(onecycle.fit(X[:1000], y[:1000]).net_.callbacks_)["lr_scheduler"].lr_scheduler_
try:
    ImageClassifier(**PARAMS, finetune="gradual", accelerator=accelerator).fit(X[:50], y[:50])
    gradual = None
except ValueError as exc:
    gradual = str(exc)
result = {
    "rank": accelerator.process_index,
    "processes": accelerator.num_processes,
    "batches_per_epoch": len(clf.history_[-1, "batches"]),
    "weights": zlib.crc32(weights.numpy().tobytes()),
    "warm_weights": zlib.crc32(warm.numpy().tobytes()),
    "warm_changed": bool((warm != weights).any()),
    "n_pred": len(pred),
    "pred": zlib.crc32(pred.tobytes()),
    "accuracy": float((pred == y[1000:1400]).mean()),
    "gradual": gradual,
    "onecycle_steps": [schedule.last_epoch, schedule.total_steps],
}
# One file per process: their stdout streams interleave.
with open(f"rank{accelerator.process_index}.json", "w") as out:
    json.dump(result, out)
"""


def _on_two_processes(script: str, params: dict, folder) -> list[dict]:
    """Run ``script`` (with ``**PARAMS`` standing for ``params``) in two processes
    started by torchrun; what each wrote to ``rank<N>.json``."""
    path = folder / "script.py"
    path.write_text(textwrap.dedent(script).replace("**PARAMS", f"**{params!r}"))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node", "2", str(path)],
        capture_output=True, text=True, timeout=300, cwd=folder,
        # CPU processes even beside a GPU: accelerate would put rank 1 on a second GPU.
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def test_data_parallel_training_on_two_cpu_processes(tmp_path):
    """torchrun starts two processes (gloo on the CPU, as NCCL would on GPUs): each
    trains on half of every epoch's batches, their weights stay identical, and each
    gets every prediction."""
    # Each process takes half the steps of one process alone: twice the epochs.
    params = {**PARAMS, "max_epochs": 2 * PARAMS["max_epochs"]}
    ranks = _on_two_processes(SCRIPT, params, tmp_path)
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    first, second = ranks
    assert first["processes"] == second["processes"] == 2
    # 1,000 images in batches of 32: 32 batches an epoch, 16 per process.
    assert first["batches_per_epoch"] == second["batches_per_epoch"] == 16
    assert first["weights"] == second["weights"]
    assert first["warm_weights"] == second["warm_weights"]
    assert first["warm_changed"]
    assert first["n_pred"] == second["n_pred"] == 400
    assert first["pred"] == second["pred"]
    assert first["accuracy"] >= 0.8
    assert "cannot run on 2 processes" in first["gradual"]
    epochs = params["max_epochs"]
    assert first["onecycle_steps"] == second["onecycle_steps"] == [16 * epochs, 16 * epochs]


SPLIT_SCRIPT = """
import json
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from sklimg import ImageClassifier
from sklimg.datasets import load_digits_images

torch.set_num_threads(1)
X, y = load_digits_images(return_X_y=True)
# Every batch split between the processes: each sees all of an epoch's batches.
accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True))
clf = ImageClassifier(**PARAMS, lr_schedule="onecycle", accelerator=accelerator)
schedule = dict(clf.fit(X[:1000], y[:1000]).net_.callbacks_)["lr_scheduler"].lr_scheduler_
with open(f"rank{accelerator.process_index}.json", "w") as out:
    json.dump({"batches": len(clf.history_[-1, "batches"]),
               "steps": [schedule.last_epoch, schedule.total_steps]}, out)
"""


def test_one_cycle_over_batches_split_between_two_processes(tmp_path):
    epochs = PARAMS["max_epochs"]
    for record in _on_two_processes(SPLIT_SCRIPT, PARAMS, tmp_path):
        # 1,000 images in batches of 32: all 32 batches an epoch on each process.
        assert record == {"batches": 32, "steps": [32 * epochs, 32 * epochs]}
