"""The likelihood objects against hand-computed values (numpy, no mhsnn code)."""

import numpy as np
import pytest

from mhsnn import likelihood, posterior

T, O = 5, 3
COUNTS = np.array([[[0, 5, 2], [3, 3, 0], [1, 0, 4], [5, 5, 5]]], np.float32)  # [1, N, O]
LABELS = np.array([1, 0, 2, 2])
TARGETS = np.eye(O, dtype=np.float32)[LABELS][None]  # [1, N, O]


def _settings(name, scale=4.0):
    return posterior.SNNSettings(sizes=(2, O), likelihood=name, softmax_scale=scale)


def test_mse_rows_sum_to_minus_the_mse_over_two_v_squared():
    v, rates = 0.5, COUNTS / T
    mse = np.mean((rates - TARGETS) ** 2)  # over rows and classes
    rows = posterior.row_log_likelihoods(COUNTS[:, None], TARGETS, T, 4, v, _settings("mse"))
    np.testing.assert_allclose(np.sum(rows), -mse / (2 * v * v), rtol=1e-6)


def test_categorical_rows_are_log_softmax_of_the_scaled_rates():
    z = 4.0 * COUNTS[0] / T
    log_softmax = z - np.log(np.exp(z).sum(-1, keepdims=True))
    rows = posterior.row_log_likelihoods(COUNTS[:, None], TARGETS, T, 4, 1.0,
                                         _settings("categorical"))
    np.testing.assert_allclose(np.asarray(rows)[0, 0], log_softmax[np.arange(4), LABELS],
                               rtol=1e-5)


def test_predictives_sum_to_one_and_follow_their_definitions():
    share = (COUNTS[0] + 0.5) / (COUNTS[0].sum(-1, keepdims=True) + 0.5 * O)
    np.testing.assert_allclose(posterior.predictive(COUNTS[0], _settings("mse"), T), share,
                               rtol=1e-6)
    z = 4.0 * COUNTS[0] / T
    soft = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    np.testing.assert_allclose(posterior.predictive(COUNTS[0], _settings("categorical"), T),
                               soft, rtol=1e-5)


def test_row_bounds_cover_every_possible_row_term():
    n, v = 4, 0.5
    worst = np.ones((1, 1, 1, O)) * T  # all classes firing on every step: the largest error
    for name in likelihood.NAMES:
        lik = _settings(name).lik
        rows = posterior.row_log_likelihoods(worst, TARGETS[:, :1], T, n, v, _settings(name))
        assert 0 < -float(np.asarray(rows).ravel()[0]) <= lik.row_bound(v, n, O)


def test_an_unknown_likelihood_is_a_one_line_error():
    with pytest.raises(ValueError, match="likelihood 'poisson': expected one of mse, categorical"):
        likelihood.of("poisson")
