import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import bayes, chips, posterior, snn
from mhsnn.mcmc import diagnostics, mh, sample_mh

COV = np.array([[1.0, 0.8], [0.8, 2.0]])
MEAN = np.array([1.0, -2.0])
PREC = np.linalg.inv(COV)


def gaussian_logdensity(x):
    d = x - MEAN
    return -0.5 * d @ PREC @ d


def test_recovers_correlated_gaussian_mean_and_covariance():
    res = sample_mh(jax.random.key(0), gaussian_logdensity, jnp.zeros((32, 2)), num_steps=6000,
                    step_size=1.2, thin=2)
    assert res.samples.shape == (32, 1500, 2)
    flat = res.samples.reshape(-1, 2)
    ess = diagnostics.ess(res.samples)
    se = np.sqrt(np.diag(COV) / ess)
    assert np.all(np.abs(flat.mean(0) - MEAN) < 5 * se)
    np.testing.assert_allclose(np.cov(flat.T), COV, atol=0.15)
    assert 0.2 < res.acceptance_rate.mean() < 0.7
    assert np.all(res.rhat < 1.05)


def test_recovers_laplace_quantiles():
    res = sample_mh(jax.random.key(1), lambda x: -jnp.abs(x[0]), jnp.zeros((32, 1)),
                    num_steps=8000, step_size=2.0)
    q = np.quantile(res.samples.ravel(), [0.1, 0.5, 0.9])
    np.testing.assert_allclose(q, [np.log(0.2), 0.0, -np.log(0.2)], atol=0.12)


def test_nan_region_is_never_entered():
    def logdensity(x):
        return jnp.where(x[0] > 0.5, jnp.nan, -0.5 * jnp.sum(x**2))

    res = sample_mh(jax.random.key(2), logdensity, jnp.zeros((16, 2)), num_steps=2000,
                    step_size=1.0, burn_in=0)
    assert np.all(res.samples[..., 0] <= 0.5)
    assert np.all(np.isfinite(res.samples)) and np.all(np.isfinite(res.logdensity))


def test_kernel_rejects_non_finite_proposals():
    state = mh.MHState(jnp.zeros((4, 3)), jnp.zeros(4))
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        new, info = mh.kernel(jax.random.key(0), state, lambda x, bad=bad: jnp.full(x.shape[:-1], bad), 1.0)
        assert not bool(info.is_accepted.any())
        np.testing.assert_array_equal(np.asarray(new.position), 0.0)


def test_rhat_separates_converged_from_stuck_chains():
    good = sample_mh(jax.random.key(3), gaussian_logdensity, jnp.zeros((8, 2)), num_steps=4000,
                     step_size=1.2)
    assert np.all(good.rhat < 1.05)
    far = jnp.array([[-30.0, -30.0], [30.0, 30.0]] * 4)
    stuck = sample_mh(jax.random.key(3), gaussian_logdensity, far, num_steps=40, step_size=0.1,
                      burn_in=0)
    assert np.all(stuck.rhat > 1.1)


def test_same_key_same_samples_different_key_different():
    def run(k):
        return sample_mh(jax.random.key(k), gaussian_logdensity, jnp.zeros((4, 2)),
                         num_steps=300, step_size=1.0).samples

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_batched_snn_logdensity_equals_per_chain(two_fold_problem):
    problem = two_fold_problem
    F, M = 2, 3
    theta = 2.0 * jax.random.normal(jax.random.key(1), (F, M, snn.num_weights())) + 0.5
    sigma = jnp.array([[0.0, 1.0, 3.0], [2.0, 0.0, 3.0]])
    hyper = bayes.MHHyper(0.5, 0.05, 5.0, 0.0, 1.0)
    batched = bayes.log_posterior_fn(problem, chips.Chip(sigma), hyper,
                                     posterior.SNNSettings())(theta)
    for f in range(F):
        n = int(problem.train_mask[f].sum())
        spikes = problem.train_spikes[f][:, :n]
        targets = np.asarray(problem.train_targets[f][:n])
        for m in range(M):
            rates = snn.forward(snn.unflatten(theta[f, m]), spikes,
                                chip=chips.polynomial(sigma[f, m]))
            mse = np.mean((np.asarray(rates) - targets) ** 2)
            expected = -mse / (2 * 0.05**2) - 0.5 * float(jnp.sum(theta[f, m] ** 2)) / 25.0
            np.testing.assert_allclose(float(batched[f, m]), expected, rtol=1e-5)
