"""rw_unit, random-walk MH one hidden unit at a time: the cached first layer gives the
reference's counts, the cached chain is the uncached one, and the chain samples a known
posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mhsnn import chips, data, driver, snn, trainers
from mhsnn.methods import rw_unit
from mhsnn.methods.base import Target, make_target


def _chip(key, sizes):
    """Every non-ideality a cached train must carry: f_sigma, per-neuron mismatch,
    saturation, quantised and scaled weights."""
    chip = chips.mismatch(key, 0.2, chips.polynomial(1.5), sizes=sizes)
    return chip._replace(v_max=jnp.float32(1.3), weight_levels=jnp.float32(7.0),
                         weight_max=jnp.float32(3.0), weight_scale=jnp.float32(1.7))


@pytest.mark.parametrize("sizes", [(5, 4, 3), (5, 4, 3, 2)])
def test_unit_counts_and_the_accepted_cache_are_the_references(sizes):
    T, N, C = 10, 37, 3  # N below a row block: the padded rows must not leak
    keys = jax.random.split(jax.random.key(0), 4)
    spikes = (jax.random.uniform(keys[0], (T, N, sizes[0])) < 0.4).astype(jnp.float32)
    theta = 1.5 + 0.8 * jax.random.normal(keys[1], (C, snn.num_weights(sizes)))
    chip = _chip(keys[2], sizes)
    trains = jax.jit(lambda w: snn.unit_cache(snn.unflatten(w, sizes), spikes, chip=chip))
    unit_counts = jax.jit(lambda w, cache, j: snn.unit_counts(snn.unflatten(w, sizes), cache,
                                                              j, spikes, chip=chip))
    run = jax.jit(lambda w: snn.run_batched(snn.unflatten(w, sizes), spikes, chip=chip))
    cache = trains(theta)
    masks = jnp.asarray(rw_unit.unit_masks(sizes))
    accepted = jnp.array([True, False, True])
    for j in range(sizes[1]):
        moved = theta + 0.7 * jax.random.normal(jax.random.fold_in(keys[3], j),
                                                theta.shape) * masks[j]
        counts, own = unit_counts(moved, cache, j)
        reference = run(moved)
        assert float(reference.sum()) > 0
        np.testing.assert_array_equal(counts, reference)
        kept = jnp.where(accepted[:, None], moved, theta)
        cache = snn.unit_accept(cache, own, j, accepted)
        np.testing.assert_array_equal(cache, trains(kept))
        theta = kept


def test_a_unit_moves_its_fan_in_column_and_fan_out_row_only():
    masks = rw_unit.unit_masks((2, 3, 2))  # w1 [2, 3] row-major, then w2 [3, 2]
    np.testing.assert_array_equal(np.flatnonzero(masks[1]), [1, 4, 8, 9])
    assert masks.sum(0).tolist() == [1] * 12  # every weight in exactly one unit


def test_the_cached_chain_is_the_uncached_one():
    ds = data.load_breast_cancer()
    spikes = data.poisson_encode(jax.random.key(1), ds.X[:24, :6], 4)
    problem = trainers.one_fold_problem(spikes, ds.y[:24], 2)
    sizes = (6, 10, 2)
    settings = trainers.settings_for(sizes)
    target = make_target(problem, chips.polynomial(2.0), settings,
                         trainers.mh_hyper(trainers.DEFAULTS), 24 * 4 * 60, 4, 10, "rw_unit")
    theta0 = 0.3 + 0.5 * jax.random.normal(jax.random.key(2), (4, snn.num_weights(sizes)))
    runs = [driver.run("rw_unit", rw_unit.build(target, rw_unit.Hyper(), cache=cache),
                       jax.random.key(3), target, theta0, jax.random.key(4), None, False, 2)
            for cache in (True, False)]
    assert 0 < runs[0]["accepted"] < runs[0]["moves"]
    for name in ("draws", "draws_lp", "final", "used"):
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_rw_unit_samples_a_known_gaussian_posterior():
    """A conjugate linear-Gaussian target on the 4 weights of a 1-2-1 network's layout
    (y = X theta + N(0, 1), prior N(0, 2^2 I), n = 40): its posterior is N(m, S)."""
    n, P, J, prior_std = 40, 4, 16, 2.0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, P)).astype(np.float32)
    y = (X @ np.array([0.7, -1.2, 0.3, 0.9]) + rng.normal(size=n)).astype(np.float32)
    S = np.linalg.inv(X.T @ X + np.eye(P) / prior_std**2)
    m = S @ X.T @ y
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loglik_rows(theta, rows=None, active=None, key=None, on=None):
        return -0.5 * (yj[None] - theta @ Xj.T) ** 2

    settings = trainers.settings_for((1, 2, 1))
    target = Target(n, 1, 1, P, J, None, yj[:, None], None, None, False, settings, 1.0,
                    prior_std, 0.5 * np.sqrt(P / 96.0), 50.0, 2.5e6, 100, loglik_rows,
                    None)
    algorithm = rw_unit.build(target, rw_unit.Hyper())
    k_init, k_run = jax.random.split(jax.random.key(5))
    theta0 = 0.5 * jax.random.normal(k_init, (J, P))
    out = driver.run("rw_unit", algorithm, k_run, target, theta0, k_init, None, False, 4)
    draws = out["draws"].reshape(-1, P)
    assert out["used"] <= target.budget and len(draws) >= 200
    se = np.sqrt(np.diag(S) / (len(draws) / 10))  # chains correlate: a tenth effective
    np.testing.assert_array_less(np.abs(draws.mean(0) - m), 5 * se)
    np.testing.assert_allclose(draws.var(0), np.diag(S), rtol=0.35)
