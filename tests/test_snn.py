import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import lif_reference, lif_reference_layers

from mhsnn import chips, snn


def _tiny_params(w_a, w_b=0.0, w_out=20.0):
    w1 = np.zeros((30, 3), np.float32)
    w1[0, 0], w1[1, 0] = w_a, w_b
    w2 = np.zeros((3, 2), np.float32)
    w2[0, 1] = w_out
    return {"w1": jnp.asarray(w1), "w2": jnp.asarray(w2)}


def _spikes(a_steps, b_steps=(), T=10):
    s = np.zeros((T, 1, 30), np.float32)
    s[list(a_steps), 0, 0] = 1.0
    s[list(b_steps), 0, 1] = 1.0
    return jnp.asarray(s)


def test_hand_computed_spike_train_ideal():
    # Constant current 5: u = 0.5, 0.95, 1.355 -> spike every third step: steps 3, 6, 9.
    # Each hidden spike drives output 1 with current 20 (u = 2 >= 1): the same 3 spikes.
    counts = snn.run(_tiny_params(5.0), _spikes(range(10)))
    np.testing.assert_array_equal(np.asarray(counts), [[0.0, 3.0]])


def test_hand_computed_spike_train_polynomial_chip():
    # sigma = 1: f(0.5) = 0.5 + 0.125 + 0.0208 = 0.646 (no spike, kept);
    # next u = 0.9 * 0.646 + 0.5 = 1.081 -> spike. Period 2: 5 spikes in 10 steps.
    counts = snn.run(_tiny_params(5.0), _spikes(range(10)), chip=chips.polynomial(1.0))
    np.testing.assert_array_equal(np.asarray(counts), [[0.0, 5.0]])


def test_negative_potential_resets_to_zero():
    # Step 0 gets 5 - 20 = -15: u = -1.5 < 0 -> V = 0, then spikes at steps 3, 6, 9 (3 in all).
    # Without the negative reset V would stay at -1.5 and only 2 spikes would follow.
    counts = snn.run(_tiny_params(5.0, -20.0), _spikes(range(10), [0]))
    np.testing.assert_array_equal(np.asarray(counts), [[0.0, 3.0]])


def test_chip_distorts_before_threshold():
    # u = 0.95 alone is sub-threshold; f_1(0.95) = 0.95 + 0.451 + 0.143 = 1.544 spikes.
    p = _tiny_params(9.5)
    s = _spikes([0])
    assert float(snn.run(p, s)[0, 1]) == 0.0
    assert float(snn.run(p, s, chip=chips.polynomial(1.0))[0, 1]) == 1.0


@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.0, 3.0])
def test_forward_matches_independent_reference(sigma):
    k1, k2, k3 = jax.random.split(jax.random.key(10 + int(sigma)), 3)
    w1 = 3.0 * jax.random.normal(k1, (30, 3)) + 1.0
    w2 = 4.0 * jax.random.normal(k2, (3, 2)) + 3.0
    spikes = (jax.random.uniform(k3, (10, 12, 30)) < 0.3).astype(jnp.float32)
    params = {"w1": w1, "w2": w2}
    expected = lif_reference(np.asarray(w1, np.float64), np.asarray(w2, np.float64),
                             np.asarray(spikes), sigma)
    assert expected.sum() > 0  # the check is not vacuous: the network fires
    counts = snn.run(params, spikes, chip=chips.polynomial(sigma))
    np.testing.assert_array_equal(np.asarray(counts), expected)
    rates = snn.forward(params, spikes, chip=chips.polynomial(sigma))
    np.testing.assert_allclose(np.asarray(rates), expected / 10, rtol=1e-6)


def test_batched_path_equals_per_chain_path():
    C = 6
    theta = 3.0 * jax.random.normal(jax.random.key(0), (C, snn.num_weights())) + 1.0
    params = snn.unflatten(theta)
    spikes = (jax.random.uniform(jax.random.key(1), (10, 40, 30)) < 0.3).astype(jnp.float32)
    sigmas = jnp.array([0.0, 1.0, 2.0, 3.0, 0.5, 3.0])
    batched = snn.forward_batched(params, spikes, chip=chips.polynomial(sigmas))
    for c in range(C):
        single = snn.forward(jax.tree.map(lambda a, c=c: a[c], params), spikes,
                             chip=chips.polynomial(sigmas[c]))
        np.testing.assert_array_equal(np.asarray(batched[c]), np.asarray(single))
    assert float(batched.sum()) > 0


