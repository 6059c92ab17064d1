"""Tuning run for the wide-network methods, on inner validation splits at one budget each.

The protocol of ``tune_mh`` and ``tune_es``: the training rows of the first outer fold of
digits (5-fold stratified, seed 0) are split again (stratified 80/20); every setting trains
on the inner training part on ``chips.polynomial(3)`` (network 64-32-10) and is scored on
the inner validation part, never on an outer test fold. Each method gets the same number of
settings and the same budget per setting (``--budget`` chip presentations, 64 members or
chains), so every method spends the same presentations on its tuning. One setting varies
per method, around the default:

    eki        jitter (additive noise per step)       {0.05, 0.2, 0.5}    default 0.2
    eki_gess   the t reference's degrees of freedom    {3, 10, 100}        default 10
    spsa_mb    Adam's learning rate                    {0.01, 0.05, 0.2}   default 0.05
    snes_mb    initial search std                      {0.3, 1, 3}         default 3

It writes ``wide_tuning.csv`` (validation accuracy and NLL per setting) and says which
setting wins by validation NLL (accuracy breaks ties).

    python -m experiments.tune_wide [--budget 3e6] [--methods NAME ...] [--out results/tuning]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np

from experiments.tune_mh import inner_splits
from mhsnn import chips, data, keys, metrics, posterior, trainers
from mhsnn.io import write_csv

GRIDS = {
    "eki": ("jitter", [0.05, 0.2, 0.5]),
    "eki_gess": ("gess_nu", [3.0, 10.0, 100.0]),
    "spsa_mb": ("learning_rate", [0.01, 0.05, 0.2]),
    "snes_mb": ("std_init", [0.3, 1.0, 3.0]),
}
DEFAULTS = {"eki": 0.2, "eki_gess": 10.0, "spsa_mb": 0.05, "snes_mb": 3.0}
SIGMA, HIDDEN, MEMBERS = 3.0, 32, 64


def _fit(method, value, problem, settings, budget, key):
    """One setting: ES settings through the config (untuned, so the value holds), the driven
    methods' through ``method_params`` (their ``Hyper``)."""
    name, _ = GRIDS[method]
    cfg, params = trainers.DEFAULTS, None
    if trainers.TRAINERS[method].driven is not None:
        params = {name: value}
    else:
        base = trainers.es_hyper(cfg, method)  # the tuned values, then this one setting
        fields = {"std_init": base.std_init, "spsa_c": base.std_init,
                  "learning_rate": base.learning_rate, "population": base.population}
        cfg = replace(cfg, es=replace(cfg.es, tuned=False, **{**fields, name: value}))
    return trainers.fit(method, key, problem, chips.polynomial(SIGMA), settings,
                        presentations=budget, chains=MEMBERS, num_draws=10, cfg=cfg,
                        method_params=params)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument("--budget", type=float, default=3e6)
    ap.add_argument("--out", type=Path, default=Path("results/tuning"))
    args = ap.parse_args(argv)

    ds = data.load("digits")
    split = inner_splits(ds.y, num_outer=1, seed=0)[0]
    root = jax.random.key(0)
    X_train, X_val = data.scale_split(ds, split)
    T, K = 10, int(ds.y.max()) + 1
    spikes = data.poisson_encode(keys.derive(root, "encode", "tune_wide", "train"), X_train, T)
    val_spikes = data.poisson_encode(keys.derive(root, "encode", "tune_wide", "val"), X_val, T)
    y_val = ds.y[split.test]
    problem = trainers.one_fold_problem(spikes, ds.y[split.train], K)
    settings = trainers.settings_for((ds.X.shape[1], HIDDEN, K))
    rows = []
    for method in args.methods:
        name, values = GRIDS[method]
        for value in values:
            t0 = time.perf_counter()
            fitted = _fit(method, value, problem, settings, args.budget,
                          keys.derive(root, "method", "tune_wide", method))
            W = np.asarray(fitted.weight_sets)
            grid = chips.broadcast(chips.polynomial(SIGMA), (1, len(W)))
            counts = posterior.counts_on(W[None], val_spikes[None], grid, settings)[0]
            probs = np.asarray(posterior.predictive(counts, settings, T).mean(0), np.float64)
            probs /= probs.sum(-1, keepdims=True)
            score = metrics.summary(probs, y_val)
            rows.append({"method": method, "setting": name, "value": value,
                         "default": value == DEFAULTS[method],
                         "val_accuracy": score["test_accuracy"], "val_nll": score["nll"],
                         "presentations": fitted.presentations,
                         "fit_s": round(time.perf_counter() - t0, 2)})
            print(f"[tune_wide] {method} {name}={value:g}: validation accuracy "
                  f"{score['test_accuracy']:.3f}, NLL {score['nll']:.3f}", flush=True)
        mine = [r for r in rows if r["method"] == method]
        best = min(mine, key=lambda r: (r["val_nll"], -r["val_accuracy"]))
        for r in mine:
            r["chosen"] = r is best
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "wide_tuning.csv", rows)
    print(f"wrote {args.out / 'wide_tuning.csv'}")


if __name__ == "__main__":
    main()
