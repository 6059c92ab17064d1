"""Which predictive is calibrated: candidates formed from the same deployed weight sets.

On one cell of the posterior-at-scale experiment (by default its goal cell: digits
64-32-10, the paper's chip at sigma 3, 3e7 presentations, 5 folds), each method is trained
as that experiment trains it (``posterior_at_scale.estimator``), on a stratified 80% of the
fold's training rows. The weight sets it deploys (a sampler's draws, an ensemble's members,
an optimiser's one point) then give their output counts on the other 20% of the training
rows (validation) and on the test rows (``SNNClassifier.predict_counts``), and every
candidate predictive is formed from those same counts:

- ``share``: the mean over sets of the smoothed count share, (c_k + 1/2) / (sum c + K/2):
  the MSE likelihood's predictive, the estimator's default today;
- ``vote``: the share of sets voting for each class, smoothed the same way,
  (v_k + 1/2) / (S + K/2) (a point estimate's one vote is then nearly uniform);
- ``softmax``: softmax(beta x the sets' mean rates), beta chosen on the validation rows
  (the categorical likelihood's predictive, its scale learnt);
- ``softmax_fit``: the same, beta chosen on the rows the method trained on (what an
  estimator can do without holding rows out of training);
- ``temperature``: the share's log-probabilities times 1 / tau, renormalised, tau chosen on
  the validation rows (post-hoc temperature scaling, the standard-practice baseline).

The factors are fitted by ``metrics.fit_factor`` (least validation NLL); test rows are never
used to choose anything. Reports accuracy, NLL, Brier, ECE and the accuracy at 90% and 80%
coverage (rows ranked by predictive entropy, ``metrics.selective_accuracy``) per method,
candidate and fold; their means; and CORP reliability diagrams of the pooled test rows.
With ``--test-repeats K`` every row (validation, test, training) is presented K times, fresh
Poisson draws, and the candidates are formed from the mean counts (``SNNClassifier(
test_repeats=K)``: K times the prediction presentations); training is the same as with 1.

    python -m experiments.predictives [--methods NAME ...] [--budget B] [--network NAME] [--sigma S] [--members J] [--test-repeats K] [--set KEY=VALUE] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from experiments import posterior_at_scale, tables
from mhsnn import data, experiment, metrics, runs, trainers
from mhsnn.io import write_csv

EXPERIMENT = "predictives"
DEFAULTS = ["folds=5"]
METHODS = ("eki", "eki_gess", "sg_in_loop", "spsa")
CANDIDATES = ("share", "vote", "softmax", "softmax_fit", "temperature")
VALIDATION = 0.2  # the share of a fold's training rows held out to choose beta and tau
COVERAGES = (0.9, 0.8)
NUMBERS = ("accuracy", "nll", "brier", "ece", "acc_at_90", "acc_at_80", "factor")


def candidates(val_counts, val_labels, test_counts, T: int, fit_counts=None,
               fit_labels=None) -> dict[str, tuple]:
    """Each candidate's test probabilities [N, K] and its fitted factor (nan: none), from
    the sets' counts [S, N, K] on the validation and the test rows (and on the training
    rows for ``softmax_fit``; left out when they are not given)."""
    S, _, K = test_counts.shape

    def share(c):
        return np.asarray(metrics.probabilities(c)).mean(0)

    def vote(c):
        return (np.asarray(metrics.votes(c)).sum(0) + 0.5) / (S + 0.5 * K)

    def rates(c):
        return np.asarray(c, np.float64).mean(0) / T

    beta = metrics.fit_factor(rates(val_counts), val_labels)
    inv_tau = metrics.fit_factor(np.log(share(val_counts)), val_labels)
    found = {"share": (share(test_counts), np.nan), "vote": (vote(test_counts), np.nan),
             "softmax": (metrics.scaled(rates(test_counts), beta), beta)}
    if fit_counts is not None:
        beta_fit = metrics.fit_factor(rates(fit_counts), fit_labels)
        found["softmax_fit"] = (metrics.scaled(rates(test_counts), beta_fit), beta_fit)
    found["temperature"] = (metrics.scaled(np.log(share(test_counts)), inv_tau), inv_tau)
    return found


def scores(probs, labels) -> dict[str, float]:
    s = metrics.summary(probs, labels)
    return {"accuracy": s["test_accuracy"], "nll": s["nll"], "brier": s["brier"],
            "ece": s["ece"],
            **{f"acc_at_{round(100 * c)}": metrics.selective_accuracy(probs, labels, c)
               for c in COVERAGES}}


def fit_one(cfg, network, sigma, budget, method, fold, split, ds, members, folder,
            repeats=1):
    inner = StratifiedShuffleSplit(1, test_size=VALIDATION, random_state=cfg.seed + fold)
    fit_rows, val_rows = (split.train[i] for i in next(inner.split(split.train,
                                                                  ds.y[split.train])))
    # the count share: every candidate is formed from the counts here, so the whole budget
    # trains (the calibrated default would keep 2% back for its own factor)
    clf = posterior_at_scale.estimator(cfg, network, sigma, budget, method, fold, members,
                                       folder, predictive="bma")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat warnings: not this experiment's question
        clf.fit(ds.X[fit_rows], ds.y[fit_rows])
    clf.set_params(test_repeats=repeats)  # every row's counts: the mean of its fresh draws
    test_counts = clf.predict_counts(ds.X[split.test])  # [S, N, K]
    found = candidates(clf.predict_counts(ds.X[val_rows]), ds.y[val_rows], test_counts,
                       cfg.snn.time_steps, clf.predict_counts(ds.X[fit_rows]), ds.y[fit_rows])
    out = {"presentations": np.float64(clf.presentations_),
           "sets": np.float64(test_counts.shape[0])}
    for name, (probs, factor) in found.items():
        out[f"probs_{name}"] = probs.astype(np.float32)
        out.update({f"{name}_{k}": np.float64(v)
                    for k, v in {**scores(probs, ds.y[split.test]), "factor": factor}.items()})
    return out


def run(cfg, out, mode, budget, network, sigma, methods, members, repeats=1) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    ds = data.load(posterior_at_scale.NETWORKS[network][0])
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    K = int(ds.y.max()) + 1
    rows, pooled = [], {name: {} for name in CANDIDATES}
    for method in methods:
        for f, split in enumerate(splits):
            name = f"{network}_s{sigma:g}_b{budget:.0e}_{method}_fold{f}"
            folder = out / "checkpoints" / f"{EXPERIMENT}_{name}"

            def fit(method=method, f=f, split=split, folder=folder):
                result = fit_one(cfg, network, sigma, budget, method, f, split, ds, members,
                                 folder, repeats)
                shutil.rmtree(folder, ignore_errors=True)
                return result

            template = {"presentations": np.float64(0), "sets": np.float64(0),
                        **{f"probs_{c}": np.zeros((len(split.test), K), np.float32)
                           for c in CANDIDATES},
                        **{f"{c}_{k}": np.float64(0) for c in CANDIDATES for k in NUMBERS}}
            result = runs.run_once(run_.stages, name, fit, template)
            for c in CANDIDATES:
                rows.append({"method": method, "network": network, "sigma": float(sigma),
                             "budget": float(budget), "fold": f, "predictive": c,
                             "sets": int(result["sets"]),
                             "presentations": int(result["presentations"]),
                             **{k: float(result[f"{c}_{k}"]) for k in NUMBERS}})
                probs, labels = pooled[c].get(method, (np.zeros((0, K)), np.zeros(0, int)))
                pooled[c][method] = (np.concatenate([probs, result[f"probs_{c}"]]),
                                     np.concatenate([labels, ds.y[split.test]]))
            line = "  ".join(f"{r['predictive']} NLL {r['nll']:.3f} ECE {r['ece']:.3f}"
                             for r in rows[-len(CANDIDATES):])
            print(f"[{EXPERIMENT}] {method} fold {f}: accuracy {rows[-1]['accuracy']:.3f}  "
                  f"{line}", file=sys.stderr, flush=True)
    keys = ("method", "predictive")
    summary = [{**dict(zip(keys, key, strict=True)), "folds": len(group),
                "sets": group[0]["sets"],
                **{f"{k}_mean": float(np.nanmean([r[k] for r in group]))
                   if np.isfinite([r[k] for r in group]).any() else float("nan")
                   for k in NUMBERS}}
               for key, group in tables.group_rows(rows, keys).items()]
    write_csv(out / f"{EXPERIMENT}.csv", rows)
    write_csv(out / f"{EXPERIMENT}_summary.csv", summary)
    from mhsnn.plots import reliability_diagram

    reliability_diagram(pooled, out / f"{EXPERIMENT}_reliability.png",
                        f"{network}, sigma {sigma:g}, {budget:.0e} presentations: test rows "
                        f"of {cfg.folds} folds")
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), run_.stages,
                              {"budget": budget, "network": network, "sigma": sigma,
                               "methods": list(methods), "members": members,
                               "test_repeats": repeats,
                               "validation": VALIDATION})
    for r in summary:
        print(f"{r['method']:11s} {r['predictive']:12s} accuracy {r['accuracy_mean']:.3f}  "
              f"NLL {r['nll_mean']:.3f}  ECE {r['ece_mean']:.3f}  at 80% "
              f"{r['acc_at_80_mean']:.3f}")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--budget", type=float, default=3e7)
    ap.add_argument("--network", default="64-32-10", choices=list(posterior_at_scale.NETWORKS))
    ap.add_argument("--sigma", type=float, default=3.0)
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--test-repeats", type=int, default=1)
    known, rest = ap.parse_known_args(argv)
    experiment.refuse_unknown("--methods", known.methods, trainers.TRAINERS)
    if not known.budget > 0 or known.members < 4 or known.test_repeats < 1:
        print("error: --budget must be > 0, --members >= 4 and --test-repeats >= 1",
              file=sys.stderr)
        raise SystemExit(2)
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.budget, known.network,
                                              known.sigma, known.methods, known.members,
                                              known.test_repeats),
                   __doc__, rest, DEFAULTS)


if __name__ == "__main__":
    main()
