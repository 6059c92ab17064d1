"""Every method of ``mhsnn.TRAINERS`` on a chip with no JAX model, at equal presentations.

The estimator (``mhsnn.SNNClassifier``) trains each method on a NumPy chip behind
``chips.ExternalChip`` (the external-chip experiment's simulator: f_sigma with sigma = 2 and
20% threshold mismatch), 5-fold stratified on a data set (default iris, network F-8-K),
with one budget of chip sample presentations for every method. Writes chip_methods.csv
(per method and fold: accuracy, NLL, Brier, ECE, training presentations, the chip's own
count, faults, wall time) and chip_methods_summary.csv (means over folds) to --out. Each
fit is a checkpointed stage: ``--resume`` skips finished fits and continues an interrupted
one from its last chunk.

    python -m experiments.chip_methods [--budget B] [--methods NAME ...] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]

Keys: ``data.name`` / ``data.path``, ``snn.hidden``, ``folds``, ``seed``, ``mh.num_chains``
(a sampler's chains), ``snn.time_steps``, ``likelihood``, ``chip.path`` / ``chip.args`` (a
user's chip in place of the NumPy chip, docs/your-chip.md); the budget is ``--budget``
(default 3e6), the methods ``--methods`` (default: all).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings

import numpy as np

from experiments import tables
from experiments.external_chip import chip_record, make_chip
from mhsnn import data, experiment, metrics, runs, trainers
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

EXPERIMENT = "chip_methods"
DEFAULTS = ["data.name=iris", "snn.hidden=[8]", "mh.num_chains=8"]
MEANS = ("test_accuracy", "nll", "brier", "ece", "presentations", "rhat_logdensity", "fit_s")


class CountingChip:
    """A chip (the NumPy chip, or a user's), counting the sample presentations it is asked for."""

    def __init__(self, chip):
        self.chip, self.presentations = chip, 0

    def __call__(self, weights, spikes):
        self.presentations += weights.shape[0] * spikes.shape[1]
        return self.chip(weights, spikes)


NUMBERS = ("test_accuracy", "ece", "nll", "brier", "presentations", "chip_counted",
           "rhat_logdensity", "acceptance_rate", "chip_faults", "fit_s")


def fit_one(cfg, name: str, fold: int, split, ds, sizes, budget: float, folder) -> dict:
    """One method on one fold: the test metrics and what the chip counted."""
    chip = CountingChip(make_chip(cfg, sizes))
    clf = SNNClassifier(chip=chip, hidden=cfg.snn.hidden, method=name, presentations=budget,
                        chains=cfg.mh.num_chains, time_steps=cfg.snn.time_steps,
                        likelihood=cfg.likelihood, random_state=cfg.seed + fold,
                        weight_scale=1.0, bias_input=False,  # as committed: the engine's unit
                        checkpoint_dir=folder, chip_retries=cfg.chip.retries,
                        chip_timeout_s=cfg.chip.timeout_s)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat warnings: reported as a column
        clf.fit(ds.X[split.train], ds.y[split.train])
    wall = time.perf_counter() - t0
    # training only: read before any prediction, without the first, checking query
    counted = chip.presentations - clf.diagnostics_.get("check_presentations", 0)
    probs = clf.predict_proba(ds.X[split.test])
    labels = np.searchsorted(clf.classes_, ds.y[split.test])
    d = clf.diagnostics_
    return {**metrics.summary(probs, labels), "presentations": clf.presentations_,
            "chip_counted": counted, "rhat_logdensity": d.get("rhat_logdensity", np.nan),
            "acceptance_rate": d.get("acceptance_rate", np.nan),
            "chip_faults": d.get("chip_faults", 0), "fit_s": round(wall, 2)}


def run(cfg, out, mode, budget: float, names: list[str]) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, ds = run_.stages, run_.dataset
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    sizes = (ds.X.shape[1], *cfg.snn.hidden, int(ds.y.max()) + 1)
    record = chip_record(cfg, make_chip(cfg, sizes), sizes)  # a user's chip loads, or stops
    rows = []
    for name in names:
        for f, split in enumerate(splits):
            # one stage per fit: a resumed run skips finished fits, and an interrupted fit
            # continues from its own checkpoint folder
            folder = out / "checkpoints" / f"{EXPERIMENT}_fit_{name}_fold{f}"

            def fit(name=name, f=f, split=split, folder=folder):
                result = fit_one(cfg, name, f, split, ds, sizes, budget, folder)
                shutil.rmtree(folder, ignore_errors=True)
                return {k: np.float64(result[k]) for k in NUMBERS}

            result = runs.run_once(stages, f"{name}_fold{f}", fit,
                                   {k: np.float64(0) for k in NUMBERS})
            row = {"method": name, "kind": trainers.TRAINERS[name].kind, "fold": f}
            for k in NUMBERS:
                value = float(result[k])
                row[k] = int(value) if k in ("presentations", "chip_counted", "chip_faults") \
                    else value
            rows.append(row)
            print(f"[{EXPERIMENT}] {name} fold {f}: accuracy {row['test_accuracy']:.3f} "
                  f"({row['presentations']:,} presentations, {row['fit_s']:.1f} s)",
                  file=sys.stderr, flush=True)
    summary = [{"method": name, "kind": group[0]["kind"], "folds": len(group),
                **{f"{k}_mean": float(np.mean([r[k] for r in group])) for k in MEANS},
                "test_accuracy_std": float(np.std([r["test_accuracy"] for r in group]))}
               for (name,), group in tables.group_rows(rows, ("method",)).items()]
    write_csv(out / "chip_methods.csv", rows)
    write_csv(out / "chip_methods_summary.csv", summary)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), run_.stages,
                              {"budget": budget, "methods": names, **record})
    for r in summary:
        print(f"{r['method']:14s} {r['test_accuracy_mean']:.3f} +- {r['test_accuracy_std']:.3f}"
              f"  NLL {r['nll_mean']:.3f}  ECE {r['ece_mean']:.3f}  "
              f"{r['presentations_mean']:,.0f} presentations")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--budget", type=float, default=3e6)
    ap.add_argument("--methods", nargs="+", default=list(trainers.TRAINERS))
    known, rest = ap.parse_known_args(argv)
    experiment.refuse_unknown("--methods", known.methods, trainers.TRAINERS)
    if not known.budget > 0:
        print(f"error: --budget {known.budget}: must be > 0", file=sys.stderr)
        raise SystemExit(2)
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.budget, known.methods),
                   __doc__, rest, DEFAULTS)


if __name__ == "__main__":
    main()
