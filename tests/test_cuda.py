"""The CUDA paths, on a GPU: ``SKLIMG_TEST_CUDA=1 pytest`` (``make test`` runs them where
torch sees a GPU). Everywhere else they skip: the rest of the suite runs on the CPU."""

import numpy as np
import pytest
import torch

import sklimg
from sklimg import ImageClassifier
from sklimg._training.net import bare_module

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def amp_fitted(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = ImageClassifier(max_epochs=3, amp=True, random_state=0).fit(X_train, y_train)
    return clf, X_test, y_test


def test_auto_trains_on_the_gpu_in_mixed_precision(amp_fitted):
    clf, X_test, y_test = amp_fitted
    assert clf.net_.amp and str(clf.net_.device).startswith("cuda")
    assert all(p.device.type == "cuda" for p in clf.net_.module_.parameters())
    assert clf.score(X_test, y_test) > 0.9  # 0.96 measured on an H100


def test_transform_is_the_head_input_to_bfloat16_rounding(amp_fitted):
    """``transform`` computes in float32; prediction under amp runs in bfloat16, so the
    head's probabilities on the features differ by rounding only (0.015 on an H100)."""
    clf, X_test, _ = amp_fitted
    features = clf.transform(X_test)
    assert features.dtype == np.float32
    head = bare_module(clf.net_).head
    with torch.inference_mode():
        logits = head(torch.from_numpy(features).to(clf.net_.device)).float()
    from_features = torch.softmax(logits, dim=1).cpu().numpy()
    proba = clf.predict_proba(X_test)
    # Close, and not equal: predict did run in bfloat16 (0.015 apart on an H100).
    assert 1e-4 < np.abs(from_features - proba).max() < 0.05
    assert (from_features.argmax(1) == proba.argmax(1)).mean() > 0.98


def test_a_model_trained_on_the_gpu_loads_and_trains_on_the_cpu(amp_fitted, tmp_path):
    clf, X_test, y_test = amp_fitted
    loaded = sklimg.load(sklimg.save(clf, tmp_path / "m.sklimg"), device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
    assert (loaded.predict(X_test) == clf.predict(X_test)).mean() > 0.98
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        loaded.partial_fit(X_test, y_test)  # mixed precision does not follow to the CPU
    loaded.set_params(amp=False).partial_fit(X_test, y_test)  # stays where it was loaded
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
