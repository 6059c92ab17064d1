"""Posteriors at 2k-10k weights: the wide-network methods beside the best point estimates.

Per network, chip sigma, budget of chip sample presentations and stratified fold, every
method is trained through ``SNNClassifier`` on the paper's chip ``chips.polynomial(sigma)``
(a JAX chip: the cost that matters is the presentations, counted exactly):

- ``eki``, ``eks``, ``smc``, ``da``, ``mh_sub``, ``eki_pcn``, ``eki_gess`` and the BlackJAX peers
  ``bj_ess``, ``bj_smc`` (``mhsnn.methods``) with ``--members``
  ensemble members / particles / chains;
- ``rw_adapt`` (the adapted random walk, the engine's best sampler on 30-32-2 before);
- ``spsa``, ``sep_cma_es`` (the best model-free point estimates of the query-budget
  experiment) and ``sg_in_loop`` (SG with the chip in the loop).

Networks: 30-32-2 on breast cancer (1,058 weights), 64-32-10 on digits (2,368) and
64-128-10 on digits (9,536). Writes ``posterior_at_scale.csv`` (per cell: accuracy, NLL,
Brier, ECE, log-density R-hat, ESS per 1e6 presentations, ``posterior`` = the predictive
averages a sampler's draws or an ensemble, ``exact`` = the method's stationary law is the
chip posterior itself), ``posterior_at_scale_summary.csv`` (means over folds) and
``posterior_at_scale_predictions.csv.gz`` (every test row's class probabilities).

    python -m experiments.posterior_at_scale [--budgets 1e7 3e7] [--networks NAME ...]
        [--methods NAME ...] [--members J] [--predictive calibrated|bma]
        [--method-params NAME=VALUE ...] [--set KEY=VALUE]

Keys: ``folds`` (default 5), ``seed``, ``sigmas`` (default [0, 3]), ``snn.time_steps``.
Every method runs its untuned defaults (each driven method's ``Hyper``, the config's tuned MH/ES/SG
settings of the paper's network); nothing is tuned on test rows.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings

import numpy as np

from experiments import tables
from mhsnn import chips, data, experiment, metrics, runs, trainers
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

EXPERIMENT = "posterior_at_scale"
DEFAULTS = ["sigmas=[0.0, 3.0]"]
NETWORKS = {"30-32-2": ("breast_cancer", (32,)), "64-32-10": ("digits", (32,)),
            "64-128-10": ("digits", (128,))}
METHODS = ("eki", "eks", "smc", "da", "eki_pcn", "eki_gess", "rw_adapt", "spsa", "sep_cma_es",
           "sg_in_loop")
NUMBERS = ("test_accuracy", "nll", "brier", "ece", "presentations", "rhat_logdensity",
           "ess_per_1e6", "fit_s")


def exact(method: str) -> bool:
    """The method's stationary law is the chip posterior itself."""
    return trainers.TRAINERS[method].exact


def is_posterior(method: str) -> bool:
    return trainers.TRAINERS[method].kind in ("sampler", "ensemble")


def estimator(cfg, network, sigma, budget, method, fold, members, folder,
              predictive: str = "calibrated", params: dict | None = None) -> SNNClassifier:
    """The estimator of one cell, as this experiment (and experiments.predictives) trains it;
    ``predictive``: the estimator's (tables before the calibrated default used the count
    share, "bma")."""
    return SNNClassifier(chip=chips.polynomial(sigma), hidden=NETWORKS[network][1],
                         method=method, presentations=budget, chains=members,
                         time_steps=cfg.snn.time_steps, random_state=cfg.seed + fold,
                         checkpoint_dir=folder, num_draws=10, likelihood="mse",
                         weight_scale=1.0,  # as committed: the engine's unit
                         bias_input=False, predictive=predictive,
                         method_params=params or None)


def fit_one(cfg, network, sigma, budget, method, fold, split, ds, members, folder, predictive,
            params=None):
    clf = estimator(cfg, network, sigma, budget, method, fold, members, folder, predictive,
                    params)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat warnings: a column here
        clf.fit(ds.X[split.train], ds.y[split.train])
    wall = time.perf_counter() - t0
    probs = clf.predict_proba(ds.X[split.test])
    d = clf.diagnostics_
    ess = d.get("ess_logdensity", np.nan)
    row = {**metrics.summary(probs, ds.y[split.test]), "presentations": clf.presentations_,
           "rhat_logdensity": d.get("rhat_logdensity", np.nan),
           "ess_per_1e6": ess / (clf.presentations_ / 1e6) if clf.presentations_ else np.nan,
           "fit_s": round(wall, 2)}
    return row, probs


