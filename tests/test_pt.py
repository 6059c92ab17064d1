import jax
import jax.numpy as jnp
import numpy as np

from mhsnn.mcmc import pt, sample_mh, sample_pt

WEIGHT = 0.7  # of the mode at +6


def log_lik(x):
    return jnp.logaddexp(jnp.log(1 - WEIGHT) - 0.5 * jnp.sum((x + 6.0) ** 2),
                         jnp.log(WEIGHT) - 0.5 * jnp.sum((x - 6.0) ** 2))


def log_prior(x):  # symmetric, so the posterior mode weights stay 0.3 / 0.7
    return -0.5 * jnp.sum(x**2) / 100.0


def test_pt_recovers_mixture_weights_where_mh_does_not():
    res = sample_pt(jax.random.key(0), log_prior, log_lik, jnp.zeros((32, 1)), num_steps=6000,
                    step_size=1.0, num_temperatures=8)
    share = (res.samples > 0).mean()
    chains_share = (res.samples > 0).mean(axis=(1, 2))
    se = chains_share.std() / np.sqrt(len(chains_share))
    assert abs(share - WEIGHT) < max(4 * se, 0.03)
    assert res.round_trips.sum() > 0
    # MH with the same budget of chain-steps (every replica's step counted) stays where it
    # starts: each chain sits in one mode, so the share is that of the starting sides.
    mh = sample_mh(jax.random.key(0), lambda x: log_prior(x) + log_lik(x), jnp.zeros((32, 1)),
                   num_steps=6000 * 8, step_size=1.0)
    per_chain = (mh.samples > 0).mean(axis=(1, 2))
    assert np.all((per_chain < 0.01) | (per_chain > 0.99))
    assert abs((mh.samples > 0).mean() - WEIGHT) > 0.1


def test_one_temperature_is_exactly_mh():
    a = sample_pt(jax.random.key(3), log_prior, log_lik, jnp.zeros((4, 1)), num_steps=300,
                  step_size=1.0, num_temperatures=1)
    b = sample_mh(jax.random.key(3), lambda x: log_prior(x) + log_lik(x), jnp.zeros((4, 1)),
                  num_steps=300, step_size=1.0)
    np.testing.assert_array_equal(a.samples, b.samples)


def _state(K, log_lik_values):
    pos = jnp.zeros((1, K, 1))
    state = pt.init(pos, jnp.linspace(0, 1, K), lambda x: jnp.zeros(x.shape[:-1]),
                    lambda x: jnp.zeros(x.shape[:-1]))
    return state._replace(log_lik=jnp.asarray(log_lik_values, jnp.float32)[None],
                          position=jnp.arange(K, dtype=jnp.float32).reshape(1, K, 1))


def test_deo_alternates_even_and_odd_pairs():
    state = _state(5, [0.0] * 5)  # equal likelihoods: every proposed swap is accepted
    s1, proposed, accepted, _, _ = pt.deo_swap(jax.random.key(0), state)
    np.testing.assert_array_equal(np.asarray(proposed[0]), [1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(accepted[0]), [1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(s1.position[0, :, 0]), [1, 0, 3, 2, 4])
    s2, proposed, _, _, _ = pt.deo_swap(jax.random.key(1), s1)
    np.testing.assert_array_equal(np.asarray(proposed[0]), [0, 1, 0, 1])
    np.testing.assert_array_equal(np.asarray(s2.position[0, :, 0]), [1, 3, 0, 4, 2])


def test_kernel_info_sums_into_the_tally():
    """BlackJAX shape: the kernel returns (PTState, PTInfo); the tally is the sum of the
    infos (two rounds of 5 slots: every pair proposed once)."""
    state = _state(5, [0.0] * 5)
    flat = lambda x: jnp.zeros(x.shape[:-1])
    chain = pt.PTChain(state, pt.init_tally(state))
    infos = []
    for k in range(2):
        chain, info = pt.step(jax.random.key(k), chain, flat, flat, 0.1)
        infos.append(info)
    assert isinstance(info, pt.PTInfo) and info.is_accepted.shape == (1, 5)
    total = sum(np.asarray(i.swap_proposed, int) for i in infos)
    np.testing.assert_array_equal(np.asarray(chain.tally.swap_attempts), total)
    np.testing.assert_array_equal(total[0], [1, 1, 1, 1])
    np.testing.assert_allclose(np.asarray(chain.tally.swap_prob_sum),
                               sum(np.asarray(i.swap_prob) for i in infos))
    assert int(chain.tally.ss_count[0]) == 2


def test_swap_probability_formula():
    # Pair (0, 1) with betas 0 and 0.25: log a = (0.25 - 0) (l0 - l1) = 0.25 (-2 - 2) = -1.
    state = _state(5, [-2.0, 2.0, 0.0, 0.0, 0.0])
    _, _, _, prob, _ = pt.deo_swap(jax.random.key(0), state)
    np.testing.assert_allclose(float(prob[0, 0]), np.exp(-1.0), rtol=1e-6)


def test_adaptation_equalises_rejection_rates_on_a_gaussian():
    def gauss_lik(x):
        return -0.5 * jnp.sum(x**2) * 400.0  # sharp likelihood: the linear schedule is poor

    res = sample_pt(jax.random.key(1), lambda x: -0.5 * jnp.sum(x**2), gauss_lik,
                    jnp.zeros((64, 2)), num_steps=8000, step_size=0.3, num_temperatures=6)
    rejection = 1 - res.swap_acceptance
    assert rejection.max() - rejection.min() < 0.15
    assert np.all(np.diff(res.betas) > 0) and res.betas[0] == 0 and res.betas[-1] == 1
    fixed = sample_pt(jax.random.key(1), lambda x: -0.5 * jnp.sum(x**2), gauss_lik,
                      jnp.zeros((64, 2)), num_steps=2000, step_size=0.3, num_temperatures=6,
                      betas=np.linspace(0, 1, 6))
    linear_rejection = 1 - fixed.swap_acceptance
    assert linear_rejection.max() - linear_rejection.min() > rejection.max() - rejection.min()


def test_barrier_and_inverse():
    betas = np.linspace(0, 1, 5)
    rejection = np.array([0.6, 0.2, 0.1, 0.1])
    lam = pt.barrier(rejection, betas)
    np.testing.assert_allclose(lam, [0, 0.6, 0.8, 0.9, 1.0])
    new = pt.adapt_betas(rejection, betas)
    # Equal barrier steps of 0.25: most new points crowd into the first interval.
    expected = [0.0, np.interp(0.25, lam, betas), np.interp(0.5, lam, betas),
                np.interp(0.75, lam, betas), 1.0]
    np.testing.assert_allclose(new, expected, atol=1e-6)
    assert new[2] < 0.25  # half the barrier lies in the first interval


def test_chunk_size_changes_no_draw_nor_the_adapted_schedule():
    def gauss_lik(x):
        return -0.5 * jnp.sum((x - 3.0) ** 2) / 0.1

    def run(chunk):
        return sample_pt(jax.random.key(5), lambda x: -0.5 * jnp.sum(x**2), gauss_lik,
                         jnp.zeros((4, 1)), num_steps=640, step_size=0.8, num_temperatures=4,
                         chunk_size=chunk)

    a, b = run(7), run(1000)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.betas, b.betas)
    assert not np.allclose(a.betas, np.linspace(0, 1, 4))  # the schedule did adapt
