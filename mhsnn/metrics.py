"""Accuracy and calibration of spike-rate classifiers, by the common tools.

Predictive probabilities come from the output spike counts with add-one-half smoothing,
p_k = (count_k + 1/2) / (total + K/2): a silent network gives the uniform 1/K, a
network with one silent output never gives probability exactly 0 or 1 (so the NLL stays
finite), and the argmax is the same as the rates' (ties to class 0, as snn.predict).
The Bayesian model average (BMA) is the mean of these probabilities over posterior draws;
the vote fraction is the mean of each draw's one-hot decision (``votes``).

NLL and Brier are scikit-learn's ``log_loss`` and ``brier_score_loss`` (for two classes the
latter is the binary Brier score of class 1, half the sum over both classes); ECE is the
top-label expected calibration error with 15 equal-width bins; ``corp`` is the CORP
reliability curve (Dimitriadis, Gneiting and Jordan 2021): the isotonic (pool-adjacent-
violators) regression of top-label correctness on confidence, with a bootstrap band.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss


def probabilities(counts):
    """Smoothed class probabilities [..., K] from output spike counts [..., K]:
    (count_k + 1/2) / (total + K/2), which sums to 1 (for K = 2, (c + 1/2) / (total + 1))."""
    k = counts.shape[-1]
    return (counts + 0.5) / (jnp.sum(counts, axis=-1, keepdims=True) + 0.5 * k)


def predict(probs: np.ndarray) -> np.ndarray:
    """Class decision, ties to class 0."""
    return np.argmax(probs, axis=-1)


def _real(labels) -> np.ndarray:
    """The labels, refusing padding rows (negative labels: a padded test set whose mask was
    not applied), which would otherwise be scored as class 0 or as wrong."""
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("labels: negative values are padding rows; select the real rows "
                         "with the test mask first")
    return labels


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict(probs) == _real(labels)))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (scikit-learn's ``log_loss``)."""
    return float(log_loss(_real(labels), _float64(probs), labels=_classes(probs)))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Brier score (scikit-learn's ``brier_score_loss``; binary: of class 1)."""
    return float(brier_score_loss(_real(labels), _float64(probs), labels=_classes(probs)))


def _float64(probs) -> np.ndarray:
    """float64 rows summing to 1 to float64 precision (float32 sums are off by ~1e-7, which
    scikit-learn's check flags)."""
    p = np.asarray(probs, np.float64)
    return p / p.sum(axis=-1, keepdims=True)


def _classes(probs) -> list[int]:
    return list(range(np.shape(probs)[-1]))


def votes(counts):
    """One-hot decisions [..., K] from output counts [..., K] (ties to the lower class)."""
    k = counts.shape[-1]
    return (jnp.arange(k) == jnp.argmax(counts, axis=-1)[..., None]).astype(jnp.float32)


ECE_BINS = 15


def reliability(probs: np.ndarray, labels: np.ndarray, num_bins: int = ECE_BINS):
    """Per confidence bin on [0, 1]: (count, mean confidence, accuracy); confidence = max prob."""
    conf = np.max(probs, axis=-1)
    correct = predict(probs) == _real(labels)
    bins = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    count = np.bincount(bins, minlength=num_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(bins, conf, num_bins) / count
        acc = np.bincount(bins, correct, num_bins) / count
    return count, mean_conf, acc


def ece(probs: np.ndarray, labels: np.ndarray, num_bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over bins of |accuracy - confidence| x bin share."""
    count, mean_conf, acc = reliability(probs, labels, num_bins)
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(acc[filled] - mean_conf[filled])) / count.sum())


class CORP(NamedTuple):
    """A CORP reliability curve at the sorted confidences."""

    confidence: np.ndarray  # [n] sorted top-label confidences
    calibrated: np.ndarray  # [n] isotonic fit of correctness: the recalibrated probability
    band_low: np.ndarray  # [n] pointwise bootstrap band of the fit
    band_high: np.ndarray
    miscalibration: float  # MCB: Brier of the forecasts minus Brier of the recalibrated


def corp(probs: np.ndarray, labels: np.ndarray, level: float = 0.9, num_boot: int = 200,
         seed: int = 0) -> CORP:
    """CORP reliability of the top-label confidence (isotonic regression via scikit-learn),
    with a pointwise bootstrap band (rows resampled with replacement) at ``level``."""
    conf = np.max(probs, axis=-1).astype(np.float64)
    correct = (predict(probs) == labels).astype(np.float64)
    order = np.argsort(conf, kind="stable")
    conf, correct = conf[order], correct[order]

    def fit(x, y):
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)

    calibrated = fit(conf, correct).predict(conf)
    rng = np.random.default_rng(seed)
    boots = np.empty((num_boot, len(conf)))
    for b in range(num_boot):
        idx = rng.integers(0, len(conf), len(conf))
        boots[b] = fit(conf[idx], correct[idx]).predict(conf)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(boots, [alpha, 1.0 - alpha], axis=0)
    mcb = float(np.mean((conf - correct) ** 2) - np.mean((calibrated - correct) ** 2))
    return CORP(conf, calibrated, low, high, mcb)


def selective_accuracy(probs: np.ndarray, labels: np.ndarray, coverage: float) -> float:
    """Accuracy on the ``coverage`` share of rows the predictive is surest of: the
    ceil(coverage N) rows of lowest predictive entropy (ties kept in row order)."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage {coverage!r}: expected a share in (0, 1]")
    p = _float64(probs)
    entropy = -np.sum(p * np.log(np.clip(p, 1e-300, None)), axis=-1)
    keep = np.argsort(entropy, kind="stable")[:int(np.ceil(coverage * len(p)))]
    return float(np.mean(predict(p[keep]) == _real(labels)[keep]))


def scaled(log_probs: np.ndarray, factor: float) -> np.ndarray:
    """softmax(factor x ``log_probs``) over the last axis: a temperature 1 / factor applied
    to log-probabilities, or a softmax of ``factor`` x rates."""
    z = factor * np.asarray(log_probs, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def fit_factor(log_probs: np.ndarray, labels: np.ndarray, low: float = 1e-2,
               high: float = 1e3) -> float:
    """The factor in [low, high] whose ``scaled`` probabilities have the least NLL on these
    rows (held out from training: temperature scaling, Guo et al. 2017), by a bounded
    search over its logarithm (scipy)."""
    from scipy.optimize import minimize_scalar

    labels = _real(labels)

    def loss(log_factor):
        return nll(scaled(log_probs, float(np.exp(log_factor))), labels)

    found = minimize_scalar(loss, bounds=(np.log(low), np.log(high)), method="bounded")
    return float(np.exp(found.x))


def summary(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """test_accuracy, ece, nll, brier of one cell."""
    return {"test_accuracy": accuracy(probs, labels), "ece": ece(probs, labels),
            "nll": nll(probs, labels), "brier": brier(probs, labels)}