def run(cfg, out, mode, budgets, networks, methods, members,
        predictive: str = "calibrated", params: dict | None = None) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, rows, predictions = run_.stages, [], []
    for network in networks:
        ds = data.load(NETWORKS[network][0])
        splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
        K = int(ds.y.max()) + 1
        for sigma in cfg.sigmas:
            for budget in budgets:
                for method in methods:
                    for f, split in enumerate(splits):
                        tag = "".join(f"_{k}{v:g}" for k, v in sorted((params or {}).items()))
                        name = (f"{network}_s{sigma:g}_b{budget:.0e}_{method}_{predictive}{tag}"
                                f"_fold{f}")
                        folder = out / "checkpoints" / f"{EXPERIMENT}_{name}"

                        def fit(network=network, sigma=sigma, budget=budget, method=method,
                                f=f, split=split, ds=ds, folder=folder):
                            row, probs = fit_one(cfg, network, sigma, budget, method, f,
                                                 split, ds, members, folder, predictive,
                                                 params)
                            shutil.rmtree(folder, ignore_errors=True)
                            return {**{k: np.float64(row[k]) for k in NUMBERS},
                                    "probs": probs.astype(np.float32)}

                        template = {**{k: np.float64(0) for k in NUMBERS},
                                    "probs": np.zeros((len(split.test), K), np.float32)}
                        result = runs.run_once(stages, name, fit, template)
                        row = {"method": method, "network": network,
                               "data": NETWORKS[network][0], "sigma": float(sigma),
                               "budget": float(budget), "fold": f,
                               "posterior": is_posterior(method), "exact": exact(method),
                               "predictive": predictive}
                        for k in NUMBERS:
                            row[k] = int(result[k]) if k == "presentations" \
                                else float(result[k])
                        row["accuracy"] = row.pop("test_accuracy")
                        rows.append(row)
                        for i, p in zip(split.test, result["probs"], strict=True):
                            predictions.append({
                                "method": method, "network": network, "sigma": float(sigma),
                                "budget": float(budget), "fold": f, "sample": int(i),
                                "label": int(ds.y[i]),
                                **{f"p_{k}": float(v) for k, v in enumerate(p)}})
                        print(f"[{EXPERIMENT}] {network} sigma {sigma:g} {budget:.0e} "
                              f"{method} fold {f}: accuracy {row['accuracy']:.3f} "
                              f"({row['fit_s']:.1f} s)", file=sys.stderr, flush=True)
    keys = ("method", "network", "sigma", "budget")
    summary = []
    for group_key, group in tables.group_rows(rows, keys).items():
        summary.append({**dict(zip(keys, group_key, strict=True)), "folds": len(group),
                        "posterior": group[0]["posterior"], "exact": group[0]["exact"],
                        "predictive": predictive,
                        **{f"{k}_mean": float(np.nanmean([r[k] for r in group]))
                           if np.isfinite([r[k] for r in group]).any() else float("nan")
                           for k in ("accuracy", "nll", "brier", "ece", "presentations",
                                     "rhat_logdensity", "ess_per_1e6", "fit_s")},
                        "accuracy_std": float(np.std([r["accuracy"] for r in group]))})
    write_csv(out / f"{EXPERIMENT}.csv", rows)
    write_csv(out / f"{EXPERIMENT}_summary.csv", summary)
    tables.write_predictions(out / f"{EXPERIMENT}_predictions.csv.gz", predictions)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), run_.stages,
                              {"budgets": budgets, "networks": networks, "methods": methods,
                               "members": members, "predictive": predictive,
                               **({"method_params": params} if params else {})})
    for r in summary:
        print(f"{r['network']:10s} sigma {r['sigma']:g} {r['budget']:.0e} {r['method']:11s} "
              f"{r['accuracy_mean']:.3f} +- {r['accuracy_std']:.3f}  NLL {r['nll_mean']:.3f}"
              f"  ECE {r['ece_mean']:.3f}")
    return rows


def method_params(pairs: list[str], methods: list[str]) -> dict:
    """``--method-params NAME=VALUE ...`` as a dict, checked against every method's
    ``Hyper`` (``trainers.method_hyper``): a bad one stops with one line and exit code 2."""
    try:
        params = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise ValueError(f"--method-params {pair}: expected NAME=VALUE")
            try:
                params[name] = float(value)
            except ValueError:
                raise ValueError(f"--method-params {pair}: VALUE must be a number") from None
        for method in methods:
            trainers.method_hyper(method, params)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return params


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--budgets", type=float, nargs="+", default=[1e7, 3e7])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--predictive", choices=("calibrated", "bma"), default="calibrated",
                    help="the estimator's predictive (bma: the count share, as the tables "
                         "before the calibrated default)")
    ap.add_argument("--method-params", nargs="+", default=[], metavar="NAME=VALUE",
                    help="settings of the driven methods' Hyper, for every --methods")
    known, rest = ap.parse_known_args(argv)
    experiment.refuse_unknown("--networks", known.networks, NETWORKS)
    experiment.refuse_unknown("--methods", known.methods, trainers.TRAINERS)
    params = method_params(known.method_params, known.methods)
    if not all(b > 0 for b in known.budgets) or known.members < 4:
        print("error: --budgets must be > 0 and --members >= 4", file=sys.stderr)
        raise SystemExit(2)
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.budgets, known.networks,
                                              known.methods, known.members,
                                              known.predictive, params), __doc__, rest,
                   DEFAULTS)


if __name__ == "__main__":
    main()
