"""Accuracy and calibration of spike-rate classifiers.

Predictive probabilities come from the output spike counts with add-one-half smoothing,
p_k = (count_k + 1/2) / (count_0 + count_1 + 1): a silent network gives [0.5, 0.5], a
network with one silent output never gives probability exactly 0 or 1 (so the NLL stays
finite), and the argmax is the same as the rates' (ties to class 0, as snn.predict).
The Bayesian model average (BMA) is the mean of these probabilities over posterior draws.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def probabilities(counts):
    """Smoothed class probabilities [..., 2] from output spike counts [..., 2]."""
    return (counts + 0.5) / (jnp.sum(counts, axis=-1, keepdims=True) + 1.0)


def predict(probs: np.ndarray) -> np.ndarray:
    """Class decision, ties to class 0."""
    return np.argmax(probs, axis=-1)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict(probs) == labels))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = np.take_along_axis(np.asarray(probs, np.float64), labels[:, None], axis=-1)[:, 0]
    return float(-np.mean(np.log(p)))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error between the probabilities and the one-hot labels (summed over classes)."""
    onehot = np.eye(probs.shape[-1])[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=-1)))


def reliability(probs: np.ndarray, labels: np.ndarray, num_bins: int = 10):
    """Per confidence bin on [0, 1]: (count, mean confidence, accuracy); confidence = max prob."""
    conf = np.max(probs, axis=-1)
    correct = predict(probs) == labels
    bins = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    count = np.bincount(bins, minlength=num_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(bins, conf, num_bins) / count
        acc = np.bincount(bins, correct, num_bins) / count
    return count, mean_conf, acc


def ece(probs: np.ndarray, labels: np.ndarray, num_bins: int = 10) -> float:
    """Expected calibration error: sum over bins of |accuracy - confidence| x bin share."""
    count, mean_conf, acc = reliability(probs, labels, num_bins)
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(acc[filled] - mean_conf[filled])) / count.sum())


def summary(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """test_accuracy, ece, nll, brier of one cell."""
    return {"test_accuracy": accuracy(probs, labels), "ece": ece(probs, labels),
            "nll": nll(probs, labels), "brier": brier(probs, labels)}
