"""The weight-scale probe on chips whose weight unit differs from the engine's.

A NumPy LIF chip (f_sigma with sigma = 0, the external-chip experiment's simulator) that
multiplies the weights it is given by ``unit`` before running them: a chip whose weight
unit is ``unit`` engine units. Each method of ``--methods`` is trained on it through the
estimator at ``--budget`` presentations, with ``weight_scale=1`` (the engine's unit) and
``weight_scale="auto"`` (``mhsnn.probe``), stratified k-fold on a data set (default iris,
network F-8-K). Writes chip_units.csv (per unit, method, weight_scale and fold: test
accuracy, NLL, the scale used, the probe's presentations, whether the outputs ever spiked
on the test rows) and chip_units_summary.csv (means over folds) to --out.

    python -m experiments.chip_units [--budget B] [--methods NAME ...] [--units U ...] [--set KEY=VALUE] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from experiments import tables
from experiments.external_chip import NumpyChip
from mhsnn import data, experiment, metrics, runs, trainers
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

EXPERIMENT = "chip_units"
DEFAULTS = ["data.name=iris", "snn.hidden=[8]", "folds=2"]
NUMBERS = ("test_accuracy", "nll", "weight_scale", "probe_presentations", "presentations",
           "awake")


class UnitChip:
    """The NumPy chip, its weight unit ``unit`` engine units; its thresholds x
    ``threshold``; its weights truncated to multiples of ``step`` (toward minus infinity)
    when ``step`` > 0; its output counts clipped at ``most`` (None: T). The last three make
    the any-chip experiment's panel."""

    def __init__(self, unit: float, sizes, threshold: float = 1.0, step: float = 0.0,
                 most: float | None = None):
        self.unit, self.sizes, self.step, self.most = np.float32(unit), tuple(sizes), step, most
        self.chip = NumpyChip(sigma=0.0, sizes=self.sizes)
        self.chip.thresholds = self.chip.thresholds * np.float32(threshold)

    def __call__(self, weights, spikes):
        w = np.asarray(weights, np.float32) * self.unit
        if self.step > 0:
            w = np.floor(w / self.step) * self.step
        counts = self.chip(w, spikes)
        return counts if self.most is None else np.minimum(counts, self.most)


def fit_one(cfg, unit, name, scale, split, ds, sizes, budget, seed) -> dict:
    chip = UnitChip(unit, sizes)
    clf = SNNClassifier(chip=chip, hidden=cfg.snn.hidden, method=name, presentations=budget,
                        weight_scale=scale, random_state=seed, time_steps=cfg.snn.time_steps,
                        count_range=1.0)  # as committed: this experiment is about the unit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat warnings: not this experiment's question
        clf.fit(ds.X[split.train], ds.y[split.train])
    probs = clf.predict_proba(ds.X[split.test])
    labels = np.searchsorted(clf.classes_, ds.y[split.test])
    d = clf.diagnostics_
    # awake: some weight set of the deployed model makes an output spike on some test row
    awake = float(np.ptp(probs, axis=0).max() > 1e-9)
    return {**metrics.summary(probs, labels), "weight_scale": clf.weight_scale_,
            "probe_presentations": d.get("probe_presentations", 0),
            "presentations": clf.presentations_, "awake": awake}


def run(cfg, out, mode, budget: float, names: list[str], units: list[float]) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, ds = run_.stages, run_.dataset
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    sizes = (ds.X.shape[1], *cfg.snn.hidden, int(ds.y.max()) + 1)
    rows = []
    for unit in units:
        for name in names:
            for scale in (1.0, "auto"):
                for f, split in enumerate(splits):
                    def fit(unit=unit, name=name, scale=scale, split=split, f=f):
                        r = fit_one(cfg, unit, name, scale, split, ds, sizes, budget,
                                    cfg.seed + f)
                        return {k: np.float64(r[k]) for k in NUMBERS}

                    res = runs.run_once(stages, f"u{unit:g}_{name}_{scale}_fold{f}", fit,
                                        {k: np.float64(0) for k in NUMBERS})
                    rows.append({"unit": unit, "method": name, "weight_scale_arg": str(scale),
                                 "fold": f, **{k: float(res[k]) for k in NUMBERS}})
                    print(f"[{EXPERIMENT}] unit {unit:g} {name} weight_scale={scale} fold {f}: "
                          f"accuracy {rows[-1]['test_accuracy']:.3f} "
                          f"(scale {rows[-1]['weight_scale']:g})", file=sys.stderr, flush=True)
    summary = [{"unit": u, "method": m, "weight_scale_arg": s, "folds": len(group),
                **{f"{k}_mean": float(np.mean([r[k] for r in group])) for k in NUMBERS}}
               for (u, m, s), group in tables.group_rows(
                   rows, ("unit", "method", "weight_scale_arg")).items()]
    write_csv(out / "chip_units.csv", rows)
    write_csv(out / "chip_units_summary.csv", summary)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages,
                              {"budget": budget, "methods": names, "units": units})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--budget", type=float, default=3e5)
    ap.add_argument("--methods", nargs="+", default=["spsa", "rw_adapt", "snes"])
    ap.add_argument("--units", nargs="+", type=float, default=[0.01, 1.0, 100.0])
    known, rest = ap.parse_known_args(argv)
    experiment.refuse_unknown("--methods", known.methods, trainers.TRAINERS)
    if not known.budget > 0 or not all(u > 0 for u in known.units):
        print("error: --budget and --units must be > 0", file=sys.stderr)
        raise SystemExit(2)
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.budget, known.methods,
                                              known.units), __doc__, rest, DEFAULTS)


if __name__ == "__main__":
    main()
