"""Known answers for the samplers meant for wide networks (mhsnn.mcmc.ensemble, da, ess, pcn,
smc)
on Gaussian problems whose posterior and evidence are analytic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from mhsnn.mcmc import da, ensemble, ess, pcn, smc

# A linear-Gaussian inverse problem: y = A theta + N(0, gamma I), prior N(0, p^2 I)
A = jnp.array([[1.0, 0.5], [0.2, -1.0], [0.7, 0.7]])
Y = jnp.array([1.0, -0.5, 2.0])
P_STD = 2.0


def _posterior(gamma):
    cov = np.linalg.inv(np.asarray(A.T @ A) / gamma + np.eye(2) / P_STD**2)
    return cov @ np.asarray(A.T @ Y) / gamma, cov


def _forward(key, theta):
    return theta @ A.T, Y, jnp.asarray(theta.shape[0])


def test_eks_samples_the_linear_gaussian_posterior():
    gamma = 0.5
    mean, cov = _posterior(gamma)
    state = ensemble.init(3.0 * jax.random.normal(jax.random.key(0), (100, 2)))

    @jax.jit
    def run(key, state):
        def body(s, k):
            s, _ = ensemble.eks_step(k, s, _forward, gamma, P_STD, dt0=0.5)
            return s, s.particles
        return jax.lax.scan(body, state, jax.random.split(key, 3000))

    _, path = run(jax.random.key(1), state)
    draws = np.asarray(path[1000:]).reshape(-1, 2)
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.08)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05)


def test_one_eki_step_from_the_prior_is_the_kalman_update():
    gamma = 0.5
    mean, cov = _posterior(gamma)
    state = ensemble.init(P_STD * jax.random.normal(jax.random.key(2), (4000, 2)))
    state, info = ensemble.eki_step(jax.random.key(3), state, _forward, gamma)
    theta = np.asarray(state.particles)
    np.testing.assert_allclose(theta.mean(0), mean, atol=0.04)  # ~4 standard errors
    np.testing.assert_allclose(np.cov(theta.T), cov, atol=0.04)
    assert int(info.presentations) == 4000


MEAN = jnp.array([1.0, -2.0])
COV = jnp.array([[1.0, 0.8], [0.8, 1.5]])


def _logdensity(theta):
    x = theta - MEAN
    return -0.5 * jnp.einsum("...i,ij,...j->...", x, jnp.linalg.inv(COV), x)


def _chain_moments(path, burn=100):
    draws = np.asarray(path[burn:]).reshape(-1, 2)
    return draws.mean(0), np.cov(draws.T)


def test_delayed_acceptance_with_a_wrong_screen_is_exact():
    def wrong(theta):  # centred at 0 with 4x the variance: far from the target
        return -0.5 * jnp.sum(theta**2, -1) / 4.0

    state = da.init(jnp.zeros((2000, 2)), _logdensity, wrong)

    @jax.jit
    def run(key, state):
        def body(s, k):
            s, info = da.kernel(k, s, _logdensity, wrong, 1.0)
            return s, (s.position, info.screened.mean())
        return jax.lax.scan(body, state, jax.random.split(key, 300))

    _, (path, screened) = run(jax.random.key(4), state)
    m, c = _chain_moments(path)
    np.testing.assert_allclose(m, MEAN, atol=0.05)
    np.testing.assert_allclose(c, COV, atol=0.08)
    assert 0.3 < float(screened.mean()) < 0.95  # the screen did stop some proposals


def test_pcn_with_an_off_reference_is_exact():
    reference = pcn.Reference(jnp.array([0.5, -1.0]), jnp.full(2, 0.5), jnp.array([[1.0], [0.5]]))
    state = pcn.init(jnp.zeros((2000, 2)), _logdensity, reference)

    @jax.jit
    def run(key, state):
        def body(s, k):
            s, _ = pcn.kernel(k, s, _logdensity, reference, 0.5)
            return s, s.position
        return jax.lax.scan(body, state, jax.random.split(key, 300))

    _, path = run(jax.random.key(5), state)
    m, c = _chain_moments(path)
    np.testing.assert_allclose(m, MEAN, atol=0.05)
    np.testing.assert_allclose(c, COV, atol=0.08)


def test_generalised_elliptical_slice_with_an_off_reference_is_exact():
    reference = pcn.Reference(jnp.array([0.5, -1.0]), jnp.full(2, 0.5), jnp.array([[1.0], [0.5]]))

    def masked(theta, active):  # an inactive chain's value must never be used
        return jnp.where(active, _logdensity(theta), jnp.nan)

    state = ess.init(jnp.zeros((1000, 2)), _logdensity)

    @jax.jit
    def run(key, state):
        def body(s, k):
            s, info = ess.kernel(k, s, masked, reference, nu=4.0)
            return s, (s.position, info.evaluations, info.capped)
        return jax.lax.scan(body, state, jax.random.split(key, 200))

    _, (path, evaluations, capped) = run(jax.random.key(6), state)
    m, c = _chain_moments(path, burn=50)
    np.testing.assert_allclose(m, MEAN, atol=0.05)
    np.testing.assert_allclose(c, COV, atol=0.08)
    assert 1.0 < float(evaluations.mean()) < 10.0 and float(capped.mean()) < 1e-3


def test_elliptical_slice_stops_at_its_evaluation_budget():
    reference = pcn.Reference(jnp.zeros(2), jnp.full(2, 1e-3), jnp.zeros((2, 1)))
    state = ess.init(jnp.array([[5.0, 5.0]] * 4), _logdensity)  # far from a tiny reference
    new, info = ess.kernel(jax.random.key(0), state, lambda x, a: _logdensity(x), reference,
                           max_rounds=50, max_evaluations=10)
    assert int(info.evaluations.sum()) <= 10
    moved = np.any(np.asarray(new.position) != 5.0, axis=-1)
    np.testing.assert_array_equal(moved, ~np.asarray(info.capped))


def test_reference_logpdf_is_the_gaussian_density():
    rng = np.random.default_rng(0)
    U, d = rng.normal(size=(4, 2)), rng.uniform(0.5, 1.5, 4)
    ref = pcn.Reference(jnp.asarray(rng.normal(size=4)), jnp.asarray(d), jnp.asarray(U))
    x = rng.normal(size=(3, 4))
    exact = multivariate_normal(np.asarray(ref.mean), np.diag(d) + U @ U.T).logpdf(x)
    got = np.asarray(ref.logpdf(jnp.asarray(x)))
    np.testing.assert_allclose(got - got[0], exact - exact[0], rtol=1e-4, atol=1e-4)


def test_smc_log_evidence_and_posterior_match_the_analytic_values():
    gamma = 0.1
    mean, cov = _posterior(gamma)

    def loglik(theta):
        r = Y - theta @ A.T
        return -0.5 * jnp.sum(r**2, -1) / gamma - 1.5 * jnp.log(2 * jnp.pi * gamma)

    def logprior(theta):
        return -0.5 * jnp.sum(theta**2, -1) / P_STD**2 - jnp.log(2 * jnp.pi * P_STD**2)

    log_z = multivariate_normal(np.zeros(3), gamma * np.eye(3) + P_STD**2 * np.asarray(A @ A.T)
                                ).logpdf(np.asarray(Y))
    stage = jax.jit(lambda k, s: smc.step(k, s, loglik, logprior, 10))
    estimates = []
    for seed in range(3):
        state = smc.init(P_STD * jax.random.normal(jax.random.key(seed), (2000, 2)), loglik)
        key = jax.random.key(100 + seed)
        for _ in range(50):
            if float(state.beta) >= 1.0:
                break
            key, sub = jax.random.split(key)
            state, _ = stage(sub, state)
        assert float(state.beta) == 1.0
        estimates.append(float(state.log_evidence))
        np.testing.assert_allclose(np.asarray(state.particles).mean(0), mean, atol=0.05)
        np.testing.assert_allclose(np.cov(np.asarray(state.particles).T), cov, atol=0.02)
    assert abs(np.mean(estimates) - log_z) < 0.15


def test_austerity_mh_matches_exact_mh_within_its_error():
    from mhsnn.mcmc import austerity

    rng = np.random.default_rng(0)
    n = 400
    x = jnp.asarray(rng.normal(1.0, 1.0, n))
    exact_mean = float(x.sum()) / (n + 0.01)  # prior N(0, 10^2), unit-variance rows
    exact_sd = 1.0 / np.sqrt(n + 0.01)

    def loglik_rows(theta, rows):  # [C, 1], [m] -> [C, m]
        return -0.5 * (x[rows][None] - theta) ** 2

    def logprior(theta):
        return -0.5 * jnp.sum(theta**2, -1) / 100.0

    def run(eps):
        state = austerity.init(jnp.full((400, 1), exact_mean))

        @jax.jit
        def go(key, state):
            def body(s, k):
                s, info = austerity.kernel(k, s, loglik_rows, logprior, n, 0.08, 40, eps)
                return s, (s.position[:, 0], info.rows_used.mean())
            return jax.lax.scan(body, state, jax.random.split(key, 300))

        _, (path, rows) = go(jax.random.key(7), state)
        return np.asarray(path[50:]).ravel(), float(rows.mean())

    draws, rows = run(0.05)
    assert abs(draws.mean() - exact_mean) < 0.25 * exact_sd
    assert abs(draws.std() / exact_sd - 1.0) < 0.15  # the austerity bias at eps = 0.05
    assert rows < 0.8 * n  # it decided from subsets
    exact_draws, exact_rows = run(0.0)  # eps = 0: every row, plain MH
    assert exact_rows == n
    assert abs(exact_draws.std() / exact_sd - 1.0) < 0.1


def test_confidence_sampler_matches_exact_mh():
    from mhsnn.mcmc import austerity

    rng = np.random.default_rng(0)
    n = 400
    x = jnp.asarray(rng.normal(1.0, 1.0, n))
    exact_mean, exact_sd = float(x.sum()) / (n + 0.01), 1.0 / np.sqrt(n + 0.01)
    largest = float(jnp.max(jnp.abs(x)))

    def loglik_rows(theta, rows):
        return -0.5 * (x[rows][None] - theta) ** 2

    def logprior(theta):
        return -0.5 * jnp.sum(theta**2, -1) / 100.0

    def row_range(theta, proposal):  # |l_i| <= |theta' - theta| (max |x| + |theta + theta'| / 2)
        return (jnp.abs(proposal - theta) * (largest + jnp.abs(theta + proposal) / 2))[:, 0]

    @jax.jit
    def go(key, state):
        def body(s, k):
            s, info = austerity.kernel(k, s, loglik_rows, logprior, n, 0.08, 50, 0.05,
                                       rule="confidence", row_range=row_range)
            return s, (s.position[:, 0], info.rows_used.mean())
        return jax.lax.scan(body, state, jax.random.split(key, 200))

    _, (path, rows) = go(jax.random.key(7), austerity.init(jnp.full((200, 1), exact_mean)))
    draws = np.asarray(path[50:]).ravel()
    assert abs(draws.mean() - exact_mean) < 0.15 * exact_sd
    assert abs(draws.std() / exact_sd - 1.0) < 0.1
    assert float(rows.mean()) < n  # some decisions came early (most need every row here)
    # Known answers of the bound. A proposal equal to the position (step 0) makes every
    # row's l_i zero, so the mean, its spread and the range bound are 0, and
    # |mean - mu0| = |log u| / n > 0 is decided after the first batch of 50: accepted.
    # A range bound too wide to ever be beaten needs every row, the exact MH decision.
    same = austerity.init(jnp.full((64, 1), exact_mean))
    _, info = austerity.kernel(jax.random.key(1), same, loglik_rows, logprior, n, 0.0,
                                   50, 0.05, rule="confidence", row_range=row_range)
    assert np.all(np.asarray(info.rows_used) == 50) and np.all(np.asarray(info.is_accepted))
    _, info = austerity.kernel(jax.random.key(1), same, loglik_rows, logprior, n, 0.08, 50,
                               0.05, rule="confidence",
                               row_range=lambda a, b: jnp.full(a.shape[0], 1e9))
    assert np.all(np.asarray(info.rows_used) == n)
    with pytest.raises(ValueError, match="row_range"):
        austerity.kernel(jax.random.key(0), austerity.init(jnp.zeros((2, 1))), loglik_rows,
                         logprior, n, 0.1, rule="confidence")
