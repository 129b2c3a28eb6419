"""The calibration error and its bins, against values computed by hand."""

import numpy as np
import pytest

from sklimg.metrics import expected_calibration_error, reliability_bins


def test_calibration_error_by_hand():
    # Confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (right), each alone in its
    # bin: gaps 0.1, 0.8, 0.3, 0.4.
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    assert expected_calibration_error(["a", "b", "b", "b"], proba, ["a", "b"]) == pytest.approx(0.4)
    # One bin: mean confidence 0.75 against accuracy 0.75.
    assert expected_calibration_error([0, 1, 1, 1], proba, [0, 1], n_bins=1) == pytest.approx(0)


def test_bins_count_every_image_once_including_certain_ones():
    proba = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    bins = reliability_bins([0, 0, 1], proba, [0, 1], n_bins=2)
    np.testing.assert_array_equal(bins.counts, [1, 2])
    np.testing.assert_allclose(bins.accuracy, [1.0, 1.0])
    np.testing.assert_allclose(bins.confidence, [0.5, 1.0])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="one column per class"):
        reliability_bins([0, 1], np.ones((2, 3)) / 3, [0, 1])
    with pytest.raises(ValueError, match="n_bins must be a positive int"):
        reliability_bins([0, 1], np.ones((2, 2)) / 2, [0, 1], n_bins=0)