def test_sigma_grid_compiles_once():
    traces = []

    @jax.jit
    def rates_on(chip, params, spikes):
        traces.append(1)
        return jax.vmap(lambda ch: snn.forward(params, spikes, chip=ch))(chip)

    params = snn.unflatten(jnp.ones(snn.num_weights()) * 2.0)
    spikes = jnp.ones((10, 4, 30))
    a = rates_on(chips.stack([chips.polynomial(s) for s in (0.0, 1.0, 2.0, 3.0)]), params, spikes)
    b = rates_on(chips.stack([chips.polynomial(s) for s in (0.5, 1.5, 2.5, 3.5)]), params, spikes)
    assert a.shape == (4, 4, 2) and b.shape == (4, 4, 2)
    assert len(traces) == 1


def test_surrogate_derivative_is_the_gaussian_formula():
    xs = jnp.array([-1.0, -0.3, 0.0, 0.25, 2.0])
    grads = jax.vmap(jax.grad(snn.spike))(xs)
    expected = np.exp(-2.0 * np.asarray(xs) ** 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(np.asarray(grads), expected, rtol=1e-6)


def test_forward_values_have_no_surrogate():
    xs = jnp.linspace(-2.0, 2.0, 41)
    np.testing.assert_array_equal(np.asarray(snn.spike(xs)), (np.asarray(xs) >= 0) * 1.0)


def test_in_loop_values_are_the_chip_and_gradient_is_the_ideal_model():
    k1, k2 = jax.random.split(jax.random.key(3))
    params = {"w1": 2.0 * jax.random.normal(k1, (30, 3)) + 1.0, "w2": jnp.full((3, 2), 6.0)}
    spikes = (jax.random.uniform(k2, (10, 16, 30)) < 0.3).astype(jnp.float32)
    chip = chips.polynomial(3.0)
    np.testing.assert_array_equal(
        np.asarray(snn.run(params, spikes, chip=chip, in_loop=True)),
        np.asarray(snn.run(params, spikes, chip=chip)))

    # At a given state the in-loop derivative of one LIF update is the ideal model's.
    v = jnp.array([0.2, 0.7, 0.05])
    current = jnp.array([3.0, 4.0, 8.0])

    def layer(c):
        return chips.layer(c, snn.PAPER_NETWORK, 0, alpha=0.9, threshold=1.0)

    def potential(cur, c, **kw):
        return jnp.sum(snn.lif_step(v, cur, chip=layer(c), **kw)[0])

    g_loop = jax.grad(lambda c: potential(c, chip, in_loop=True))(current)
    g_ideal = jax.grad(lambda c: potential(c, chips.ideal()))(current)
    g_chip = jax.grad(lambda c: potential(c, chip))(current)
    kept = np.asarray(snn.lif_step(v, current, chip=layer(chip))[0]) > 0
    assert kept.any()
    np.testing.assert_allclose(np.asarray(g_loop)[kept], np.asarray(g_ideal)[kept], rtol=1e-6)
    assert not np.allclose(np.asarray(g_chip)[kept], np.asarray(g_ideal)[kept])


def test_extreme_weights_never_give_nan():
    params = {"w1": jnp.full((30, 3), -1e30), "w2": jnp.full((3, 2), 1e30)}
    params["w1"] = params["w1"].at[0].set(1e30)
    spikes = (jax.random.uniform(jax.random.key(0), (10, 8, 30)) < 0.5).astype(jnp.float32)
    rates = snn.forward(params, spikes, chip=chips.polynomial(3.0))
    assert np.all(np.isfinite(np.asarray(rates)))


def test_silent_network_predicts_class_zero():
    assert snn.predict(jnp.array([[0.0, 0.0], [0.2, 0.2], [0.1, 0.3]])).tolist() == [0, 0, 1]


NETWORKS = [(30, 2), (30, 8, 2), (30, 8, 5, 3), (64, 16, 10)]


def _network(sizes, C, seed):
    """C random weight sets of a network that fires (positive-mean weights), and spikes."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    theta = 3.0 * jax.random.normal(k1, (C, snn.num_weights(sizes))) + 1.0
    spikes = (jax.random.uniform(k2, (10, 9, sizes[0])) < 0.3).astype(jnp.float32)
    return snn.unflatten(theta, sizes), spikes


def _reference_counts(params, spikes, sigma, c=None):
    ws = snn.layers_of(params)
    return lif_reference_layers([np.asarray(w if c is None else w[c], np.float64) for w in ws],
                                np.asarray(spikes), sigma)


@pytest.mark.parametrize("sizes", NETWORKS, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.0, 3.0])
def test_any_network_matches_independent_reference(sizes, sigma):
    params, spikes = _network(sizes, 1, 100 + len(sizes) + int(sigma))
    params = jax.tree.map(lambda w: w[0], params)
    expected = _reference_counts(params, spikes, sigma)
    assert expected.sum() > 0 and expected.shape == (9, sizes[-1])
    counts = snn.run(params, spikes, chip=chips.polynomial(sigma))
    np.testing.assert_array_equal(np.asarray(counts), expected)
    np.testing.assert_allclose(np.asarray(snn.forward(params, spikes, chip=chips.polynomial(sigma))),
                               expected / 10, rtol=1e-6)


def test_flatten_layout_is_layer_after_layer_row_major():
    sizes = (4, 3, 2, 2)
    theta = jnp.arange(snn.num_weights(sizes), dtype=jnp.float32)
    params = snn.unflatten(theta, sizes)
    assert [params[k].shape for k in ("w1", "w2", "w3")] == [(4, 3), (3, 2), (2, 2)]
    assert float(params["w1"][1, 0]) == 3.0 and float(params["w2"][0, 0]) == 12.0
    assert float(params["w3"][1, 1]) == 21.0
    np.testing.assert_array_equal(np.asarray(snn.flatten(params)), np.asarray(theta))
    with pytest.raises(ValueError, match="weights"):
        snn.unflatten(theta[:-1], sizes)
    with pytest.raises(ValueError, match="w2"):
        snn.run({"w1": jnp.ones((4, 3)), "w2": jnp.ones((2, 2))}, jnp.ones((2, 1, 4)))


def _sq_error_from_counts(counts, targets, mask):
    """The summed squared error computed independently, in float64, from spike counts."""
    rates = np.asarray(counts, np.float64) / 10.0
    return ((rates - np.asarray(targets)) ** 2).sum(-1) @ np.asarray(mask, np.float64)


@pytest.mark.parametrize("layout", snn.LAYOUTS)
@pytest.mark.parametrize("sizes", [(30, 3, 2), *NETWORKS], ids=lambda s: "-".join(map(str, s)))
def test_sq_error_matches_independent_reference(layout, sizes):
    C = 4
    params, spikes = _network(sizes, C, 20 + len(sizes))
    N = spikes.shape[1]
    targets = jax.nn.one_hot(jnp.arange(N) % sizes[-1], sizes[-1])
    mask = jnp.asarray(np.r_[np.ones(N - 3), np.zeros(3)], jnp.float32)  # padded samples
    sigmas = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    expected = np.array([_sq_error_from_counts(_reference_counts(params, spikes, sigmas[c], c),
                                               targets, mask) for c in range(C)])
    got = snn.sq_error_batched(params, spikes, targets, mask, chip=chips.polynomial(sigmas),
                               layout=layout)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
    assert len(set(np.round(expected, 6))) > 1  # the sets differ, so a mix-up would show


@pytest.mark.parametrize("layout", snn.LAYOUTS)
@pytest.mark.parametrize("sizes", [(30, 3, 2), (30, 4, 3, 3)], ids=lambda s: "-".join(map(str, s)))
def test_categorical_loss_matches_hand_computed_cross_entropy(layout, sizes):
    """-log softmax(s counts / T)_y summed over the real rows, in float64 from reference
    counts, on every layout (the categorical likelihood of issue 18)."""
    C, scale = 4, 7.0
    params, spikes = _network(sizes, C, 40 + len(sizes))
    N, O = spikes.shape[1], sizes[-1]
    labels = np.arange(N) % O
    targets = jax.nn.one_hot(labels, O)
    mask = np.r_[np.ones(N - 2), np.zeros(2)]
    sigmas = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    expected = []
    for c in range(C):
        z = scale * _reference_counts(params, spikes, sigmas[c], c).astype(np.float64) / 10.0
        log_softmax = z - z.max(-1, keepdims=True)
        log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
        expected.append(-(log_softmax[np.arange(N), labels] * mask).sum())
    got = snn.sq_error_batched(params, spikes, targets, jnp.asarray(mask, jnp.float32),
                               chip=chips.polynomial(sigmas), layout=layout,
                               loss="categorical", scale=scale)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
    assert len(set(np.round(expected, 5))) > 1
    with pytest.raises(ValueError, match="loss='hinge'"):
        snn.sample_loss([jnp.zeros(2)], [jnp.zeros(2)], "hinge")


def _chip_kinds(C, sizes):
    key = jax.random.key(30)
    sig = chips.polynomial(jnp.linspace(0.0, 3.0, C))
    return {"polynomial": sig,
            "mismatch": jax.vmap(lambda k: chips.mismatch(k, 0.3, sizes=sizes))(
                jax.random.split(key, C))._replace(sigma=sig.sigma),
            "quantized": chips.broadcast(chips.quantized(2, 4.0, chips.polynomial(1.0)), (C,)),
            "saturating": chips.broadcast(chips.saturating(1.5, chips.polynomial(2.0)), (C,))}


@pytest.mark.parametrize("layout", ["fused", "hoisted"])
@pytest.mark.parametrize("kind", ["polynomial", "mismatch", "quantized", "saturating"])
@pytest.mark.parametrize("sizes", [(30, 3, 2), (30, 6, 4, 3)], ids=lambda s: "-".join(map(str, s)))
def test_fast_kernels_equal_reference_path_on_every_chip(kind, layout, sizes):
    C = 12
    params, spikes = _network(sizes, C, 31)
    N = spikes.shape[1]
    targets = jax.nn.one_hot(jnp.arange(N) % sizes[-1], sizes[-1])
    mask = jnp.ones(N)
    chip = _chip_kinds(C, sizes)[kind]
    counts = snn.run_batched(params, spikes, chip=chip)
    for c in (0, C - 1):  # the batched reference path is the vmap of run, set by set
        one = chips.Chip(*(None if x is None else x[c] for x in chip))
        np.testing.assert_array_equal(np.asarray(counts[c]), np.asarray(
            snn.run(jax.tree.map(lambda w, c=c: w[c], params), spikes, chip=one)))
    assert float(counts.sum()) > 0
    whole = snn.sq_error_batched(params, spikes, targets, mask, chip=chip, layout=layout)
    blocked = snn.sq_error_batched(params, spikes, targets, mask, chip=chip, layout=layout,
                                   chain_block=4)
    np.testing.assert_allclose(np.asarray(whole), _sq_error_from_counts(counts, targets, mask),
                               rtol=1e-5)
    # Same counts; only the matrix-vector sum over samples may round differently per block size.
    np.testing.assert_allclose(np.asarray(whole), np.asarray(blocked), rtol=1e-6)


@pytest.mark.parametrize("kind", ["polynomial", "mismatch", "quantized", "saturating"])
def test_row_blocked_layout_equals_the_reference_on_every_chip(kind, monkeypatch):
    sizes, C = (30, 6, 4, 3), 6
    params, spikes = _network(sizes, C, 32)
    N = spikes.shape[1]
    monkeypatch.setattr(snn, "ROW_BLOCK", 7)  # several blocks, the last one padded
    assert N % 7
    targets = jax.nn.one_hot(jnp.arange(N) % sizes[-1], sizes[-1])
    mask = (jnp.arange(N) % 5 != 0).astype(jnp.float32)
    chip = _chip_kinds(C, sizes)[kind]
    for loss in ("mse", "categorical"):
        reference, blocked = (np.asarray(snn.sq_error_batched(
            params, spikes, targets, mask, chip=chip, layout=layout, loss=loss, scale=3.0))
            for layout in ("reference", "blocked"))
        np.testing.assert_array_equal(blocked, reference)  # same counts, same final sums


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="snn.layout='fastest'"):
        snn.check_layout("fastest")


@pytest.mark.parametrize("layout", ["fused", "reference"])  # hoisted: same chips.read_noise,
def test_sq_error_on_a_noisy_chip(layout):  # 17 s of compile on this CPU
    C = 8
    params, spikes = _network((30, 4, 3), C, 40)
    N = spikes.shape[1]
    targets, mask = jax.nn.one_hot(jnp.arange(N) % 3, 3), jnp.ones(N)

    def err(chip, key, block=None):
        return np.asarray(snn.sq_error_batched(params, spikes, targets, mask, chip=chip, key=key,
                                               layout=layout, chain_block=block))

    noisy = chips.noisy(0.3, chips.polynomial(1.0))
    a, b = err(noisy, jax.random.key(1)), err(noisy, jax.random.key(2))
    np.testing.assert_array_equal(a, err(noisy, jax.random.key(1)))  # a query is its key's
    assert not np.array_equal(a, b)  # fresh noise per query
    assert np.all(np.isfinite(err(noisy, jax.random.key(1), block=4)))
    np.testing.assert_array_equal(err(chips.noisy(0.0, chips.polynomial(1.0)), jax.random.key(3)),
                                  err(chips.polynomial(1.0), None))
    with pytest.raises(ValueError, match="key"):
        err(noisy, None)


def _dot_precisions(jaxpr) -> list:
    """The precision of every dot_general in a jaxpr, nested scans and loops included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn.params["precision"])
        for sub in jax.core.jaxprs_in_params(eqn.params):
            found += _dot_precisions(sub)
    return found


