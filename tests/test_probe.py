"""The weight-scale probe: it finds a chip's unit, whatever it is, at a counted cost."""

import csv
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_iris

import mhsnn
from experiments import chip_units
from mhsnn import chips, posterior, probe, snn

SIZES = (4, 8, 3)


class UnitChip(chip_units.UnitChip):
    """chip_units' chip whose weight unit is ``unit`` engine units, counting what it runs."""

    def __init__(self, unit):
        super().__init__(unit, SIZES)
        self.presentations = 0

    def __call__(self, weights, spikes):
        self.presentations += weights.shape[0] * spikes.shape[1]
        return super().__call__(weights, spikes)


def _spikes(rows=40):
    X = load_iris().data[:rows]
    X01 = (X - X.min(0)) / (X.max(0) - X.min(0))
    return np.asarray(mhsnn.data.poisson_encode(jax.random.key(0), jnp.asarray(X01), 10))


@pytest.mark.parametrize("unit", [0.01, 1.0, 100.0])
def test_the_probe_finds_the_units_of_a_chip_and_counts_what_it_ran(unit):
    spikes = _spikes()
    reference, chip = UnitChip(1.0), UnitChip(unit)

    def run(c):
        return probe.probe(lambda W: c(W, spikes), snn.num_weights(SIZES), 40, 10,
                           sets=8, rows=40)

    base, found = run(reference), run(chip)
    assert base.awake and found.awake
    # a chip whose unit is 100x smaller needs weights 100x larger: the same chip weights
    assert found.scale * unit == pytest.approx(base.scale, rel=1e-6)
    assert found.active[found.scales.index(found.scale)] > probe.ACTIVE
    below = found.scale / 10**0.5
    if below in found.scales:  # the next scale down was tried and is mostly silent
        assert found.active[found.scales.index(below)] <= probe.ACTIVE
    assert found.presentations == chip.presentations == len(found.scales) * 8 * 40


class DrivenChip(UnitChip):
    """UnitChip whose first output fires at every step whatever the weights (a deployed
    network's bias): it spikes at every scale, so spiking no longer says where it wakes."""

    def __call__(self, weights, spikes):
        counts = np.array(super().__call__(weights, spikes))
        counts[..., 0] = spikes.shape[0]
        return counts


@pytest.mark.parametrize("unit", [0.01, 100.0])
def test_a_chip_driven_by_its_biases_is_judged_against_its_zero_weights(unit):
    spikes = _spikes()

    def run(c):
        return probe.probe(lambda W: c(W, spikes), snn.num_weights(SIZES), 40, 10,
                           sets=8, rows=40)

    reference, chip = run(DrivenChip(1.0)), DrivenChip(unit)
    found = run(chip)
    assert reference.awake and reference.scale > probe.LOWEST  # not the grid's end
    assert found.scale * unit == pytest.approx(reference.scale, rel=1e-6)
    # the network of zero weights answers the same on every row: only what differs counts
    assert found.active[found.scales.index(found.scale)] > probe.ACTIVE
    # it walked down to the grid's end, then presented the zero weights once
    assert probe.LOWEST in found.scales
    assert found.presentations == chip.presentations == (len(found.scales) + 1) * 8 * 40


def test_a_scaled_jax_chip_runs_the_scaled_weights_exactly():
    spikes = jnp.asarray(_spikes(12))[None]  # [1, T, N, F]
    W = jax.random.normal(jax.random.key(1), (1, 5, snn.num_weights(SIZES)))
    settings = posterior.SNNSettings(sizes=SIZES)
    for base in (chips.ideal(), chips.polynomial(2.0)):
        plain = posterior.counts_on(2.0 * W, spikes, chips.broadcast(base, (1, 5)), settings)
        scaled = posterior.counts_on(W, spikes, chips.broadcast(chips.scaled(2.0, base),
                                                                (1, 5)), settings)
        np.testing.assert_array_equal(np.asarray(scaled), np.asarray(plain))


