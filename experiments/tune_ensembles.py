"""Tuning run for the ensemble methods' sizes at the goal cell, on inner validation splits.

The protocol of ``tune_wide``: the training rows of the first outer fold of digits (5-fold
stratified, seed 0) are split again (stratified 80/20); every setting is an
``SNNClassifier`` fitted on the inner training part on ``chips.polynomial(3)`` (network
64-32-10, the engine's unit, no bias channel, the calibrated predictive as deployed) and
scored on the inner validation part, never on an outer test fold. Every method gets the
same number of settings (seven) at the same budget each (``--budget`` presentations, the
goal cell's 3e7). One setting varies at a time around the default:

    eki          members {64, 128, 256}, batch {64, 128, 256}, jitter {0.1, 0.2, 0.4}
    sg_ensemble  members {64, 128, 256}, batch {16, 32, 64}, learning_rate {0.01, 0.03, 0.1}

(defaults: 64 members; EKI's batch 128 and jitter 0.2; SG's batch 32 and learning rate
0.03). It writes ``ensemble_tuning.csv`` (validation accuracy, NLL and ECE per setting)
and marks, per method, the setting with the lowest validation NLL (accuracy breaks ties)
as ``chosen``: the goal cell's "tuned" rows run it (``posterior_at_scale --members J
--method-params NAME=VALUE``).

    python -m experiments.tune_ensembles [--budget 3e7] [--methods NAME ...] [--out results/tuning]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from experiments.tune_mh import inner_splits
from mhsnn import chips, data, metrics
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

MEMBERS = 64  # the default ensemble size of the goal cell
GRIDS = {  # method: {setting: (values, default)}; "members" is the estimator's chains
    "eki": {"members": ([64, 128, 256], 64), "batch": ([64, 128, 256], 128),
            "jitter": ([0.1, 0.2, 0.4], 0.2)},
    "sg_ensemble": {"members": ([64, 128, 256], 64), "batch": ([16, 32, 64], 32),
                    "learning_rate": ([0.01, 0.03, 0.1], 0.03)},
}
SIGMA, HIDDEN = 3.0, (32,)


def settings(method: str) -> list[tuple[str, float]]:
    """(setting, value) pairs of ``method``'s grid: the default once, then each other value
    of each setting with the rest at their defaults."""
    grid = GRIDS[method]
    first = next(iter(grid))
    out = [(first, grid[first][1])]
    for name, (values, default) in grid.items():
        out += [(name, v) for v in values if v != default]
    return out


def fit_one(method, name, value, X_fit, y_fit, X_val, y_val, budget, seed) -> dict:
    members = int(value) if name == "members" else MEMBERS
    params = None if name == "members" else {name: value}
    clf = SNNClassifier(chip=chips.polynomial(SIGMA), hidden=HIDDEN, method=method,
                        presentations=budget, chains=members, random_state=seed,
                        weight_scale=1.0, bias_input=False, method_params=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X_fit, y_fit)
    score = metrics.summary(clf.predict_proba(X_val), y_val)
    return {"val_accuracy": score["test_accuracy"], "val_nll": score["nll"],
            "val_ece": score["ece"], "presentations": clf.presentations_}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument("--budget", type=float, default=3e7)
    ap.add_argument("--out", type=Path, default=Path("results/tuning"))
    args = ap.parse_args(argv)
    if not args.budget > 0:
        ap.error("--budget must be > 0")

    ds = data.load("digits")
    split = inner_splits(ds.y, num_outer=1, seed=0)[0]
    X_fit, y_fit, X_val, y_val = (ds.X[split.train], ds.y[split.train], ds.X[split.test],
                                  ds.y[split.test])
    rows = []
    for method in args.methods:
        mine = []
        for name, value in settings(method):
            t0 = time.perf_counter()
            score = fit_one(method, name, value, X_fit, y_fit, X_val, y_val, args.budget, 0)
            row = {"method": method, "setting": name, "value": value, **score,
                   "fit_s": round(time.perf_counter() - t0, 2)}
            mine.append(row)
            print(f"[tune_ensembles] {method} {name}={value:g}: validation accuracy "
                  f"{row['val_accuracy']:.3f}, NLL {row['val_nll']:.3f}, ECE "
                  f"{row['val_ece']:.3f} ({row['fit_s']:.0f} s)", flush=True)
        best = min(mine, key=lambda r: (r["val_nll"], -r["val_accuracy"]))
        for r in mine:
            r["default"] = r is mine[0]
            r["chosen"] = r is best
        rows += mine
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "ensemble_tuning.csv", rows)
    print(f"wrote {args.out / 'ensemble_tuning.csv'}")


if __name__ == "__main__":
    main()
