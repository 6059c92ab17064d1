"""The Xylo chip (mhsnn.xylo): rockpool's XyloSim behind the chip interface."""

import importlib.util
import warnings

import numpy as np
import pytest

if importlib.util.find_spec("rockpool") is None or importlib.util.find_spec("xylosim") is None:
    pytest.skip("the Xylo chip needs the extra: pip install 'mhsnn[xylo]'",
                allow_module_level=True)

from mhsnn import SNNClassifier, chips, xylo


def _spikes(rng, T, N, F, p=0.5):
    return (rng.random((T, N, F)) < p).astype(np.float32)


def test_counts_equal_rockpools_xylosim_on_the_same_config():
    rng = np.random.default_rng(0)
    chip = chips.xylo((3, 5, 2))
    weights = rng.normal(0.0, 6.0, (3, chip.num_params)).astype(np.float32)
    spikes = _spikes(rng, 12, 4, 3)
    counts = chip(weights, spikes)
    assert counts.shape == (3, 4, 2)
    XyloSim = xylo.xylo_sim()
    for c in range(3):
        for n in range(4):
            # a fresh chip per sample: what "presented from a reset state" means
            module = XyloSim.from_specification(**chip.xylo_config(weights[c]))
            out, _, _ = module.evolve(spikes[:, n, :].astype(int))
            np.testing.assert_array_equal(counts[c, n], out.sum(0))
    assert counts.sum() > 0  # the case exercises firing, not a silent chip


def test_workers_give_the_same_counts(monkeypatch):
    rng = np.random.default_rng(1)
    chip = chips.xylo((3, 4, 2))
    weights = rng.normal(0.0, 6.0, (3, chip.num_params)).astype(np.float32)
    spikes = _spikes(rng, 8, 5, 3)
    parallel = chips.xylo((3, 4, 2), workers=2)
    monkeypatch.setattr(xylo, "MIN_BLOCK", 1)  # a test-sized query is cut all the same
    try:  # 3 sets: cut by sets; 1 set: cut by rows (this process runs one share)
        np.testing.assert_array_equal(parallel(weights, spikes), chip(weights, spikes))
        np.testing.assert_array_equal(parallel(weights[:1], spikes), chip(weights[:1], spikes))
        assert parallel.presentations == 4 * 5
    finally:
        parallel.close()


def test_a_query_is_shared_by_sets_then_rows():
    from mhsnn.xylo import share

    def blocks(sets, rows, workers):
        return [((c.start, c.stop), (n.start, n.stop)) for c, n in share(sets, rows, workers)]

    assert blocks(8, 100, 1) == [((0, 8), (0, 100))]
    assert blocks(3, 1000, 2) == [((0, 2), (0, 1000)), ((2, 3), (0, 1000))]
    assert blocks(1, 1000, 2) == [((0, 1), (0, 500)), ((0, 1), (500, 1000))]
    assert blocks(2, 900, 4) == [((0, 1), (0, 450)), ((0, 1), (450, 900)),
                                 ((1, 2), (0, 450)), ((1, 2), (450, 900))]
    assert blocks(1, 100, 2) == [((0, 1), (0, 100))]  # too little work to send away
    assert blocks(1, 192, 8) == [((0, 1), (0, 64)), ((0, 1), (64, 128)), ((0, 1), (128, 192))]


def test_int8_mapping_by_hand():
    chip = chips.xylo((2, 2, 1))  # P = 2 x 2 + 2 x 1 = 6, layer after layer, row-major
    theta = np.array([0.04, -0.06, 12.7, 13.0, -12.85, -20.0], np.float32)
    cfg = chip.xylo_config(theta)
    # scale 10: 0.4 -> 0, -0.6 -> -1, 127, 130 -> 127 (clipped), -128.5 -> -128, -200 -> -128
    np.testing.assert_array_equal(cfg["weights_in"][:, :, 0], [[0, -1], [127, 127]])
    np.testing.assert_array_equal(cfg["weights_out"], [[-128], [-128]])
    assert cfg["weights_in"].dtype == np.int8
    np.testing.assert_array_equal(cfg["dash_mem"], [3, 3])
    np.testing.assert_array_equal(cfg["dash_syn_out"], [1])
    np.testing.assert_array_equal(cfg["threshold"], [100, 100])
    with pytest.raises(ValueError, match=r"weight 3 \(13\) maps to 130, beyond int8"):
        chips.xylo((2, 2, 1), clip=False).xylo_config(theta)
    with pytest.raises(ValueError, match="6 values, the network 2-2-1 has 6|has 6"):
        chip.xylo_config(theta[:5])


@pytest.mark.parametrize("sizes, limit", [
    ((17, 4, 2), "at most 16 input channels; the network 17-4-2 needs 17"),
    ((4, 1001, 2), "at most 1000 hidden neurons"),
    ((4, 8, 9), "at most 8 output neurons"),
    ((4, 3, 3, 2), "input -> hidden -> output"),
])
def test_networks_that_do_not_fit_are_refused(sizes, limit):
    with pytest.raises(ValueError, match=limit):
        chips.xylo(sizes)