@pytest.mark.parametrize("layout", snn.LAYOUTS)
@pytest.mark.parametrize("sizes", [(30, 3, 2), (12, 10, 3)], ids=lambda s: "-".join(map(str, s)))
def test_every_product_of_the_likelihood_is_full_fp32(layout, sizes):
    """A GPU computes float32 products in TF32 unless told otherwise, and on an H200 that
    moved 0.31% of 64-32-10's counts: every product of every layout must ask for HIGHEST."""
    params, spikes = _network(sizes, 3, 33)
    N = spikes.shape[1]
    targets = jax.nn.one_hot(jnp.arange(N) % sizes[-1], sizes[-1])
    jaxpr = jax.make_jaxpr(lambda p: snn.sq_error_batched(
        p, spikes, targets, jnp.ones(N), chip=chips.polynomial(1.0), layout=layout))(params)
    precisions = _dot_precisions(jaxpr.jaxpr)
    assert precisions, "no product found: the check would pass vacuously"
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert all(p == highest for p in precisions), precisions


@pytest.mark.parametrize("layout", ["fused", "reference"])
@pytest.mark.parametrize("sets", [1, 7, 64, 256, 1000])
@pytest.mark.parametrize("per_set", [10 * 455 * 3, 10 * 128 * 32, 10 * 1437 * 32])
def test_chain_blocks_divide_the_sets_and_keep_to_their_budget(layout, sets, per_set):
    block = snn.chain_block_size(sets, per_set, layout)
    assert sets % block == 0
    if block < sets:  # split: every block's currents fit the layout's budget
        assert block * per_set <= snn.BLOCK_FLOATS[layout]
        assert layout == "reference" or block <= 128
    else:  # one block: the sets fit, or no divisor within a quarter of the cap exists
        cap = snn.BLOCK_FLOATS[layout] // per_set
        cap = min(cap, 128) if layout == "fused" else cap
        assert sets <= cap or not any(sets % b == 0 for b in range(max(cap // 4, 1), cap + 1))


@pytest.mark.parametrize("layout", snn.LAYOUTS)
def test_mse_with_a_count_range_matches_independent_reference(layout):
    """sum_n mask_n sum_k (counts / (r T) - t)^2 in float64 from reference counts: the
    stretch reaches every layout's loss."""
    sizes, C, r = (30, 3, 2), 3, 0.3
    params, spikes = _network(sizes, C, 34)
    N = spikes.shape[1]
    targets = jax.nn.one_hot(jnp.arange(N) % 2, 2)
    mask = jnp.asarray(np.r_[np.ones(N - 2), np.zeros(2)], jnp.float32)
    sigmas = np.array([0.0, 1.0, 2.0], np.float32)
    expected = [((_reference_counts(params, spikes, sigmas[c], c).astype(np.float64)
                  / (10.0 * r) - np.asarray(targets)) ** 2).sum(-1) @ np.asarray(mask)
                for c in range(C)]
    got = snn.sq_error_batched(params, spikes, targets, mask, chip=chips.polynomial(sigmas),
                               layout=layout, loss="mse", scale=1.0 / r)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
