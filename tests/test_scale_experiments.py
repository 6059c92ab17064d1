"""The Xylo and posterior-at-scale experiments end to end at a tiny size: their CSVs carry
the columns their pages and the issues promise, and budgets hold."""

import csv
import gzip
import importlib.util

import pytest

from experiments import posterior_at_scale


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_posterior_at_scale_end_to_end(tmp_path):
    posterior_at_scale.main(["--networks", "30-32-2", "--budgets", "1e5", "--methods", "eki",
                             "smc", "--members", "8", "--set", "folds=2", "--set",
                             "sigmas=[3.0]", "--set", "snn.time_steps=4", "--out",
                             str(tmp_path)])
    rows = _rows(tmp_path / "posterior_at_scale.csv")
    assert len(rows) == 4
    for column in ("method", "network", "data", "sigma", "fold", "presentations", "accuracy",
                   "nll", "ece", "posterior", "exact", "rhat_logdensity", "ess_per_1e6"):
        assert column in rows[0]
    assert {(r["method"], r["posterior"], r["exact"]) for r in rows} == {
        ("eki", "True", "False"), ("smc", "True", "True")}
    assert all(0 < int(r["presentations"]) <= 1e5 for r in rows)
    with gzip.open(tmp_path / "posterior_at_scale_predictions.csv.gz", "rt") as f:
        predictions = list(csv.DictReader(f))
    assert len(predictions) == 2 * 569  # every test row of both folds, both methods


@pytest.mark.skipif(importlib.util.find_spec("rockpool") is None,
                    reason="the Xylo chip needs the extra: pip install 'mhsnn[xylo]'")
def test_xylo_end_to_end(tmp_path, monkeypatch):
    from experiments import xylo

    monkeypatch.setattr(xylo, "VENDOR_EPOCHS", 5)  # the workflow's path, not its accuracy
    monkeypatch.setattr(xylo, "WORKERS", 1)  # no process start-up (test_xylo covers workers)
    xylo.main(["--data", "iris", "--methods", "rw", "vendor", "--budget", "5e3", "--set",
               "folds=2", "--set", "snn.time_steps=4", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "xylo.csv")
    assert {r["method"] for r in rows} == {"rw", "vendor"} and len(rows) == 4
    for r in rows:
        assert float(r["chip_s_per_presentation"]) > 0
        assert int(r["presentations"]) <= 5e3
        assert (int(r["presentations"]) == 0) == (r["method"] == "vendor")
    assert len(_rows(tmp_path / "xylo_summary.csv")) == 2
