"""Any chip, defaults only: every model-free method on a panel of chips with other units.

The panel (``PANEL``): chips whose weight unit, threshold and output range differ from the
engine's, each a host callable ``(weights [C, P], spikes [T, N, F]) -> counts [C, N, O]``
as a user would bring one (but "paper", the engine's own JAX chip):

- paper: the paper's non-linear membrane, f_sigma with sigma 1 (``chips.polynomial``);
- numpy: the external-chip experiment's NumPy LIF simulator, the engine's units;
- integer: integer weights truncated toward minus infinity in steps of 2, threshold 10;
- narrow: ten times as sensitive, its output counts clipped at 3 of T = 10 (an analog
  chip with a narrow output range);
- faint: a hundredth as sensitive (a chip 100x off the other way);
- xylo_1, xylo_10, xylo_100: SynSense Xylo's bit-accurate simulator at 1, 10 and 100 int8
  steps per engine unit (``--chips`` names them; they need rockpool).

Two stages (``--stage``):

- ``select``: which settings should be the estimator's defaults. On each outer fold's
  training rows only, a stratified inner split (3/4 fit, 1/4 validation) scores every
  candidate setting (``SETTINGS``: likelihood x bias channel x weight scale x count
  range; ``--settings`` names a subset; each with the count share, ``predictive="bma"``,
  as committed) for every chip, data set and method. Test rows are never touched. Writes any_chip_select.csv,
  any_chip_select_summary.csv (per setting: mean validation accuracy, its ratio to
  logistic regression on the same inner rows, the share of runs that left the silent start)
  and any_chip_select_chips.csv (the same per chip and setting).
- ``panel``: the estimator with its defaults (``SNNClassifier()``'s, whatever they are
  when it runs) on the outer folds: test accuracy, NLL, ECE, presentations, whether the
  outputs left the silent start, the probe's figures, and the reference of what the
  encoding allows: logistic regression on the same rate-coded input counts. Writes
  any_chip.csv and any_chip_summary.csv.

    python -m experiments.any_chip [--stage select|panel] [--budget B] [--methods NAME ...]
        [--chips NAME ...] [--data NAME ...] [--settings NAME ...] [--set KEY=VALUE] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit

from experiments import tables
from experiments.chip_units import UnitChip
from mhsnn import chips, config, data, experiment, keys, metrics, runs, trainers
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

EXPERIMENT = "any_chip"
DEFAULTS = ["snn.hidden=[8]", "folds=2"]
DATASETS = ("iris", "wine")
METHODS = ("rw_adapt", "snes", "spsa", "sep_cma_es", "eki")
SETTINGS = {  # name: (likelihood, bias_input, weight_scale, count_range)
    "mse_nobias_unit1": ("mse", False, 1.0, 1.0),
    "mse_nobias_auto": ("mse", False, "auto", 1.0),
    "mse_bias_auto": ("mse", True, "auto", 1.0),
    "cat_nobias_auto": ("categorical", False, "auto", 1.0),
    "cat_bias_auto": ("categorical", True, "auto", 1.0),
    "mse_nobias_auto_range": ("mse", False, "auto", "auto"),
    "cat_nobias_auto_range": ("categorical", False, "auto", "auto"),
}
PARAMS = ("likelihood", "bias_input", "weight_scale", "count_range")
NUMBERS = ("accuracy", "nll", "ece", "presentations", "weight_scale", "probe_presentations",
           "awake", "reference_accuracy", "count_range")


def _xylo(scale):
    def build(sizes):
        from mhsnn import xylo

        return xylo.XyloChip(tuple(sizes), weight_scale=scale)
    return build


PANEL = {
    "paper": lambda sizes: chips.polynomial(1.0),
    "numpy": lambda sizes: UnitChip(1.0, sizes),
    "integer": lambda sizes: UnitChip(1.0, sizes, threshold=10.0, step=2.0),
    "narrow": lambda sizes: UnitChip(10.0, sizes, most=3.0),
    "faint": lambda sizes: UnitChip(0.01, sizes),
    "xylo_1": _xylo(1.0), "xylo_10": _xylo(10.0), "xylo_100": _xylo(100.0),
}
QUICK_CHIPS = ("paper", "numpy", "integer", "narrow", "faint")


def reference(X_fit, y_fit, X_eval, y_eval, T: int, seed: int) -> float:
    """Logistic regression on the rate-coded input counts (one Poisson draw of T steps,
    features scaled on the fitting rows): what the encoding allows a linear readout."""
    scaler = data.MinMaxScaler.fit(X_fit)
    root = jax.random.key(seed)

    def counts(X, purpose):
        spikes = data.poisson_encode(keys.derive(root, "encode", purpose),
                                     scaler.transform(X).astype(np.float32), T)
        return np.asarray(spikes).sum(0)

    model = LogisticRegression(max_iter=2000).fit(counts(X_fit, "fit"), y_fit)
    return float(np.mean(model.predict(counts(X_eval, "predict")) == y_eval))


def fit_one(chip_name, method, setting, X_fit, y_fit, X_eval, y_eval, hidden, T, budget,
            seed) -> dict:
    """One estimator on one chip: fitted on (X_fit, y_fit), scored on (X_eval, y_eval)."""
    # the panel: the estimator's defaults; a select setting: as committed, the count share
    params = {} if setting is None else {"predictive": "bma",
                                         **dict(zip(PARAMS, SETTINGS[setting]))}
    F, K = X_fit.shape[1], int(np.max(y_fit)) + 1
    bias = params.get("bias_input", SNNClassifier().bias_input)
    chip = PANEL[chip_name]((F + int(bias), *hidden, K))
    clf = SNNClassifier(chip=chip, hidden=hidden, method=method, presentations=budget,
                        random_state=seed, time_steps=T, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat and silent-probe warnings: recorded below
        clf.fit(X_fit, y_fit)
    probs = clf.predict_proba(X_eval)
    labels = np.searchsorted(clf.classes_, y_eval)
    s = metrics.summary(probs, labels)
    d = clf.diagnostics_
    # awake: the deployed model's class probabilities vary over the rows (a silent
    # network gives every row the same, uniform answer)
    return {"accuracy": s["test_accuracy"], "nll": s["nll"], "ece": s["ece"],
            "presentations": clf.presentations_, "weight_scale": clf.weight_scale_,
            "probe_presentations": d.get("probe_presentations", 0),
            "count_range": clf.count_range_,
            "awake": float(np.ptp(probs, axis=0).max() > 1e-6)}


def _splits(stage, y, folds, seed):
    """(fit rows, evaluation rows) per outer fold: the inner split of its training rows
    (select) or the fold itself (panel)."""
    out = []
    for split in data.kfold_splits(y, folds, seed):
        if stage == "panel":
            out.append((split.train, split.test))
            continue
        inner = StratifiedShuffleSplit(1, test_size=0.25, random_state=seed)
        fit, val = next(inner.split(split.train, y[split.train]))
        out.append((split.train[fit], split.train[val]))
    return out


def _name(stage: str) -> str:
    """The stage's file and manifest name: the panel's is the experiment's."""
    return EXPERIMENT if stage == "panel" else f"{EXPERIMENT}_select"


