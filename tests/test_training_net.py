"""The skorch net (sklimg._training.net): what a skorch or PyTorch user does with
clf.net_ works (its module in eval mode after training, predictions on the module's
batches, get_params and clone), and prediction runs under inference mode."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

import sklimg
from sklimg import ImageClassifier
from sklimg._torch_data import images_to_tensor
from sklimg.exceptions import ImageInputError
from sklimg.utils.validation import check_images

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


def test_skorch_scoring_without_caching_sees_the_images_and_labels(small_digits, tmp_path):
    """skorch's EpochScoring(use_caching=False) predicts again from the dataset's X and
    scores against its y: in memory and from files, as the cached valid_acc does."""
    from PIL import Image
    from skorch.callbacks import EpochScoring

    X, y = small_digits
    paths = []
    for i, image in enumerate(np.round(X * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    for data in (X, np.array(paths)):
        scoring = [
            EpochScoring("accuracy", name="again_acc", on_train=False, use_caching=False),
            EpochScoring("accuracy", name="train_again_acc", on_train=True, use_caching=False),
        ]
        clf = ImageClassifier(
            "test_cnn", max_epochs=2, lr=0.01, validation_fraction=0.2, callbacks=scoring,
            num_workers=0, random_state=0,
        )  # fmt: skip
        clf.fit(data, y, sample_weight=np.ones(len(y)))
        np.testing.assert_allclose(clf.history_[:, "again_acc"], clf.history_[:, "valid_acc"])
        assert all(0 < acc <= 1 for acc in clf.history_[:, "train_again_acc"])


def test_prediction_runs_in_inference_mode(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    from sklimg._torch_data import ImageTensorDataset, images_to_tensor

    dataset = ImageTensorDataset(images_to_tensor(X[:, :, :, None]))
    # device=None: the logits as computed, not copied to the CPU afterwards.
    batches = clf.net_.forward_iter(dataset, device=None)
    assert all(logits.is_inference() for logits in batches)


def _batches(X) -> torch.Tensor:
    """Images as the module takes them: (N, C, H, W)."""
    return images_to_tensor(check_images(X))


@pytest.mark.parametrize(
    "how",
    ["fit", "warm start", "partial_fit", "resumed", "loaded"],
)
def test_the_network_is_left_in_eval_mode(small_digits, tmp_path, how):
    """A user's own forward pass after training must not update BatchNorm statistics
    (in train mode it does, and later predictions change)."""
    X, y = small_digits
    clf = ImageClassifier(**FAST, checkpoint_dir=tmp_path / "checkpoints")
    if how == "partial_fit":
        clf.partial_fit(X, y, classes=np.unique(y))
    else:
        clf.fit(X, y)
    if how == "warm start":
        clf.set_params(warm_start=True).fit(X, y)
    if how == "resumed":  # every epoch done: only what follows the last one runs
        clf = ImageClassifier(**FAST, checkpoint_dir=tmp_path / "checkpoints", warm_start=True)
        clf.fit(X, y)
    if how == "loaded":
        clf = sklimg.load(sklimg.save(clf, tmp_path / "m.sklimg"))
    assert not clf.net_.module_.training
    before = clf.predict_proba(X)
    with torch.no_grad():
        clf.net_.module_(_batches(X))
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_the_net_predicts_batches_as_its_module_takes_them(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST).fit(X, y)
    for batches in (_batches(X), _batches(X).numpy()):
        np.testing.assert_allclose(clf.net_.predict_proba(batches), clf.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(clf.net_.predict(_batches(X)), clf.predict(X))
    with pytest.raises(ImageInputError, match=r"\(N, 1, 8, 8\).*got shape \(300, 8, 8\)"):
        clf.net_.predict_proba(X)
    rgb = ImageClassifier(**FAST).fit(np.repeat(X[..., None], 3, axis=-1), y)
    with pytest.raises(ImageInputError, match="These look channels last: np.moveaxis"):
        rgb.net_.predict_proba(np.repeat(X[..., None], 3, axis=-1))


def test_the_net_is_configured_through_its_constructor(small_digits):
    """skorch's get_params, set_params and clone see sklimg's settings of the net, and
    none of its state while it trains."""
    X, y = small_digits
    clf = ImageClassifier(**FAST, mix="mixup", mix_alpha=0.3, gradient_accumulation_steps=2)
    clf.fit(X, y)
    params = clf.net_.get_params(deep=False)
    assert (params["mix"], params["mix_alpha"], params["accumulation_steps"]) == ("mixup", 0.3, 2)
    assert params["amp"] is False and params["tta"] is None and params["incremental"] is False
    assert not any(name.endswith("_") for name in params)
    copy = clone(clf.net_)
    assert (copy.mix, copy.mix_alpha, copy.accumulation_steps) == ("mixup", 0.3, 2)
    assert copy.set_params(mix="cutmix").mix == "cutmix"
