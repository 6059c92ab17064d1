"""Experiment 1 of the paper: test accuracy against the chip's non-linearity sigma.

5-fold stratified cross-validation (80/20), sigma in {0, 1, 2, 3}: MH (posterior mean W*
and BMA) against surrogate-gradient backprop (offline and chip-in-the-loop, tuned and
paper-literal). Writes sigma_sweep.csv, sigma_sweep_summary.csv, mh_diagnostics.csv,
sigma_sweep_predictions.csv (every test prediction, see tables.prediction_rows),
accuracy_vs_sigma.png, reliability.png (CORP, first and last sigma) and
sigma_sweep_manifest.json to --out.

    python -m experiments.sigma_sweep [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

from experiments import runners, tables
from mhsnn import data, experiment, plots, posterior
from mhsnn.io import write_csv

EXPERIMENT = "sigma_sweep"


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode, grid=True)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, EXPERIMENT)
    rows, diag, raw = runners.method_rows(stages, cfg, problem, key, EXPERIMENT)
    summary = tables.summarise(rows, ("sigma",))
    write_csv(out / "sigma_sweep.csv", rows)
    write_csv(out / "sigma_sweep_summary.csv", summary)
    if diag:
        write_csv(out / "mh_diagnostics.csv", diag)
    plots.accuracy_vs_sigma(summary, out / "accuracy_vs_sigma.png",
                            f"sigma sweep ({cfg.preset} preset, {cfg.folds} folds)")
    write_csv(out / "sigma_sweep_predictions.csv",
              tables.prediction_rows(raw, problem, cfg.sigmas, tables.probability_name(cfg)))
    ends = sorted({0, len(cfg.sigmas) - 1})
    plots.reliability_diagram(
        {cfg.sigmas[i]: tables.pooled_predictions(raw, problem, i) for i in ends},
        out / "reliability.png", "CORP reliability of the pooled test predictions")
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    tables.print_table(summary, ("sigma",))
    return rows


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv)


if __name__ == "__main__":
    main()
