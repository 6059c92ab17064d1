"""The Xylo, posterior-at-scale and predictives experiments end to end at a tiny size: their
CSVs carry the columns their pages and the issues promise, and budgets hold."""

import csv
import gzip
import importlib.util

import pytest

import jax
import numpy as np

from experiments import posterior_at_scale, predictives
from mhsnn import metrics


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
    assert {r["predictive"] for r in rows} == {"calibrated"}  # the estimator's default
    with gzip.open(tmp_path / "posterior_at_scale_predictions.csv.gz", "rt") as f:
        predictions = list(csv.DictReader(f))
    assert len(predictions) == 2 * 569  # every test row of both folds, both methods


def test_method_params_are_checked_against_every_methods_settings(capsys):
    assert posterior_at_scale.method_params(["jitter=0.3"], ["eki", "eki_pcn"]) == {
        "jitter": 0.3}
    for pairs, methods in ((["jitter=0.3"], ["eki", "smc"]), (["jitter"], ["eki"]),
                           (["jitter=high"], ["eki"])):
        with pytest.raises(SystemExit) as stop:
            posterior_at_scale.method_params(pairs, methods)
        assert stop.value.code == 2
        assert capsys.readouterr().err.count("\n") == 1  # one line


def test_predictive_candidates_by_hand():
    """Two sets, three classes, T = 4: the share and the vote by hand; the fitted factors
    are the validation NLL's minimum (never the test rows', which the function never sees)."""
    test = np.array([[[4, 0, 0], [1, 2, 1]], [[2, 2, 0], [0, 0, 4]]], np.float32)  # [S, N, K]
    rng = np.random.default_rng(0)
    val = rng.integers(0, 5, (2, 300, 3)).astype(np.float32)
    truth = metrics.scaled(val.mean(0) / 4, 3.0)  # labels drawn from softmax(3 x rates)
    val_labels = np.array([rng.choice(3, p=p) for p in truth])
    found = predictives.candidates(val, val_labels, test, 4)
    share = ((test + 0.5) / (test.sum(-1, keepdims=True) + 1.5)).mean(0)
    np.testing.assert_allclose(found["share"][0], share, rtol=1e-6)
    votes = np.array([[2, 0, 0], [0, 1, 1]], np.float64)  # row 0: both class 0; row 1: 1, 2
    np.testing.assert_allclose(found["vote"][0], (votes + 0.5) / (2 + 1.5), rtol=1e-6)
    rates = val.mean(0) / 4
    beta = found["softmax"][1]
    for other in (beta / 1.5, beta * 1.5):
        assert metrics.nll(metrics.scaled(rates, other), val_labels) > metrics.nll(
            metrics.scaled(rates, beta), val_labels)
    np.testing.assert_allclose(found["softmax"][0], metrics.scaled(test.mean(0) / 4, beta))
    for probs, _ in found.values():
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)


def test_predictives_end_to_end(tmp_path):
    predictives.main(["--network", "30-32-2", "--budget", "5e4", "--methods", "eki", "spsa",
                      "--members", "8", "--sigma", "3", "--set", "folds=2", "--set",
                      "snn.time_steps=4", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "predictives.csv")
    assert len(rows) == 2 * 2 * len(predictives.CANDIDATES)
    assert {r["predictive"] for r in rows} == set(predictives.CANDIDATES)
    assert all(0 < int(r["presentations"]) <= 5e4 for r in rows)
    for r in rows:
        assert 0 <= float(r["acc_at_80"]) <= 1 and float(r["nll"]) > 0
    assert {r["sets"] for r in rows if r["method"] == "spsa"} == {"1"}
    assert (tmp_path / "predictives_reliability.png").stat().st_size > 0


@pytest.mark.skipif(importlib.util.find_spec("rockpool") is None,
                    reason="the Xylo chip needs the extra: pip install 'mhsnn[xylo]'")
def test_xylo_end_to_end(tmp_path, monkeypatch):
    from experiments import xylo
    from mhsnn import xylo as chip

    monkeypatch.setattr(chip, "VENDOR_EPOCHS", 5)  # the workflow's path, not its accuracy
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


def test_ceiling_sees_the_rates_of_one_poisson_draw_and_scores_both_models(tmp_path):
    from experiments import ceiling

    X01 = np.array([[0.0, 1.0, 0.5]] * 2000)  # rates 0, 1 and, over many rows, 0.5
    rates = ceiling.input_rates(jax.random.key(0), X01, 4)
    assert set(np.unique(rates[:, 0])) == {0.0} and set(np.unique(rates[:, 1])) == {1.0}
    assert set(np.unique(rates[:, 2])) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert abs(rates[:, 2].mean() - 0.5) < 0.02
    assert ceiling.model("mlp", (7,), 0).hidden_layer_sizes == (7,)  # the network's shape
    ceiling.main(["--networks", "30-3-2", "--set", "folds=2", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "ceiling.csv")
    assert [(r["model"], r["fold"]) for r in rows] == [("mlp", "0"), ("logistic", "0"),
                                                      ("mlp", "1"), ("logistic", "1")]
    assert all(0.8 < float(r["test_accuracy"]) <= 1 for r in rows)  # breast cancer: easy
    assert len(_rows(tmp_path / "ceiling_summary.csv")) == 2
