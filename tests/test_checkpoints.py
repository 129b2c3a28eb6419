"""Checkpoints: written after every epoch, resumed by a warm start of the same
configuration, refused for any other (sklimg._checkpoints)."""

import numpy as np
import pytest
import torch

from sklimg import ImageClassifier

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


def test_resume_from_checkpoint_continues_the_history(small_digits, tmp_path):
    X, y = small_digits
    params = dict(backbone="test_cnn", lr=0.01, random_state=0, checkpoint_dir=tmp_path)
    first = ImageClassifier(**params, max_epochs=2).fit(X, y)
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    # tta only changes predictions: resuming with another one is the same run.
    resumed = ImageClassifier(**params, max_epochs=4, warm_start=True, tta="flip").fit(X, y)
    assert len(resumed.history_) == 4
    assert resumed.history_[:2, "train_loss"] == first.history_[:, "train_loss"]
    # The schedule continued: epoch 3 starts where a 4-epoch cosine would be.
    full = ImageClassifier("test_cnn", lr=0.01, random_state=0, max_epochs=4).fit(X, y)
    assert resumed.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(
        full.net_.optimizer_.param_groups[0]["lr"], abs=1e-9
    )
    with pytest.raises(ValueError, match="written by a classifier with other parameters"):
        ImageClassifier(**{**params, "lr": 0.5}, max_epochs=4, warm_start=True).fit(X, y)


def test_a_checkpoint_that_cannot_be_resumed_fails_before_training(small_digits, tmp_path):
    X, y = small_digits
    params = dict(backbone="test_cnn", max_epochs=1, random_state=0, checkpoint_dir=tmp_path)
    ImageClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="with other parameters or classes"):
        ImageClassifier(**params, warm_start=True).fit(X, y % 3)  # other classes
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable sklimg checkpoint.*Delete it"):
        ImageClassifier(**params, warm_start=True).fit(X, y)


def test_resuming_a_finished_checkpoint_gives_the_finished_model(small_digits, tmp_path):
    X, y = small_digits
    params = dict(FAST, lr=0.01, checkpoint_dir=tmp_path)
    finished = ImageClassifier(**params).fit(X, y)
    resumed = ImageClassifier(**params, warm_start=True).fit(X, y)  # nothing left to train
    assert len(resumed.history_) == 2
    # BatchNorm statistics recomputed as at the end of training (over other shuffled
    # batches: close, not equal), not those of the checkpoint, written before (0.037
    # apart).
    np.testing.assert_allclose(resumed.predict_proba(X), finished.predict_proba(X), atol=0.01)


def test_the_digest_names_the_model_not_the_run():
    from sklimg._checkpoints import RESUMABLE_CHANGES, config_digest

    params = ImageClassifier(**FAST).get_params(deep=False)
    digest = config_digest(params, np.arange(3))
    run_only = {"max_epochs": 9, "verbose": 1, "device": "cpu", "tta": "flip", "warm_start": True}
    assert set(run_only) <= RESUMABLE_CHANGES
    assert config_digest({**params, **run_only}, np.arange(3)) == digest
    assert config_digest({**params, "mix": "cutmix"}, np.arange(3)) != digest
    assert config_digest(params, np.array(["a", "b", "c"])) != digest


def test_checkpoints_are_written_whole_and_read_back_safely(tmp_path):
    from skorch.history import History

    from sklimg._checkpoints import (
        PARTIAL_FIT_TAG,
        checkpoint_to_resume,
        load_checkpoint,
        write_checkpoint,
    )

    weights = {"w": torch.ones(2)}
    history = History([{"epoch": 1, "train_loss": np.float32(0.5)}])
    write_checkpoint(tmp_path, module=weights, optimizer={}, history=history, tag="t", best=weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temp files
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["tag"] == "t" and checkpoint["history"] == [{"epoch": 1, "train_loss": 0.5}]
    assert checkpoint_to_resume(tmp_path, "t")["module"]["w"].tolist() == [1.0, 1.0]
    assert load_checkpoint(tmp_path / "nowhere") is None
    with pytest.raises(ValueError, match="other parameters or classes"):
        checkpoint_to_resume(tmp_path, "another")
    write_checkpoint(tmp_path, module=weights, optimizer={}, history=history, tag=PARTIAL_FIT_TAG)
    with pytest.raises(ValueError, match="written by partial_fit"):
        checkpoint_to_resume(tmp_path, "t")
    torch.save({"module": weights}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="is not an sklimg checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable sklimg checkpoint"):
        load_checkpoint(tmp_path)
