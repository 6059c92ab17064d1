"""Calibration metrics: scikit-learn's definitions, a hand ECE, CORP on calibrated data."""

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from mhsnn import metrics


def test_nll_brier_follow_scikit_learn_and_probabilities_sum_to_one():
    rng = np.random.default_rng(0)
    for k in (2, 3, 10):
        p = rng.dirichlet(np.ones(k), 50)
        y = rng.integers(0, k, 50)
        assert metrics.nll(p, y) == pytest.approx(log_loss(y, p, labels=list(range(k))))
        assert metrics.brier(p, y) == pytest.approx(
            brier_score_loss(y, p, labels=list(range(k))))
        counts = rng.integers(0, 11, (50, k)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(metrics.probabilities(counts)).sum(-1), 1.0,
                                   rtol=1e-6)
    silent = np.asarray(metrics.probabilities(np.zeros((1, 4), np.float32)))
    np.testing.assert_allclose(silent, 0.25)


def test_ece_by_hand():
    # Confidences 0.55 (bin 8 of 15) x2, one right; 0.95 (bin 14) x2, both right.
    p = np.array([[0.55, 0.45], [0.45, 0.55], [0.95, 0.05], [0.05, 0.95]])
    y = np.array([0, 0, 0, 1])
    expected = 0.5 * abs(0.5 - 0.55) + 0.5 * abs(1.0 - 0.95)
    assert metrics.ece(p, y) == pytest.approx(expected)


def _calibrated(n, rng):
    conf = rng.uniform(0.5, 1.0, n)
    correct = rng.uniform(size=n) < conf
    y = np.where(correct, 0, 1)
    return np.stack([conf, 1 - conf], -1), y


def test_corp_is_monotone_and_scores_zero_on_perfect_calibration():
    rng = np.random.default_rng(1)
    c = metrics.corp(*_calibrated(400, rng), num_boot=20)
    assert np.all(np.diff(c.calibrated) >= -1e-12)
    # Perfect by construction: at confidence 0.6 exactly 60% right, at 0.8 exactly 80%.
    conf = np.repeat([0.6, 0.8], 10)
    correct = np.r_[np.ones(6), np.zeros(4), np.ones(8), np.zeros(2)].astype(bool)
    p = np.stack([conf, 1 - conf], -1)
    c = metrics.corp(p, np.where(correct, 0, 1), num_boot=10)
    np.testing.assert_allclose(c.calibrated, conf)
    assert c.miscalibration == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_band_covers_the_diagonal_about_as_often_as_its_level():
    rng = np.random.default_rng(2)
    covered = []
    for _ in range(20):
        c = metrics.corp(*_calibrated(300, rng), level=0.9, num_boot=100,
                         seed=int(rng.integers(1 << 30)))
        inner = (c.confidence > 0.6) & (c.confidence < 0.9)  # away from the clipped ends
        hit = (c.band_low <= c.confidence) & (c.confidence <= c.band_high)
        covered.append(np.mean(hit[inner]))
    assert 0.7 <= np.mean(covered) <= 0.99


def test_selective_accuracy_keeps_the_surest_rows_by_hand():
    # entropies: row 0 certain-ish, row 1 uniform, row 2 sure, row 3 middling
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.99, 0.01], [0.3, 0.7]])
    labels = np.array([1, 0, 0, 1])  # row 0 wrong, rows 2 and 3 right, row 1 right (tie: 0)
    assert metrics.selective_accuracy(probs, labels, 0.25) == 1.0  # row 2
    assert metrics.selective_accuracy(probs, labels, 0.5) == 0.5  # rows 2, 0
    assert metrics.selective_accuracy(probs, labels, 0.75) == pytest.approx(2 / 3)  # + row 3
    assert metrics.selective_accuracy(probs, labels, 1.0) == 0.75
    with pytest.raises(ValueError, match="coverage 0"):
        metrics.selective_accuracy(probs, labels, 0)


def test_fit_factor_recovers_the_temperature_that_made_the_labels():
    """Labels drawn from softmax(3 z): the NLL-minimising factor on z is near 3, and
    ``scaled`` is the softmax of the scaled logits."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 4))
    truth = metrics.scaled(z, 3.0)
    np.testing.assert_allclose(truth, np.exp(3 * z) / np.exp(3 * z).sum(-1, keepdims=True))
    labels = np.array([rng.choice(4, p=p) for p in truth])
    assert metrics.fit_factor(z, labels) == pytest.approx(3.0, rel=0.1)