def test_the_estimator_learns_the_units_and_charges_the_probe_to_the_budget():
    X, y = load_iris(return_X_y=True)
    X, y = X[::2], y[::2]
    scales = {}
    for unit in (0.01, 1.0):
        chip = UnitChip(unit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = mhsnn.SNNClassifier(chip=chip, hidden=(8,), method="spsa",
                                      presentations=2e4, weight_scale="auto",
                                      random_state=0).fit(X, y)
        d = clf.diagnostics_
        scales[unit] = d["weight_scale"]
        assert clf.presentations_ <= 2e4 and d["probe_presentations"] <= 0.02 * 2e4
        assert clf.presentations_ + d["check_presentations"] == chip.presentations
        assert clf.weight_scale_ == d["weight_scale"]
    assert scales[0.01] == pytest.approx(100 * scales[1.0], rel=1e-6)
    # the JAX ideal chip scaled to 1/100 is found 100x off, as the host chip was
    ideal = mhsnn.SNNClassifier(chip=chips.scaled(0.01), hidden=(8,), method="spsa",
                                presentations=2e4, weight_scale="auto", random_state=0)
    assert ideal.fit(X, y).weight_scale_ == pytest.approx(scales[0.01], rel=1e-6)


@pytest.mark.parametrize("most", [3.0, None])
def test_the_probe_finds_the_count_range_a_chip_reaches(most):
    """A chip whose counts are clipped at 3 of T = 10 is found at 0.3; an unclipped one
    reaches T once the weights are 10 and 100 times the chosen scale. The two extra scales
    are counted like the others."""
    spikes = _spikes()
    chip = UnitChip(1.0)
    chip.most = most
    found = probe.probe(lambda W: chip(W, spikes), snn.num_weights(SIZES), 40, 10, sets=8,
                        rows=40, reach=True)
    assert found.max_count == pytest.approx(0.3 if most else 1.0)
    assert {found.scale * 10, found.scale * 100} <= {round(s, 9) for s in found.scales} | {
        s for s in found.scales}
    assert found.presentations == chip.presentations == len(found.scales) * 8 * 40
    quiet = probe.probe(lambda W: chip(W, spikes), snn.num_weights(SIZES), 40, 10, sets=8,
                        rows=40)
    assert len(found.scales) == len(quiet.scales) + 2 and quiet.scale == found.scale


def test_the_estimator_takes_the_count_range_from_the_probe():
    X, y = load_iris(return_X_y=True)
    chip = UnitChip(1.0)
    chip.most = 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = mhsnn.SNNClassifier(chip=chip, hidden=(8,), method="spsa", presentations=2e4,
                                  count_range="auto", random_state=0).fit(X[::2], y[::2])
        fixed = mhsnn.SNNClassifier(chip=chip, hidden=(8,), method="spsa", presentations=2e4,
                                    count_range="auto", weight_scale=1.0,
                                    random_state=0).fit(X[::2], y[::2])
    assert clf.count_range_ == pytest.approx(0.3) == clf.diagnostics_["count_range"]
    assert clf.settings_.lik.scale == pytest.approx(1 / 0.3)
    assert clf.diagnostics_["probe_presentations"] <= 0.02 * 2e4
    assert fixed.count_range_ == 1.0  # no probe under a fixed weight scale
    with pytest.raises(ValueError, match="count_range=2"):
        mhsnn.SNNClassifier(chip=chip, hidden=(8,), count_range=2).fit(X[::2], y[::2])


def test_a_chip_that_never_fires_is_reported_silent():
    X, y = load_iris(return_X_y=True)
    def dead(weights, spikes):
        return np.zeros((weights.shape[0], spikes.shape[1], 3), np.float32)

    clf = mhsnn.SNNClassifier(chip=dead, hidden=(2,), method="spsa", presentations=2e4,
                              weight_scale="auto", random_state=0)
    with pytest.warns(UserWarning, match="stayed silent"):
        clf.fit(X[::3], y[::3])
    assert clf.diagnostics_["probe_awake"] is False
    assert clf.weight_scale_ == probe.HIGHEST


def test_chip_units_runs_end_to_end(tmp_path):
    chip_units.main(["--budget", "4e3", "--methods", "spsa", "--units", "0.01",
                     "--out", str(tmp_path)])
    with open(tmp_path / "chip_units.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2  # weight_scale 1 and auto, two folds
    assert [float(r["weight_scale"]) for r in rows] == [1.0, 1.0, 1000.0, 1000.0]