def test_settings_off_the_chip_are_refused():
    with pytest.raises(ValueError, match="dash_syn 0: Xylo dashes are in"):
        chips.xylo((4, 3, 2), dash_syn=0)
    with pytest.raises(ValueError, match="threshold 40000"):
        chips.xylo((4, 3, 2), threshold=40000)
    spec = chips.xylo((2, 2, 1)).xylo_config(np.zeros(6))
    spec["weights_out"] = np.array([[200], [0]])
    with pytest.raises(ValueError, match=r"weights_out: values in \[0, 200\], beyond int8"):
        xylo.check_spec(spec)


def test_estimator_on_xylo_counts_presentations_and_checks_the_network():
    rng = np.random.default_rng(2)
    X = rng.random((24, 3)).astype(np.float32)
    y = np.array(["a", "b"] * 12)
    chip = chips.xylo((4, 3, 2))  # 3 features + the bias channel
    clf = SNNClassifier(chip=chip, hidden=(3,), method="rw", presentations=2000, chains=2,
                        time_steps=4, bias_input=True, random_state=0, num_draws=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat of so short a run
        clf.fit(X, y)
    checked = clf.diagnostics_["check_presentations"]  # one weight set on two rows
    assert checked == 2
    assert clf.presentations_ + checked == clf.diagnostics_["chip_presentations"] > checked
    assert set(clf.predict(X)) <= {"a", "b"}
    # the chip's lattice: one int8 step is 1/10 of its unit, the engine's unit s of its
    assert chip.weight_step == 0.1
    assert clf.diagnostics_["lattice_steps_per_unit"] == pytest.approx(clf.weight_scale_ * 10)
    with pytest.raises(ValueError, match="chip runs the network 4-3-2; the data and hidden"):
        SNNClassifier(chip=chip, hidden=(3,), bias_input=False).fit(X, y)


def test_vendor_workflow_maps_quantises_and_runs_on_the_chip():
    import jax

    net = xylo.vendor_net(4, 5, 3, jax.random.key(0))
    params = jax.tree.map(lambda v: v + 0.3 * jax.random.normal(jax.random.key(1), v.shape),
                          xylo._trainable(net))
    mapped = xylo.float_spec(params, net)  # rockpool's mapper on the trained graph
    fast = xylo.with_params(xylo.float_spec(xylo._trainable(net), net), params)
    for key in mapped:  # the in-loop shortcut puts the same arrays where the mapper does
        np.testing.assert_allclose(np.asarray(fast[key], float), np.asarray(mapped[key], float),
                                   rtol=1e-6)
    np.testing.assert_array_equal(mapped["dash_mem"], [xylo.DASH_MEM] * 5)  # tau_mem 8 dt
    np.testing.assert_array_equal(mapped["dash_syn"], [xylo.DASH_SYN] * 5)  # tau_syn 2 dt
    spec = xylo.quantised(mapped)  # rockpool's global_quantize: int8 weights
    assert np.abs(spec["weights_in"]).max() == 127 and spec["weights_in"].dtype.kind == "i"
    counts = xylo.run_configs([spec], _spikes(np.random.default_rng(3), 6, 4, 4))
    assert counts.shape == (1, 4, 3)


def test_the_vendors_deployed_network_is_the_start_exactly():
    """init="vendor": the deployed chip at the start weights is rockpool's quantised
    network, key for key, and every method begins there."""
    import jax

    rng = np.random.default_rng(4)
    spikes = _spikes(rng, 5, 30, 3, p=0.4)
    labels = np.repeat([0, 1, 2], 10)
    chip = chips.xylo((3, 4, 3))
    deployed, weights = chip.vendor_init(spikes, labels, seed=5)
    spec = xylo.deploy(jax.random.key(5), spikes, labels, (3, 4, 3))  # same seed
    config = deployed.xylo_config(weights)
    assert set(config) == {k for k, v in spec.items() if v is not None}
    for key, value in spec.items():
        if value is not None:
            np.testing.assert_array_equal(np.asarray(config[key]).reshape(np.shape(value)),
                                          np.asarray(value), err_msg=key)
    assert chip.base is None and deployed.base is not None  # the user's chip is unchanged
    np.testing.assert_array_equal(deployed(weights[None], spikes),
                                  xylo.run_configs([spec], spikes))


def test_the_estimator_trains_and_predicts_on_the_vendors_deployed_chip():
    rng = np.random.default_rng(6)
    X = rng.random((30, 3)).astype(np.float32)
    y = np.repeat(["a", "b", "c"], 10)
    chip = chips.xylo((3, 4, 3))
    clf = SNNClassifier(chip=chip, hidden=(4,), method="rw", presentations=3000, chains=2,
                        time_steps=5, init="vendor", random_state=0, num_draws=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat of so short a run
        clf.fit(X, y)
    deployed = clf.deployed_chip_
    assert deployed.base is not None and chip.base is None
    # what the chip ran: the probe and the training, on the deployed chip only
    assert clf.presentations_ == deployed.presentations
    assert chip.presentations == clf.diagnostics_["check_presentations"]
    shown = deployed.presentations
    clf.predict(X)
    assert deployed.presentations == shown + len(X) * len(clf.weight_sets_)
    with pytest.raises(ValueError, match="init='vendor': the chip 'ideal' has no vendor"):
        SNNClassifier(hidden=(4,), init="vendor").fit(X, y)