def run(cfg, out, mode, stage, budget, methods, chip_names, datasets,
        settings=tuple(SETTINGS)) -> list[dict]:
    name = _name(stage)
    run_ = experiment.start(out, cfg, name, mode)
    stages, hidden, T = run_.stages, tuple(cfg.snn.hidden), cfg.snn.time_steps
    settings = list(settings) if stage == "select" else [None]
    rows = []
    for data_name in datasets:
        ds = data.load(data_name)
        for f, (fit_rows, eval_rows) in enumerate(_splits(stage, ds.y, cfg.folds, cfg.seed)):
            ref = reference(ds.X[fit_rows], ds.y[fit_rows], ds.X[eval_rows], ds.y[eval_rows],
                            T, cfg.seed + f)
            for chip_name in chip_names:
                for method in methods:
                    for setting in settings:
                        label = setting or "defaults"

                        def fit(chip_name=chip_name, method=method, setting=setting, f=f,
                                fit_rows=fit_rows, eval_rows=eval_rows, ref=ref):
                            r = fit_one(chip_name, method, setting, ds.X[fit_rows],
                                        ds.y[fit_rows], ds.X[eval_rows], ds.y[eval_rows],
                                        hidden, T, budget, cfg.seed + f)
                            return {k: np.float64(r.get(k, ref)) for k in NUMBERS}

                        res = runs.run_once(stages, f"{stage}_{data_name}_{chip_name}_{method}_"
                                            f"{label}_fold{f}", fit,
                                            {k: np.float64(0) for k in NUMBERS})
                        rows.append({"stage": stage, "data": data_name, "chip": chip_name,
                                     "method": method, "setting": label, "fold": f,
                                     **{k: float(res[k]) for k in NUMBERS}})
                        r = rows[-1]
                        print(f"[{EXPERIMENT}] {stage} {data_name} {chip_name} {method} {label} "
                              f"fold {f}: accuracy {r['accuracy']:.3f} (logistic "
                              f"{r['reference_accuracy']:.3f}, scale {r['weight_scale']:g}, "
                              f"awake {r['awake']:.0f})", file=sys.stderr, flush=True)
    for r in rows:
        r["ratio"] = r["accuracy"] / r["reference_accuracy"]
    write_csv(out / f"{name}.csv", rows)
    summarise(out, stage)
    experiment.write_manifest(out, cfg, name, run_.elapsed(), stages,
                              {"stage": stage, "budget": budget, "methods": list(methods),
                               "chips": list(chip_names), "data": list(datasets),
                               **({"settings": settings} if stage == "select" else {})})
    return rows


