"""Experiment 2 of the paper: test accuracy against the number of training samples N_t.

For each N_t in ``n_train`` and each of ``folds`` repeats, a stratified random subset of
N_t samples trains and all the remaining 569 - N_t samples test, at every sigma. Each N_t
is one jitted call per method (the shapes differ between N_t). Writes
data_efficiency.csv, data_efficiency_summary.csv, accuracy_vs_ntrain.png and
data_efficiency_manifest.json to --out.

    python -m experiments.data_efficiency [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

from experiments import runners, tables
from mhsnn import data, experiment, plots, posterior
from mhsnn.io import write_csv

EXPERIMENT = "data_efficiency"


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode, n_train=True, grid=True)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    rows, diag, predictions = [], [], []
    for n in cfg.n_train:
        splits = data.subset_splits(ds.y, n, cfg.folds, cfg.seed)
        problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, f"n_train={n}")
        r, d, raw = runners.method_rows(stages, cfg, problem, key, f"n_train={n}", f"n{n}_",
                                       {"n_train": n})
        rows += r
        diag += d
        predictions += tables.prediction_rows(raw, problem, cfg.sigmas,
                                              tables.probability_name(cfg), {"n_train": n})
    summary = tables.summarise(rows, ("sigma", "n_train"))
    write_csv(out / "data_efficiency.csv", rows)
    write_csv(out / "data_efficiency_summary.csv", summary)
    if diag:
        write_csv(out / "data_efficiency_mh_diagnostics.csv", diag)
    tables.write_predictions(out / "data_efficiency_predictions.csv.gz", predictions)
    plots.accuracy_vs_ntrain(summary, out / "accuracy_vs_ntrain.png",
                             f"data efficiency ({cfg.preset} preset, {cfg.folds} repeats)")
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    tables.print_table(summary, ("sigma", "n_train"))
    return rows


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv)


if __name__ == "__main__":
    main()
