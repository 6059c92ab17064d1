"""MH against non-reversible parallel tempering on the SNN posterior, at an equal budget.

The budget is counted in chain-steps of every replica: MH runs ``mh.num_steps`` steps per
chain, PT with K = ``pt.num_temperatures`` replicas runs ``mh.num_steps / K`` steps. Both see
the same folds, sigmas, chains, c, v and p. Reported per (method, sigma, fold): R-hat and ESS
of the log density across chains (the permutation-invariant summary), ESS per second,
test accuracy of W* and the BMA, and for PT the barrier Lambda, the schedule and round trips.
Writes tempering.csv, tempering_predictions.csv.gz (every test prediction, see
tables.prediction_rows) and tempering.png to --out (default results/<preset>/).

    python -m experiments.tempering [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR]
"""

from __future__ import annotations

import dataclasses
import time

from experiments import runners, tables
from mhsnn import data, experiment, keys, posterior
from mhsnn.io import write_csv

EXPERIMENT = "tempering"
DEFAULTS = ["folds=2", "sigmas=[0, 3]", "pt.num_temperatures=8", "mh.num_steps=16000"]


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode, folds=5)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, 5, cfg.seed)[: cfg.folds]
    problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, EXPERIMENT)
    K = cfg.pt.num_temperatures
    pt_cfg = dataclasses.replace(cfg, mh=dataclasses.replace(
        cfg.mh, num_steps=max(cfg.mh.num_steps // K, 2)))
    rows, predictions = [], []
    for name, run_cfg, tempered in (("mh", cfg, False), ("pt", pt_cfg, True)):
        t_stage = time.perf_counter()
        outcome = runners.run_mh(stages, name, run_cfg, problem,
                                keys.derive(key, "method", EXPERIMENT, name),
                                keys.derive(key, "evaluate", EXPERIMENT, name), tempered)
        wall = stages.timings.get(name, time.perf_counter() - t_stage)
        predictions += tables.prediction_rows(tables.mcmc_raw(outcome, name), problem,
                                              cfg.sigmas, tables.probability_name(cfg))
        for s, f, cell in tables.chain_cells(outcome, problem, cfg.sigmas):
            ess = cell["ess_logdensity"]
            row = {"method": name, "sigma": cell["sigma"], "fold": f,
                   "steps_per_chain": run_cfg.mh.num_steps, "replicas": K if tempered else 1,
                   "chain_steps": run_cfg.mh.num_steps * (K if tempered else 1),
                   "rhat_logdensity": cell["rhat_logdensity"],
                   "ess_logdensity": ess, "ess_per_s": ess / wall, "wall_s": wall,
                   "acc_mean": cell["acc_mean"], "acc_bma": cell["acc_bma"]}
            if tempered:
                swap = outcome.tempering.swap_acceptance[f, s].mean(0)
                row.update(barrier=float((1 - swap).sum()),
                           round_trips_per_1000=float(
                               outcome.tempering.round_trips_per_1000[f, s].mean()),
                           betas=" ".join(f"{b:.4f}" for b in
                                          outcome.tempering.betas[f, s, 0]))
            rows.append(row)
    write_csv(out / "tempering.csv", rows)
    tables.write_predictions(out / "tempering_predictions.csv.gz", predictions)
    _figure(rows, out / "tempering.png")
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    for r in rows:
        print(f"{r['method']} sigma={r['sigma']:g} fold={r['fold']}  R-hat {r['rhat_logdensity']:.2f}"
              f"  ESS/s {r['ess_per_s']:.2f}  W* {r['acc_mean']:.3f}  BMA {r['acc_bma']:.3f}"
              + (f"  Lambda {r['barrier']:.2f}  trips/1000 {r['round_trips_per_1000']:.2f}"
                 if r["method"] == "pt" else ""))
    return rows


def _figure(rows, path) -> None:
    from mhsnn.plots import plt, save

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, key, label in zip(axes, ("rhat_logdensity", "ess_per_s", "acc_bma"),
                              ("R-hat (log density)", "ESS / s (log density)", "BMA accuracy")):
        for i, method in enumerate(("mh", "pt")):
            rs = [r for r in rows if r["method"] == method]
            xs = [r["sigma"] + (i - 0.5) * 0.15 for r in rs]
            ax.plot(xs, [r[key] for r in rs], "o", label=method)
        ax.set(xlabel="sigma", title=label)
    axes[0].legend()
    fig.suptitle("MH vs PT at an equal budget of replica chain-steps")
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