SUMMARISED = ("accuracy", "ratio", "nll", "ece", "awake", "presentations", "weight_scale",
              "probe_presentations", "reference_accuracy", "count_range")


def _means(rows: list[dict], by: tuple[str, ...]) -> list[dict]:
    """Means per group of every ``SUMMARISED`` column the rows have (rows written before a
    column existed summarise without it)."""
    have = [k for k in SUMMARISED if rows and k in rows[0]]
    return [{**dict(zip(by, key)), "runs": len(group),
             **{f"{k}_mean": float(np.mean([float(r[k]) for r in group])) for k in have},
             "ratio_min": float(np.min([float(r["ratio"]) for r in group]))}
            for key, group in tables.group_rows(rows, by).items()]


def summarise(out, stage: str) -> None:
    """The summaries, from the rows CSV alone: per setting (select); per data set, chip and
    method, and per method over the whole panel, best mean ratio first (panel)."""
    name = _name(stage)
    with open(out / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if stage == "select":
        write_csv(out / f"{name}_summary.csv", _means(rows, ("setting",)))
        write_csv(out / f"{name}_chips.csv", _means(rows, ("chip", "setting")))
        return
    write_csv(out / f"{name}_summary.csv", _means(rows, ("data", "chip", "method")))
    methods = sorted(_means(rows, ("method",)), key=lambda r: -r["ratio_mean"])
    write_csv(out / f"{name}_methods.csv", methods)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--stage", choices=("select", "panel"), default="panel")
    ap.add_argument("--budget", type=float, default=3e5)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--chips", nargs="+", default=list(QUICK_CHIPS))
    ap.add_argument("--data", nargs="+", default=list(DATASETS))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS),
                    help="--stage select: the candidate settings to score")
    ap.add_argument("--summarise", metavar="DIR", help="only rewrite DIR's summaries of "
                    "--stage from its rows CSV")
    known, rest = ap.parse_known_args(argv)
    if known.summarise:
        summarise(Path(known.summarise), known.stage)
        return
    model_free = [m for m, t in trainers.TRAINERS.items() if not t.uses_model]
    experiment.refuse_unknown("--methods", known.methods, model_free)
    experiment.refuse_unknown("--chips", known.chips, PANEL)
    experiment.refuse_unknown("--data", known.data, config.DATASETS)
    experiment.refuse_unknown("--settings", known.settings, SETTINGS)
    if not known.budget > 0:
        print("error: --budget must be > 0", file=sys.stderr)
        raise SystemExit(2)
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.stage, known.budget,
                                              known.methods, known.chips, known.data,
                                              known.settings),
                   __doc__, rest, DEFAULTS)


if __name__ == "__main__":
    main()
