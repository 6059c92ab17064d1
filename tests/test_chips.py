import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.external_chip import NumpyChip
from mhsnn import bayes, chips, posterior, snn
from mhsnn.mcmc import mh


def _setup(C=6, N=40, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    theta = 3.0 * jax.random.normal(k1, (C, snn.num_weights())) + 1.0
    spikes = (jax.random.uniform(k2, (10, N, 30)) < 0.3).astype(jnp.float32)
    return theta, spikes


def _constant_drive(chip):
    """Counts of a one-sample network: hidden neuron 0 gets current 5 at every step, and each
    of its spikes makes output 1 fire (current 20)."""
    w1 = np.zeros((30, 3), np.float32)
    w1[0, 0] = 5.0
    w2 = np.zeros((3, 2), np.float32)
    w2[0, 1] = 20.0
    spikes = np.zeros((10, 1, 30), np.float32)
    spikes[:, 0, 0] = 1.0
    return snn.run({"w1": jnp.asarray(w1), "w2": jnp.asarray(w2)}, jnp.asarray(spikes), chip=chip)


def test_six_bit_quantisation_gives_at_most_127_values_per_layer():
    theta, _ = _setup(C=1)
    w = snn.unflatten(theta[0] * 10.0)
    chip = chips.quantized(bits=6, weight_max=16.0)
    for layer in ("w1", "w2"):
        q = np.asarray(chips.quantize(chip, w[layer]))
        assert len(np.unique(q)) <= 127 and np.abs(q).max() <= 16.0
        step = 16.0 / 63
        np.testing.assert_allclose(q / step, np.round(q / step), atol=1e-4)
    big = jnp.linspace(-40.0, 40.0, 5000)
    assert len(np.unique(np.asarray(chips.quantize(chip, big)))) == 127


def test_quantisation_changes_the_forward_pass_as_defined():
    theta, spikes = _setup()
    params = snn.unflatten(theta)
    chip = chips.quantized(bits=2, weight_max=4.0)
    on_chip = snn.run_batched(params, spikes, chip=chip)
    by_hand = snn.run_batched(jax.tree.map(lambda w: chips.quantize(chip, w), params), spikes)
    np.testing.assert_array_equal(np.asarray(on_chip), np.asarray(by_hand))
    assert not np.array_equal(np.asarray(on_chip), np.asarray(snn.run_batched(params, spikes)))


def test_mismatch_frozen_by_key():
    a = chips.mismatch(jax.random.key(1), 0.2)
    b = chips.mismatch(jax.random.key(1), 0.2)
    c = chips.mismatch(jax.random.key(2), 0.2)
    np.testing.assert_array_equal(np.asarray(a.tau_scale), np.asarray(b.tau_scale))
    assert not np.array_equal(np.asarray(a.tau_scale), np.asarray(c.tau_scale))
    theta, spikes = _setup()
    params = snn.unflatten(theta)
    ra = snn.run_batched(params, spikes, chip=a)
    np.testing.assert_array_equal(np.asarray(ra), np.asarray(snn.run_batched(params, spikes, chip=b)))
    assert not np.array_equal(np.asarray(ra), np.asarray(snn.run_batched(params, spikes)))


def test_mismatch_threshold_scale_matches_a_hand_computed_neuron():
    # Hidden neuron 0 gets a constant current 5: u = 0.5, 0.95, 1.355. With its threshold
    # scaled to 0.9 it fires at the second step (0.95 >= 0.9): period 2, 5 spikes in 10.
    chip = chips.ideal()._replace(tau_scale=jnp.ones(5),
                                  threshold_scale=jnp.array([0.9, 1, 1, 1, 1.0]))
    counts = _constant_drive(chip)
    np.testing.assert_array_equal(np.asarray(counts), [[0.0, 5.0]])


def test_noise_differs_per_query_and_vanishes_at_zero_strength():
    theta, spikes = _setup()
    params = snn.unflatten(theta)
    chip = chips.noisy(0.3, chips.polynomial(1.0))
    q1 = snn.run_batched(params, spikes, chip=chip, key=jax.random.key(1))
    q2 = snn.run_batched(params, spikes, chip=chip, key=jax.random.key(2))
    assert not np.array_equal(np.asarray(q1), np.asarray(q2))
    silent = snn.run_batched(params, spikes, chip=chips.noisy(0.0, chips.polynomial(1.0)),
                             key=jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(silent),
                                  np.asarray(snn.run_batched(params, spikes,
                                                             chip=chips.polynomial(1.0))))


def test_noisy_chip_without_key_is_refused():
    theta, spikes = _setup(C=1)
    try:
        snn.run(snn.unflatten(theta[0]), spikes, chip=chips.noisy(0.1))
    except ValueError as err:
        assert "key" in str(err)
    else:
        raise AssertionError("a noisy chip ran without a key")


def test_saturation_below_threshold_silences_the_network():
    theta, spikes = _setup()
    params = snn.unflatten(theta)
    assert float(snn.run_batched(params, spikes).sum()) > 0
    assert float(snn.run_batched(params, spikes, chip=chips.saturating(0.99)).sum()) == 0.0


def test_saturation_matches_a_hand_computed_neuron():
    # Constant current 5. Ideal: u = 0.5, 0.95, 1.355 -> 3 spikes in 10 steps.
    # v_max = 2: 2 tanh(0.25) = 0.490, then 0.941 -> 0.877, then 1.289 -> 1.136: the same 3.
    # v_max = 1.2: the potential settles at the fixed point of V = 1.2 tanh((0.9 V + 0.5)/1.2),
    # about 0.98 < 1: never a spike.
    for v_max, expected in ((2.0, 3.0), (1.2, 0.0)):
        counts = _constant_drive(chips.saturating(v_max))
        assert float(counts[0, 0]) == 0.0 and float(counts[0, 1]) == expected


def test_pseudo_marginal_mh_targets_the_noise_averaged_density():
    # log L-hat = log L + s*eps - s^2/2 is an unbiased estimate of L: the chains must
    # sample exactly N(0, 1) (prior x L), though every evaluation is noisy.
    s = 0.8

    def noisy_logdensity(x, key):
        eps = jax.random.normal(key, x.shape[:-1])
        return -0.5 * jnp.sum(x**2, -1) + s * eps - s**2 / 2

    state = mh.init(jnp.zeros((256, 1)), lambda x: noisy_logdensity(x, jax.random.key(9)))

    def step(state, key):
        state, _ = mh.kernel(key, state, noisy_logdensity, 1.5, stochastic=True)
        return state, state.position[:, 0]

    _, xs = jax.lax.scan(step, state, jax.random.split(jax.random.key(0), 3000))
    xs = np.asarray(xs[1000:])
    assert abs(xs.mean()) < 0.05 and abs(xs.var() - 1.0) < 0.08


def test_callback_chip_equals_jax_chip_and_counts_queries_exactly(two_fold_problem):
    problem = two_fold_problem
    F, M = 2, 4
    theta = 2.0 * jax.random.normal(jax.random.key(3), (F, M, snn.num_weights())) + 0.7
    external = chips.ExternalChip(NumpyChip(sigma=2.0), (F, M))
    jax_chip = chips.Chip(sigma=jnp.full((F, M), 2.0))
    settings = posterior.SNNSettings()
    via_callback = posterior.counts_on(theta, problem.train_spikes, external, settings)
    via_jax = posterior.counts_on(theta, problem.train_spikes, jax_chip, settings)
    np.testing.assert_array_equal(np.asarray(via_callback), np.asarray(via_jax))
    assert float(via_jax.sum()) > 0
    n = problem.train_spikes.shape[2]
    assert external.queries == F * M and external.presentations == F * M * n
    # Under jit and inside MH: one query per chain per step, plus the start.
    hyper = bayes.MHHyper(0.5, 0.02, 5.0, 0.0, 0.5)
    from mhsnn.mcmc.sample import Schedule, run_chunks

    counter = chips.ExternalChip(NumpyChip(sigma=2.0), (F, M))
    schedule = Schedule.make(7, 3)
    state, advance = bayes.setup(jax.random.key(0), problem, counter, hyper, settings, schedule,
                                 7, observe=False)
    run_chunks(state, advance, schedule, 7)
    assert counter.queries == F * M * (7 + 1)


def test_time_constant_mismatch_changes_the_decay_as_defined():
    # tau scaled by 2: alpha = 0.9 ** 0.5 = 0.9487. Constant current 5 on hidden neuron 0:
    # u1 = 0.0513 * 5 = 0.2566, u_k = 0.9487 u_{k-1} + 0.2566 -> 0.500, 0.731, 0.950, 1.157:
    # spikes at steps 5 and 10 (2 in 10 steps) instead of 3.
    chip = chips.ideal()._replace(tau_scale=jnp.array([2.0, 1, 1, 1, 1]),
                                  threshold_scale=jnp.ones(5))
    counts = _constant_drive(chip)
    np.testing.assert_array_equal(np.asarray(counts), [[0.0, 2.0]])


def test_mismatch_on_a_three_layer_network_draws_one_value_per_neuron():
    sizes = (30, 6, 4, 3)
    a = chips.mismatch(jax.random.key(4), 0.3, sizes=sizes)
    b = chips.mismatch(jax.random.key(4), 0.3, sizes=sizes)
    assert a.tau_scale.shape == a.threshold_scale.shape == (13,)
    np.testing.assert_array_equal(np.asarray(a.threshold_scale), np.asarray(b.threshold_scale))
    assert len(np.unique(np.asarray(a.threshold_scale))) == 13
    # Neuron j of layer i gets field j of that layer's slice: raising only the last output
    # neuron's threshold to unreachable silences exactly that output.
    k1, k2 = jax.random.split(jax.random.key(5))
    params = snn.unflatten(2.0 + 3.0 * jnp.abs(jax.random.normal(k1, (snn.num_weights(sizes),))),
                           sizes)
    spikes = (jax.random.uniform(k2, (10, 30, 30)) < 0.4).astype(jnp.float32)
    base = chips.ideal()._replace(tau_scale=jnp.ones(13), threshold_scale=jnp.ones(13))
    free = np.asarray(snn.run(params, spikes, chip=base))
    silenced = np.asarray(snn.run(params, spikes, chip=base._replace(
        threshold_scale=base.threshold_scale.at[12].set(1e6))))
    assert free[:, 2].sum() > 0 and silenced[:, 2].sum() == 0
    np.testing.assert_array_equal(free[:, :2], silenced[:, :2])
    # A mismatch drawn for another network is refused with a line naming the field.
    with pytest.raises(ValueError, match="tau_scale"):
        snn.run(params, spikes, chip=chips.mismatch(jax.random.key(4), 0.3))


def test_external_chip_on_a_three_layer_network_equals_the_jax_chip():
    sizes = (30, 6, 4, 3)
    F, M, N = 1, 5, 16
    k1, k2 = jax.random.split(jax.random.key(6))
    theta = 2.0 * jax.random.normal(k1, (F, M, snn.num_weights(sizes))) + 1.0
    spikes = (jax.random.uniform(k2, (F, 10, N, 30)) < 0.3).astype(jnp.float32)
    simulator = NumpyChip(sigma=2.0, threshold_spread=0.2, seed=3, sizes=sizes)
    external = chips.ExternalChip(simulator, (F, M))
    jax_chip = chips.Chip(sigma=jnp.full((F, M), 2.0),
                          threshold_scale=jnp.broadcast_to(simulator.thresholds, (F, M, 13)))
    settings = posterior.SNNSettings(sizes=sizes)
    via_callback = posterior.counts_on(theta, spikes, external, settings)
    via_jax = posterior.counts_on(theta, spikes, jax_chip, settings)
    assert via_callback.shape == (F, M, N, 3) and float(via_jax.sum()) > 0
    np.testing.assert_array_equal(np.asarray(via_callback), np.asarray(via_jax))
    assert external.queries == F * M and external.presentations == F * M * N
