"""The any-chip experiment: its inner validation rows never touch the test rows, its
panel's chips have the units they claim, and it runs end to end."""

import csv

import numpy as np
from sklearn.datasets import load_iris

from experiments import any_chip


def test_selection_rows_come_from_the_training_rows_only():
    y = load_iris(return_X_y=True)[1]
    outer = any_chip._splits("panel", y, 2, 0)
    inner = any_chip._splits("select", y, 2, 0)
    for (train, test), (fit, val) in zip(outer, inner):
        assert set(fit) | set(val) == set(train)  # every inner row is an outer training row
        assert not set(fit) & set(val) and not (set(fit) | set(val)) & set(test)
        assert len(val) == round(0.25 * len(train))
        assert np.all(np.bincount(y[val], minlength=3) > 0)  # stratified


def test_the_panel_chips_have_their_units():
    # One layer: each output's membrane u = 0.9 u + 0.1 x current, threshold 1 (x 10 on the
    # integer chip), reset to 0 on a spike; both inputs spike at all T = 10 steps.
    sizes, spikes = (2, 3), np.ones((10, 1, 2), np.float32)
    w = np.full((1, 6), 3.0, np.float32)  # current 6: u = 0.6, 1.14 (spike) ... 5 spikes
    assert any_chip.PANEL["numpy"](sizes)(w, spikes).max() == 5
    assert any_chip.PANEL["faint"](sizes)(w, spikes).max() == 0  # current 0.06: never
    assert any_chip.PANEL["narrow"](sizes)(w, spikes).max() == 3  # 60: every step, clipped
    integer = any_chip.PANEL["integer"](sizes)
    assert integer(w, spikes).max() == 0  # 3 truncates to 2: u tends to 4 < 10
    assert integer(np.full((1, 6), 1.9, np.float32), spikes).max() == 0  # truncates to 0
    # 20: current 40, u = 4, 7.6, 10.84 (spike at steps 3, 6, 9)
    assert integer(np.full((1, 6), 20.0, np.float32), spikes).max() == 3


def test_logistic_regression_reference_reads_the_counts():
    X, y = load_iris(return_X_y=True)
    rows = np.random.default_rng(0).permutation(150)
    fit, test = rows[:100], rows[100:]
    assert any_chip.reference(X[fit], y[fit], X[test], y[test], 10, 0) > 0.8  # chance: 1/3


def test_any_chip_runs_end_to_end(tmp_path):
    any_chip.main(["--stage", "panel", "--budget", "4e3", "--methods", "spsa", "--chips",
                   "integer", "--data", "iris", "--out", str(tmp_path)])
    with open(tmp_path / "any_chip.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["fold"] for r in rows] == ["0", "1"]
    for r in rows:
        assert float(r["presentations"]) <= 4e3
        assert float(r["reference_accuracy"]) > 0.8
        assert r["setting"] == "defaults" and float(r["awake"]) in (0.0, 1.0)
    assert (tmp_path / "any_chip_summary.csv").exists()
    assert (tmp_path / "any_chip_methods.csv").exists()
    assert (tmp_path / "any_chip_manifest.json").exists()
