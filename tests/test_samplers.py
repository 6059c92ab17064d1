"""Known-answer tests of the public samplers: MALA, HMC, DE-MC, adaptation, log evidence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_mcmc import COV, MEAN
from test_mcmc import gaussian_logdensity as gaussian

from mhsnn.mcmc import diagnostics, sample_demc, sample_hmc, sample_mala, sample_mh, sample_pt


def wrong_gradient(x):
    """The gradient of another Gaussian (mean 0, unit covariance): a misleading model."""
    return -x


def banana(x):
    """x1 ~ N(0, 1), x2 | x1 ~ N(x1^2 / 2, 1): E x2 = 1/2, Var x2 = 1 + 1/2."""
    return -0.5 * x[0] ** 2 - 0.5 * (x[1] - 0.5 * x[0] ** 2) ** 2


def _check_moments(res, mean, var, cov=None):
    flat = res.samples.reshape(-1, res.samples.shape[-1])
    ess = diagnostics.ess(res.samples)
    se = np.sqrt(np.asarray(var) / ess)
    assert np.all(np.abs(flat.mean(0) - mean) < 5 * se), (flat.mean(0), mean, se)
    if cov is not None:
        np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.2)


SAMPLERS = {
    "mala": lambda key, f, x0, **kw: sample_mala(key, f, x0, num_steps=4000, step_size=0.9,
                                                 **kw),
    "hmc": lambda key, f, x0, **kw: sample_hmc(key, f, x0, num_steps=1500, step_size=0.35,
                                               num_leapfrog=5, **kw),
    "demc": lambda key, f, x0, **kw: sample_demc(key, f, x0, num_steps=4000, **kw),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_correlated_gaussian_and_banana(name):
    res = SAMPLERS[name](jax.random.key(0), gaussian, jnp.zeros((32, 2)))
    _check_moments(res, MEAN, np.diag(COV), COV)
    assert np.all(res.rhat < 1.05)
    res = SAMPLERS[name](jax.random.key(1), banana, jnp.zeros((32, 2)))
    _check_moments(res, [0.0, 0.5], [1.0, 1.5])


@pytest.mark.parametrize("name", ["mala", "hmc"])
def test_a_wrong_gradient_still_samples_the_target_exactly(name):
    # A wrong drift costs acceptance (so mixing), never exactness: moments stay right.
    kw = {"key": jax.random.key(2), "logdensity_fn": gaussian, "init_positions": jnp.zeros((32, 2)),
              "num_steps": 3000, "grad_fn": wrong_gradient}
    res = (sample_mala(step_size=0.6, **kw) if name == "mala"
           else sample_hmc(step_size=0.2, num_leapfrog=3, **kw))
    _check_moments(res, MEAN, np.diag(COV))
    flat = res.samples.reshape(-1, 2)
    np.testing.assert_allclose(np.cov(flat.T), COV, atol=0.3)
    assert res.grad_evals == 3000 * (3 if name == "hmc" else 1) + 1
    assert res.logdensity_evals == 3001


def test_the_right_gradient_beats_random_walk_per_density_evaluation():
    dim = 10
    scales = np.linspace(0.5, 2.0, dim)

    def f(x):
        return -0.5 * jnp.sum((x / scales) ** 2)

    x0 = jnp.zeros((16, dim))
    rw = sample_mh(jax.random.key(3), f, x0, num_steps=3000, step_size=0.6)
    ml = sample_mala(jax.random.key(3), f, x0, num_steps=3000, step_size=0.6)
    per_eval = [np.median(diagnostics.ess(r.samples)) / r.logdensity_evals for r in (rw, ml)]
    assert per_eval[1] > 2 * per_eval[0]


def test_adaptation_reaches_its_target_and_is_frozen_after_burn_in():
    kwargs = {"num_steps": 3000, "step_size": 5.0, "adapt_step_size": True}
    a = sample_mh(jax.random.key(4), gaussian, jnp.zeros((32, 2)), chunk_size=1000, **kwargs)
    assert 0.15 < a.acceptance_rate.mean() < 0.32  # target 0.234, measured after burn-in
    assert a.step_size < 5.0
    _check_moments(a, MEAN, np.diag(COV), COV)
    # The decisions depend on the step count alone: another chunking gives the same draws,
    # as a run resumed from any chunk boundary would.
    b = sample_mh(jax.random.key(4), gaussian, jnp.zeros((32, 2)), chunk_size=7, **kwargs)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.step_size == b.step_size
    m = sample_mala(jax.random.key(5), gaussian, jnp.zeros((32, 2)), num_steps=3000,
                    step_size=3.0, adapt_step_size=True)
    assert 0.45 < m.acceptance_rate.mean() < 0.7


def test_diagonal_scales_learn_the_posterior_widths_and_keep_it_exact():
    """Coordinates with stds 0.1 ... 10: the learnt relative scales follow the true stds,
    the kept draws have the true moments, and per step the adapted diagonal proposal mixes
    the widest coordinate far better than an adapted isotropic one."""
    stds = np.array([0.1, 0.3, 1.0, 3.0, 10.0])

    def f(x):
        return -0.5 * jnp.sum((x / stds) ** 2)

    kw = {"num_steps": 4000, "step_size": 0.5, "chunk_size": 1000}
    x0 = jnp.zeros((32, len(stds)))
    d = sample_mh(jax.random.key(7), f, x0, adapt_scales=True, **kw)
    iso = sample_mh(jax.random.key(7), f, x0, adapt_step_size=True, **kw)
    ratio = d.proposal_scale / stds
    assert ratio.max() / ratio.min() < 2.0  # proposal std proportional to the target's
    _check_moments(d, np.zeros(len(stds)), stds**2)
    flat = d.samples.reshape(-1, len(stds))
    np.testing.assert_allclose(flat.std(0), stds, rtol=0.15)
    assert diagnostics.ess(d.samples)[-1] > 3 * diagnostics.ess(iso.samples)[-1]
    assert 0.15 < d.acceptance_rate.mean() < 0.32
    # frozen after burn-in and decided by the step count alone: other chunks, same draws
    e = sample_mh(jax.random.key(7), f, x0, adapt_scales=True, num_steps=4000,
                  step_size=0.5, chunk_size=333)
    np.testing.assert_array_equal(d.samples, e.samples)


def test_full_covariance_learns_a_correlated_posterior_and_keeps_it_exact():
    """A Gaussian with correlation 0.995 along the diagonal of 4 coordinates: all marginal
    stds equal, so a diagonal scale cannot help, while the learnt full covariance follows
    the target's (its relative covariance matches) and mixes the long direction far better
    per step; the kept draws have the true moments; chunking changes no draw."""
    dim, rho = 4, 0.995
    cov = np.full((dim, dim), rho) + (1 - rho) * np.eye(dim)
    prec = jnp.asarray(np.linalg.inv(cov), jnp.float32)

    def f(x):
        return -0.5 * x @ prec @ x

    kw = {"num_steps": 4000, "step_size": 0.5, "chunk_size": 1000}
    x0 = jnp.zeros((32, dim))
    full = sample_mh(jax.random.key(8), f, x0, adapt_covariance=True, **kw)
    diag = sample_mh(jax.random.key(8), f, x0, adapt_scales=True, **kw)
    _check_moments(full, np.zeros(dim), np.diag(cov))
    flat = full.samples.reshape(-1, dim)
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.1)
    long = np.ones(dim) / np.sqrt(dim)  # the direction of the largest variance
    ess = [float(diagnostics.ess((r.samples @ long)[..., None])[0]) for r in (full, diag)]
    assert ess[0] > 5 * ess[1], ess
    assert 0.15 < full.acceptance_rate.mean() < 0.32
    np.testing.assert_allclose(full.proposal_scale, full.proposal_scale.mean(), rtol=0.25)
    again = sample_mh(jax.random.key(8), f, x0, adapt_covariance=True, num_steps=4000,
                      step_size=0.5, chunk_size=333)
    np.testing.assert_array_equal(full.samples, again.samples)


def test_pseudo_marginal_over_random_chips_recovers_the_averaged_posterior():
    """A toy chip adds a fresh random offset b ~ N(0, tau^2) to the output at every query:
    L(theta, b) = N(y; theta + b, 1). Averaged over chips, L(theta) = N(y; theta, 1 + tau^2),
    so with prior N(0, s^2) the posterior is Gaussian with a known mean and variance; MH
    with a fresh chip per query must sample it (not the fixed-chip posterior)."""
    y, tau, s = 2.0, 1.5, 2.0

    def noisy_log_lik(theta, key):
        b = tau * jax.random.normal(key)
        return -0.5 * (y - theta[0] - b) ** 2 - 0.5 * theta[0] ** 2 / s**2

    res = sample_mh(jax.random.key(8), noisy_log_lik, jnp.zeros((64, 1)), num_steps=6000,
                    step_size=1.5, noisy=True)
    v = 1.0 + tau**2
    post_var = 1.0 / (1.0 / v + 1.0 / s**2)
    _check_moments(res, [post_var * y / v], [post_var])
    np.testing.assert_allclose(res.samples.var(), post_var, rtol=0.15)
    # the fixed-chip (b = 0) posterior is clearly different
    assert abs(post_var - 1.0 / (1.0 + 1.0 / s**2)) > 0.5
    # adaptation on a noisy density is not refused: the step is learnt in burn-in and then
    # frozen, so the kept draws come from one fixed pseudo-marginal kernel, exact too
    adapted = sample_mh(jax.random.key(9), noisy_log_lik, jnp.zeros((64, 1)), num_steps=6000,
                        step_size=0.1, noisy=True, adapt_step_size=True)
    assert adapted.step_size > 0.5  # it moved far from the poor start of 0.1
    _check_moments(adapted, [post_var * y / v], [post_var])


def test_pseudo_marginal_pt_samples_the_noise_averaged_posterior():
    """The random-offset chip of the test above under PT: the beta = 1 replicas keep their
    accepted estimates through swaps, so they sample the averaged posterior exactly."""
    y, tau, s = 2.0, 1.5, 2.0

    def noisy_log_lik(theta, key):
        return -0.5 * (y - theta[0] - tau * jax.random.normal(key)) ** 2

    res = sample_pt(jax.random.key(3), lambda th: -0.5 * th[0] ** 2 / s**2, noisy_log_lik,
                    jnp.zeros((32, 1)), num_steps=4000, step_size=1.5, num_temperatures=3,
                    noisy=True)
    v = 1.0 + tau**2
    post_var = 1.0 / (1.0 / v + 1.0 / s**2)
    _check_moments(res, [post_var * y / v], [post_var])
    np.testing.assert_allclose(res.samples.var(), post_var, rtol=0.15)
    assert np.isnan(res.log_evidence)


def test_stepping_stone_log_evidence_matches_the_analytic_normaliser():
    d, s = 3, 0.5
    y = jnp.array([1.0, -0.5, 2.0])

    def log_prior(x):  # normalised N(0, I)
        return -0.5 * jnp.sum(x**2) - 0.5 * d * jnp.log(2 * jnp.pi)

    def log_lik(x):  # normalised N(y; x, s^2 I)
        return (-0.5 * jnp.sum((y - x) ** 2) / s**2 - d * jnp.log(s)
                - 0.5 * d * jnp.log(2 * jnp.pi))

    res = sample_pt(jax.random.key(6), log_prior, log_lik, jnp.zeros((32, d)), num_steps=4000,
                    step_size=0.5, num_temperatures=8)
    v = 1 + s**2  # y ~ N(0, (1 + s^2) I)
    exact = float(-0.5 * jnp.sum(y**2) / v - 0.5 * d * np.log(2 * np.pi * v))
    assert abs(res.log_evidence - exact) < 3 * res.log_evidence_se
    assert res.log_evidence_se < 0.1
    assert res.recommended_temperatures == int(np.ceil(2 * res.barrier)) + 1


def test_demc_needs_a_population():
    with pytest.raises(ValueError, match="4"):
        sample_demc(jax.random.key(0), gaussian, jnp.zeros((3, 2)), num_steps=10)


@pytest.mark.parametrize("sampler", ["rw_adapt", "rw_adapt_diag", "rw_adapt_full", "demc",
                                     "mala", "hmc"])
def test_grid_samplers_run_on_the_snn_posterior(two_fold_problem, sampler):
    from mhsnn import bayes, chips, posterior
    from mhsnn.mcmc.sample import Schedule, run_chunks

    F, S, C = 2, 2, 4  # folds x cells (sigma 0 and 3) x chains per cell
    chip = chips.Chip(sigma=jnp.repeat(jnp.array([[0.0, 3.0]]), C, axis=1).repeat(F, axis=0))
    hyper = bayes.MHHyper(0.5, 0.02, 5.0, 0.0, 0.5)
    schedule = Schedule.make(12, 6)
    state, advance = bayes.setup(jax.random.key(0), two_fold_problem, chip, hyper,
                                 posterior.SNNSettings(), schedule, 6, sampler=sampler,
                                 chains_per_cell=C)
    state = run_chunks(state, advance, schedule, 6)
    assert state.mean.shape == (F, S * C, 96) and np.all(np.isfinite(np.asarray(state.mean)))
    # a kept draw moves only on an accepted step: the 6 kept draws (every post-burn-in
    # step) change as often as the chain accepted, less the first step's move from burn-in
    draws, accepted = np.asarray(state.draws), np.asarray(state.accepted)
    assert draws.shape[2] == 6
    moves = np.any(draws[:, :, 1:] != draws[:, :, :-1], axis=-1).sum(-1)
    assert np.all((moves == accepted) | (moves == accepted - 1)) and accepted.sum() > 0
    if sampler != "demc":  # one step size per cell, frozen after burn-in
        steps = np.asarray(state.inner.log_step_size).reshape(F, S, C)
        np.testing.assert_array_equal(steps, np.repeat(steps[..., :1], C, axis=-1))


def test_inference_data_file_agrees_with_the_numpyro_diagnostics(tmp_path):
    import arviz as az

    from mhsnn.mcmc import inference_data

    res = sample_mh(jax.random.key(7), gaussian, jnp.zeros((8, 2)), num_steps=3000,
                    step_size=1.2)
    path = inference_data.write(tmp_path / "run.nc", res.samples, res.logdensity,
                                res.acceptance_rate, {"sigma": 3.0, "stage": "mh"})
    data = az.from_netcdf(path)
    assert data.posterior["weights"].dims == ("chain", "draw", "weight")
    assert data.sample_stats["lp"].shape == res.logdensity.shape
    np.testing.assert_allclose(az.ess(data, method="identity")["weights"].values,
                               diagnostics.ess(res.samples), rtol=0.01)
    np.testing.assert_allclose(az.rhat(data, method="split")["weights"].values,
                               diagnostics.rhat(res.samples), atol=1e-6)
    assert data.attrs["sigma"] == 3.0


def test_log_evidence_is_refused_for_a_flat_prior():
    def flat(x):  # improper: the evidence of any likelihood under it is undefined
        return jnp.zeros(())

    def log_lik(x):
        return -0.5 * jnp.sum(x**2)

    with pytest.warns(UserWarning, match="log_prior_fn does not fall off"):
        res = sample_pt(jax.random.key(1), flat, log_lik, jnp.zeros((4, 2)), num_steps=40,
                        step_size=0.5, num_temperatures=2)
    assert np.isnan(res.log_evidence) and res.samples.shape == (4, 20, 2)
