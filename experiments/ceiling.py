"""What the encoding allows: backprop and logistic regression on the same input counts.

Every method here learns from rate-coded spike trains: each feature, min-max scaled on the
training rows, becomes T Bernoulli draws (``data.poisson_encode``, one draw per row). A
classifier that sees the summed counts of those trains, [N, F] integers in 0..T, and is
trained by backprop with no chip in the way, is a ceiling for the networks trained on a
chip from the same trains (it sees them as rates, counts / T). Per network of ``experiments.posterior_at_scale`` (and the
paper's 30-3-2) and stratified fold (``data.kfold_splits``, the experiments' folds and
seed), on one Poisson draw of the training and test rows:

- ``mlp``: scikit-learn's ``MLPClassifier`` of the network's shape (one ReLU hidden layer of
  its width), Adam, its defaults otherwise (``alpha`` 1e-4, early stopping off), up to
  2,000 epochs; untuned: a reference, not a competitor;
- ``logistic``: ``LogisticRegression`` (L2, C = 1), the any-chip panel's reference.

Writes ceiling.csv (per network, model and fold: accuracy, NLL, Brier, ECE, the
metrics of ``mhsnn.metrics.summary``) and ceiling_summary.csv (means over folds) to --out.
It takes seconds; nothing is presented to a chip.

    python -m experiments.ceiling [--networks 64-32-10 ...] [--set folds=5] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import warnings

import jax
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from experiments import posterior_at_scale, tables
from mhsnn import data, experiment, keys, metrics
from mhsnn.io import write_csv

EXPERIMENT = "ceiling"
DEFAULTS = ["folds=5"]
NETWORKS = {"30-3-2": ("breast_cancer", (3,)), **posterior_at_scale.NETWORKS}
MODELS = ("mlp", "logistic")
NUMBERS = ("test_accuracy", "nll", "brier", "ece")


def input_rates(key: jax.Array, X01: np.ndarray, T: int) -> np.ndarray:
    """Input rates [N, F] of one Poisson draw of T steps: its summed counts over T (the
    counts, put on [0, 1] as the networks' inputs are)."""
    return np.asarray(data.poisson_encode(key, X01, T)).sum(0) / T


def model(name: str, hidden: tuple[int, ...], seed: int):
    if name == "mlp":
        return MLPClassifier(hidden_layer_sizes=hidden, max_iter=2000, random_state=seed)
    return LogisticRegression(max_iter=5000)


def run(cfg, out, mode, networks) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    T, root, rows = cfg.snn.time_steps, jax.random.key(cfg.seed), []
    for network in networks:
        name, hidden = NETWORKS[network]
        ds = data.load(name)
        for f, split in enumerate(data.kfold_splits(ds.y, cfg.folds, cfg.seed)):
            scaler = data.MinMaxScaler.fit(ds.X[split.train])
            train, test = (input_rates(keys.derive(root, "encode", EXPERIMENT, network, f, part),
                                        scaler.transform(ds.X[rows_]), T)
                           for part, rows_ in (("train", split.train), ("test", split.test)))
            for m in MODELS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    fitted = model(m, hidden, cfg.seed + f).fit(train, ds.y[split.train])
                s = metrics.summary(fitted.predict_proba(test), ds.y[split.test])
                rows.append({"network": network, "data": name, "model": m, "fold": f,
                             **{k: float(s[k]) for k in NUMBERS}})
            print(f"[{EXPERIMENT}] {network} fold {f}: " + "  ".join(
                f"{r['model']} {r['test_accuracy']:.3f} (NLL {r['nll']:.3f})"
                for r in rows[-len(MODELS):]), file=sys.stderr, flush=True)
    group = ("network", "data", "model")
    summary = [{**dict(zip(group, g, strict=True)), "folds": len(rs),
                **{f"{k}_mean": float(np.mean([r[k] for r in rs])) for k in NUMBERS},
                "test_accuracy_std": float(np.std([r["test_accuracy"] for r in rs]))}
               for g, rs in tables.group_rows(rows, group).items()]
    write_csv(out / f"{EXPERIMENT}.csv", rows)
    write_csv(out / f"{EXPERIMENT}_summary.csv", summary)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), run_.stages,
                              {"networks": list(networks), "models": list(MODELS)})
    for r in summary:
        print(f"{r['network']:10s} {r['model']:9s} accuracy {r['test_accuracy_mean']:.3f} "
              f"+- {r['test_accuracy_std']:.3f}  NLL {r['nll_mean']:.3f}  "
              f"ECE {r['ece_mean']:.3f}")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS))
    known, rest = ap.parse_known_args(argv)
    experiment.refuse_unknown("--networks", known.networks, NETWORKS)
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.networks), __doc__, rest,
                   DEFAULTS)


if __name__ == "__main__":
    main()
