"""The likelihood objects against hand-computed values (numpy, no mhsnn code)."""

import numpy as np
import pytest

from mhsnn import likelihood, posterior

T, O = 5, 3
COUNTS = np.array([[[0, 5, 2], [3, 3, 0], [1, 0, 4], [5, 5, 5]]], np.float32)  # [1, N, O]
LABELS = np.array([1, 0, 2, 2])
TARGETS = np.eye(O, dtype=np.float32)[LABELS][None]  # [1, N, O]


def _settings(name, scale=4.0, count_range=1.0):
    return posterior.SNNSettings(sizes=(2, O), likelihood=name, softmax_scale=scale,
                                 count_range=count_range)


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


def test_a_count_range_stretches_the_rates_onto_the_targets():
    """count_range r: the MSE compares counts / (r T) with the one-hot targets, and the
    categorical softmax takes scale / r; the Kalman methods observe the stretched rates."""
    v, r = 0.5, 0.6
    mse = np.mean((COUNTS / (r * T) - TARGETS) ** 2)
    rows = posterior.row_log_likelihoods(COUNTS[:, None], TARGETS, T, 4, v,
                                         _settings("mse", count_range=r))
    np.testing.assert_allclose(np.sum(rows), -mse / (2 * v * v), rtol=1e-6)
    z = 4.0 / r * COUNTS[0] / T
    log_softmax = z - np.log(np.exp(z).sum(-1, keepdims=True))
    rows = posterior.row_log_likelihoods(COUNTS[:, None], TARGETS, T, 4, 1.0,
                                         _settings("categorical", count_range=r))
    np.testing.assert_allclose(np.asarray(rows)[0, 0], log_softmax[np.arange(4), LABELS],
                               rtol=1e-5, atol=1e-6)  # float32 log-softmax
    np.testing.assert_allclose(_settings("mse", count_range=r).lik.observed(COUNTS / T),
                               COUNTS / (r * T), rtol=1e-6)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="count_range"):
            likelihood.of("mse", count_range=bad)


@pytest.mark.parametrize("count_range", [1.0, 0.4])
def test_row_bounds_cover_every_possible_row_term(count_range):
    n, v = 4, 0.5
    worst = np.ones((1, 1, 1, O)) * T  # all classes firing on every step: the largest error
    for name in likelihood.NAMES:
        settings = _settings(name, count_range=count_range)
        rows = posterior.row_log_likelihoods(worst, TARGETS[:, :1], T, n, v, settings)
        assert 0 < -float(np.asarray(rows).ravel()[0]) <= settings.lik.row_bound(v, n, O)


def test_an_unknown_likelihood_is_a_one_line_error():
    with pytest.raises(ValueError, match="likelihood 'poisson': expected one of mse, categorical"):
        likelihood.of("poisson")
